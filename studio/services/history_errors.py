"""The history's errors, and SQLite's failures told as one sentence that names the database file."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path

from studio.core.errors import StudioError

# Primary SQLite result codes (extended codes carry these in their low byte).
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_NOTADB = 5, 6, 8, 11, 14, 26
# SQLite's default longest path (its unix VFS's MAX_PATHNAME), less the "-journal" it must be able to add: past it
# SQLite says only "unable to open database file", as for a folder Studio may not write to.
SQLITE_LONGEST_PATH = 512 - len("-journal")


class HistoryError(StudioError):
    """The history database cannot be used right now (its message is one sentence)."""


class HistoryNotWritable(HistoryError):
    """Studio may not write to the history database or its folder (it may still be read: ``read_only``)."""


class HistoryLocked(HistoryError):
    """Another program holds the history database's lock; nothing was changed or moved."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # a Python-side error (wrong use), not SQLite's
        return None
    return code & 0xFF


def is_damage(exc: sqlite3.Error) -> bool:
    """SQLite says the file is damaged or is no database at all."""
    return primary_code(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB)


def translated(exc: sqlite3.Error, path: Path) -> HistoryError:
    """SQLite's failure on the history database at path, as the HistoryError the person reads."""
    code = primary_code(exc)
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return HistoryLocked(f"The history database {path} is locked by another program; "
                             "close other Studio windows or commands and try again.", path)
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return HistoryError(f"The history database {path} is damaged; Studio will set it aside "
                            "and start a new one the next time it starts.")
    if code == SQLITE_CANTOPEN and (length := len(os.fsencode(os.path.abspath(path)))) > SQLITE_LONGEST_PATH:
        return HistoryError(f"The history database's path is too long for SQLite ({length} bytes; it takes at most "
                            f"{SQLITE_LONGEST_PATH}): {path}. Choose a data folder with a shorter path.")
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN):  # SQLite says only "unable to open database file"
        return HistoryNotWritable(f"The history database {path} could not be opened for writing; check "
                                  f"that Studio may write to it and to its folder {path.parent}.")
    return HistoryError(f"The history database {path} could not be used: {exc}.")


def shape_problem(path: Path) -> HistoryError | None:
    """What makes path unusable as the history database before SQLite tries it (SQLite says only "disk I/O error"
    for a folder, and a symbolic link that leads back to itself breaks Python's own path handling), else None."""
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        return HistoryError(f"The history folder {folder} is a file, not a folder; move that file away so Studio "
                            "can keep its history there.")
    try:
        found = path.stat()
    except FileNotFoundError:
        return None  # not there yet (or a link to nothing yet): a new history starts there
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return HistoryError(f"The history database {path} is a symbolic link that leads back to itself; remove "
                                "it, or point it at a file.")
        return HistoryError(f"The history database {path} could not be looked at: {exc.strerror or exc}.")
    if stat.S_ISDIR(found.st_mode):
        return HistoryError(f"The history database {path} is a folder, not a file; move that folder away so "
                            "Studio can start its history there.")
    if not stat.S_ISREG(found.st_mode):
        return HistoryError(f"The history database {path} is not a regular file (a device, pipe or socket); move "
                            "it away so Studio can start its history there.")
    return None
