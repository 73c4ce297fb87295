"""The journal of history entries kept while another program held the database's write lock: one file per entry in
``<database>.pending/``, so a window killed before the lock goes loses nothing and the next open of the history adds
what the journal holds.

The file goes once its entry is in the database. Each journaled entry is written with a marker in the database's
meta table (same transaction), so an entry whose file outlived it (the process died in between) is never added
twice."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path

from studio.services.history_entry import INSERT_SQL, OUTCOMES, HistoryEntry, row_values

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".pending"  # history.db -> history.db.pending/
DAMAGED_SUFFIX = ".damaged"
_JSON_FIELDS = {"postprocess": list, "params": dict}
_FIELDS = {f.name for f in fields(HistoryEntry)}
# meta rows marking journaled entries already written, so they are never added twice; pruned a month later, when
# no journal file can still name them.
_JOURNAL_MARK = "journaled:"
_JOURNAL_MARK_DAYS = 30
_KEYS_PER_QUERY = 500  # keys per "IN (...)" query, well under every SQLite's variable limit


def journal_folder(database: Path) -> Path:
    return database.with_name(database.name + JOURNAL_SUFFIX)


class PendingJournal:
    """One JSON file per kept entry, written atomically; its name (without .json) is the entry's key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, entry: HistoryEntry) -> str | None:
        """Journal an entry; its key, or None when it could not be written (said in the log: it stays in memory)."""
        key = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
        path = self.folder / f"{key}.json"
        temporary = self.folder / f".{key}.tmp"  # never read: a process killed mid-write leaves no half entry
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump({"key": key, "entry": asdict(entry)}, file, ensure_ascii=False, default=str)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            log.warning("Could not journal a history entry kept while the database was locked in %s: %s",
                        self.folder, exc)
            temporary.unlink(missing_ok=True)
            return None
        return key

    def read(self) -> list[tuple[str, HistoryEntry]]:
        """The journaled entries, oldest first; a file that cannot be read is moved aside (``.damaged``)."""
        try:
            paths = sorted(self.folder.glob("*.json"))
        except OSError:
            return []
        found = []
        for path in paths:
            try:
                found.append((path.stem, _entry_from_journal(path)))
            except FileNotFoundError:
                continue  # another Studio added it meanwhile
            except (OSError, ValueError, TypeError) as exc:
                self._move_aside(path, exc)
        return found

    def remove(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                (self.folder / f"{key}.json").unlink(missing_ok=True)
            except OSError as exc:  # the marker in the database keeps it from being added again
                log.warning("Could not remove the journaled history entry %s: %s", key, exc)

    def _move_aside(self, path: Path, problem: Exception) -> None:
        aside = path.with_name(path.name + DAMAGED_SUFFIX)
        try:
            os.replace(path, aside)
        except OSError as exc:
            log.warning("A journaled history entry %s is damaged (%s) and could not be moved aside: %s",
                        path, problem, exc)
            return
        log.warning("A journaled history entry %s is damaged (%s); moved aside as %s", path, problem, aside.name)


def _entry_from_journal(path: Path) -> HistoryEntry:
    """The entry a journal file holds; ValueError when it is not a whole, well-formed entry."""
    data = json.loads(path.read_text(encoding="utf-8"))
    values = data.get("entry") if isinstance(data, dict) and data.get("key") == path.stem else None
    if not isinstance(values, dict) or not set(values) <= _FIELDS or not isinstance(values.get("prompt"), str):
        raise ValueError("not a history entry")
    for name, value in values.items():
        kind = _JSON_FIELDS.get(name)
        if not isinstance(value, kind) if kind else not isinstance(value, (str, int, float, type(None))):
            raise ValueError(f"{name} is {type(value).__name__}")
    if values.get("outcome", "ok") not in OUTCOMES:
        raise ValueError(f"outcome {values['outcome']!r}")
    return HistoryEntry(**(values | {"id": 0}))


def insert_unmarked(conn: sqlite3.Connection, entries: Sequence[HistoryEntry], keys: Sequence[str | None]) -> int:
    """Insert entries inside the caller's write transaction, each journaled one (key not None) with its marker; one
    marked already (added before its journal file was removed) is skipped. How many were inserted."""
    marks = [None if key is None else _JOURNAL_MARK + key for key in keys]
    named = [mark for mark in marks if mark is not None]
    done = {row[0] for start in range(0, len(named), _KEYS_PER_QUERY) for row in conn.execute(
        f"SELECT key FROM meta WHERE key IN ({', '.join('?' for _ in named[start:start + _KEYS_PER_QUERY])})",
        named[start:start + _KEYS_PER_QUERY])}
    now = time.time()
    conn.execute("DELETE FROM meta WHERE key >= ? AND key < ? AND value < ?",
                 (_JOURNAL_MARK, _JOURNAL_MARK + "\uffff", now - _JOURNAL_MARK_DAYS * 86400))
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                     [(mark, now) for mark in named if mark not in done])
    rows = [row_values(entry, now) for entry, mark in zip(entries, marks, strict=True) if mark not in done]
    conn.executemany(INSERT_SQL, rows)
    return len(rows)
