"""A history Studio may only read: a read-only HistoryStore, and the way it opens a WAL database it cannot lock."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from studio.services import history_reading
from studio.services.history_schema import migrate
from studio.services.history_errors import HistoryError, HistoryNotWritable
from studio.services.history_query import HistoryQuery
from studio.services.history_store import HistoryEntry, HistoryStore


def entry(prompt: str) -> HistoryEntry:
    return HistoryEntry(prompt=prompt, model_name="tiny", seed=1, steps=2, cfg_scale=5.0, sampler="Euler",
                        width=64, height=64)


def made(tmp_path, *prompts: str):  # noqa: ANN201
    path = tmp_path / "history.db"
    writer = HistoryStore(path)
    writer.add_many([entry(prompt) for prompt in prompts])
    writer.close()
    return path


def test_a_read_only_store_finds_entries_and_refuses_a_write_with_a_sentence(tmp_path):
    path = made(tmp_path, "a red fox", "a castle")
    store = HistoryStore(path, read_only=True)
    assert store.read_only and [e.prompt for e in store.search(HistoryQuery(text="fox"))] == ["a red fox"]
    with pytest.raises(HistoryNotWritable, match="could not be opened for writing; check that Studio may write"):
        store.add(entry("a third"))
    with pytest.raises(HistoryNotWritable):
        store.set_starred(1, True)
    store.close()
    assert [e.starred for e in HistoryStore(path).search()] == [False, False]


def _no_shm_here(real_opened):  # noqa: ANN001, ANN202
    """SQLite in a read-only folder: ``mode=ro`` on a WAL database cannot make the -shm file ("unable to open
    database file", seen on a read-only bind mount); ``immutable=1`` needs none."""
    def opened(uri: str, timeout: float) -> sqlite3.Connection:
        if uri.endswith("?mode=ro"):
            error = sqlite3.OperationalError("unable to open database file")
            error.sqlite_errorcode = history_reading.SQLITE_CANTOPEN
            raise error
        return real_opened(uri, timeout)
    return opened


def test_where_sqlite_cannot_make_its_shm_file_the_database_is_read_as_it_is_on_disk(tmp_path, monkeypatch):
    path = made(tmp_path, "a red fox")
    monkeypatch.setattr(history_reading, "_opened", _no_shm_here(history_reading._opened))
    store = HistoryStore(path, read_only=True)
    assert [e.prompt for e in store.search()] == ["a red fox"] and store.notice is None
    store.close()
    # A Studio still running (or one that ended without closing the history) has entries in the -wal file only.
    writer = HistoryStore(path)
    writer._conn().execute("PRAGMA wal_autocheckpoint = 0")
    writer.add(entry("a new fox"))
    store = HistoryStore(path, read_only=True)
    assert [e.prompt for e in store.search()] == ["a red fox"]
    assert store.notice == ("Its newest entries may be missing: they are still in its -wal file, which only a Studio "
                            "that may write there takes in.")
    store.close()
    writer.close()


def _search_in_another_thread(store: HistoryStore) -> list[str]:
    """What the gallery does: its searches run in worker threads, each with its own connection."""
    found: list[str] = []
    worker = threading.Thread(target=lambda: found.extend(e.prompt for e in store.search()))
    worker.start()
    worker.join(10)
    return found


def test_a_read_only_store_keeps_its_notice_whatever_another_thread_s_connection_finds(tmp_path, monkeypatch):
    # Each thread's first connection set the notice to what it found: the -wal file's note one thread's connection
    # gave was wiped by the next one's (none), and so was the window's own note on the read-only history.
    path = made(tmp_path, "a red fox")
    monkeypatch.setattr(history_reading, "_opened", _no_shm_here(history_reading._opened))
    writer = HistoryStore(path)
    writer._conn().execute("PRAGMA wal_autocheckpoint = 0")
    writer.add(entry("a new fox"))  # in the -wal file only
    store = HistoryStore(path, read_only=True)
    wal_note = store.notice
    assert wal_note and wal_note.startswith("Its newest entries may be missing")
    writer.close()  # its last close takes the -wal file in: a connection made now finds none
    assert not path.with_name("history.db-wal").exists()
    assert _search_in_another_thread(store) == ["a new fox", "a red fox"]
    assert store.notice == wal_note
    store.close()

    app_note = "The history database could not be opened for writing. Studio shows the history read-only."
    writer = HistoryStore(path)
    writer._conn().execute("PRAGMA wal_autocheckpoint = 0")
    writer.add(entry("a third fox"))
    store = HistoryStore(path, read_only=True)
    store.notice = f"{app_note} {store.notice}"  # as app.open_history says it, the -wal file's note last
    assert _search_in_another_thread(store) == ["a new fox", "a red fox"]  # the -wal file is still there
    assert store.notice == f"{app_note} {wal_note}"  # not said twice, nor replaced
    store.close()
    writer.close()


def test_a_database_of_another_schema_is_refused_with_a_sentence_when_it_cannot_be_migrated(tmp_path):
    path = tmp_path / "history.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    conn.close()
    with pytest.raises(HistoryError) as err:
        HistoryStore(path, read_only=True)
    assert str(err.value) == (f"The history database {path} was made by an earlier version of Studio, and can only "
                              "be read once Studio updates it, where it may write to it and to its folder.")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(HistoryError, match="was made by a newer version of Studio"):
        HistoryStore(path, read_only=True)
