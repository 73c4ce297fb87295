"""SQLite's failures on the history database, told as one sentence that names the file."""

from __future__ import annotations

import os
import sqlite3

import pytest

from studio.services.history_errors import HistoryError, HistoryLocked, HistoryNotWritable, translated
from studio.services.history_store import HistoryStore


def sqlite_error(code: int, message: str = "unable to open database file") -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize("code", [8, 14])  # SQLITE_READONLY, SQLITE_CANTOPEN ("unable to open database file")
def test_a_database_studio_may_not_write_says_where_to_look(tmp_path, code):
    path = tmp_path / "history.db"
    error = translated(sqlite_error(code), path)
    assert isinstance(error, HistoryNotWritable)
    assert str(error) == (
        f"The history database {path} could not be opened for writing; check that Studio may write to it "
        f"and to its folder {path.parent}.")


@pytest.mark.parametrize("code", [5, 6, 5 | 256])  # SQLITE_BUSY, SQLITE_LOCKED, an extended BUSY code
def test_a_lock_held_elsewhere_is_history_locked(tmp_path, code):
    assert isinstance(translated(sqlite_error(code, "database is locked"), tmp_path / "history.db"), HistoryLocked)


def test_a_python_side_error_is_named_as_it_is(tmp_path):
    error = translated(sqlite3.ProgrammingError("Cannot operate on a closed database."), tmp_path / "history.db")
    assert type(error) is HistoryError
    assert "Cannot operate on a closed database." in str(error)


def _folder(path):
    path.mkdir()


def _loop(path):
    path.symlink_to(path.name)


def _fifo(path):
    os.mkfifo(path)


@pytest.mark.parametrize(("make", "said"), [
    (_folder, "is a folder, not a file"),
    (_loop, "is a symbolic link that leads back to itself"),
    (_fifo, "is not a regular file"),
])
@pytest.mark.parametrize("read_only", [False, True])
def test_a_history_db_of_the_wrong_shape_is_said_in_one_sentence(tmp_path, make, said, read_only):
    path = tmp_path / "history.db"
    make(path)
    with pytest.raises(HistoryError) as raised:
        HistoryStore(path, read_only=read_only)
    assert str(raised.value).startswith(f"The history database {path} {said}")
    assert "\n" not in str(raised.value)


def test_a_data_folder_that_is_a_file_is_said_so(tmp_path):
    (tmp_path / "data").write_text("x")
    with pytest.raises(HistoryError, match=r"history folder .*data is a file, not a folder"):
        HistoryStore(tmp_path / "data" / "history.db")


@pytest.mark.parametrize("read_only", [False, True])
def test_a_path_too_long_for_sqlite_is_said_so_not_blamed_on_permissions(tmp_path, read_only):
    """A data folder path of ~490 characters turned the history off with "check that Studio may write to it and to
    its folder", naming both paths (several KB of sentence); SQLite takes paths of at most 512 bytes."""
    folder = tmp_path
    while len(str(folder)) < 520:
        folder /= "f" * 100
    folder.mkdir(parents=True)
    path = folder / "history.db"
    with pytest.raises(HistoryError) as raised:
        HistoryStore(path, read_only=read_only)
    assert str(raised.value) == (f"The history database's path is too long for SQLite ({len(str(path))} bytes; it "
                                 f"takes at most 504): {path}. Choose a data folder with a shorter path.")
    assert not isinstance(raised.value, HistoryNotWritable)  # opening it read-only would not help


def test_a_path_that_sqlite_takes_opens(tmp_path):
    folder = tmp_path
    while len(str(folder)) < 504 - len("/history.db"):
        folder /= "f" * min(100, 504 - len("/history.db") - len(str(folder)) - 1)
    folder.mkdir(parents=True)
    path = folder / "history.db"
    assert len(str(path)) == 504
    HistoryStore(path).close()
