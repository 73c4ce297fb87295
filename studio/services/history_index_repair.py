"""Damage found while the history is in use: a full-text index rebuilt from the entries, or a damaged database set
aside (history_file_watch), then the call run once more."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from studio.services.history_errors import SQLITE_CORRUPT, HistoryError, is_damage, primary_code

log = logging.getLogger(__name__)
INDEX_REBUILT = "The history's search index was damaged, so Studio rebuilt it from the history; no entry was lost."

_T = TypeVar("_T")


def repairs_index(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run a HistoryStore method; when SQLite reports damage that is only in the full-text index (PRAGMA
    quick_check does not look into FTS5's data), rebuild the index from the entries table and run it once more
    (or, the database itself being damaged, set it aside and run it on a new one)."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except HistoryError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, sqlite3.Error) and is_damage(cause)):
                raise
            if not ((primary_code(cause) == SQLITE_CORRUPT and self._repair_index()) or self._set_aside_damaged()):
                raise
        return method(self, *args, **kwargs)
    return wrapper


def rebuild_damaged_index(conn: sqlite3.Connection, write: Callable[[], AbstractContextManager[sqlite3.Connection]],
                          path: Path) -> bool:
    """Rebuild a damaged full-text index (the entries table being sound) in one ``write`` transaction; True when
    it was rebuilt."""
    try:
        conn.execute("INSERT INTO entries_fts (entries_fts) VALUES ('integrity-check')")
        return False  # the index is sound: the damage is elsewhere
    except sqlite3.Error as exc:
        if primary_code(exc) != SQLITE_CORRUPT:
            return False
    try:
        if [row[0] for row in conn.execute("PRAGMA quick_check")] != ["ok"]:
            return False  # the entries themselves are damaged: set aside at the next start
        with write() as conn:
            conn.execute("INSERT INTO entries_fts (entries_fts) VALUES ('rebuild')")
    except (sqlite3.Error, HistoryError) as exc:
        log.warning("The damaged search index of %s could not be rebuilt: %s", path, exc)
        return False
    log.warning("The search index of history database %s was damaged; rebuilt it from the entries", path)
    return True
