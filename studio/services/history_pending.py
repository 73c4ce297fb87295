"""History entries that could not be written while another program held the database's write lock: kept in
memory, in the order they came, and written together once the lock is gone.

Each kept entry is also written to a journal file of its own in ``<database>.pending/``, so a window killed before
the lock goes loses nothing: the next open of the history adds what the journal holds. The file goes once its
entry is in the database; the store writes a marker with the entry (same transaction), so an entry whose file
outlived it (the process died in between) is never added twice."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path

from studio.services.history_entry import OUTCOMES, HistoryEntry

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".pending"  # history.db -> history.db.pending/
DAMAGED_SUFFIX = ".damaged"
_JSON_FIELDS = {"postprocess": list, "params": dict}
_FIELDS = {f.name for f in fields(HistoryEntry)}

# Writes entries in one transaction, each with its journal key (None: not journaled); an entry whose key was
# written before is skipped; how many were added. HistoryLocked while the lock is still held.
WriteKept = Callable[[Sequence[HistoryEntry], Sequence[str | None]], int]


def entries_phrase(count: int) -> str:
    """"1 entry", "3 entries"."""
    return "1 entry" if count == 1 else f"{count} entries"


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


class PendingEntries:
    """Entries kept while the database was locked; ``write`` stores a batch in one transaction (HistoryLocked while
    the lock is still held)."""

    def __init__(self, write: WriteKept, journal: PendingJournal | None = None) -> None:
        self._write = write
        self._journal = journal
        self._entries: list[tuple[str | None, HistoryEntry]] = []
        self._entries_lock = threading.Lock()
        self._writing_lock = threading.Lock()  # one writer of the kept entries at a time (never twice)

    def keep(self, entry: HistoryEntry) -> None:
        """Keep an entry that could not be written. Its time is now, not when the lock is gone."""
        entry = entry if entry.created else replace(entry, created=time.time())
        key = self._journal.write(entry) if self._journal is not None else None
        with self._entries_lock:
            self._entries.append((key, entry))

    def keep_journaled(self) -> int:
        """Keep what the journal holds (a Studio that ended before writing it); how many entries were new."""
        if self._journal is None:
            return 0
        found = self._journal.read()
        with self._entries_lock:
            known = {key for key, _ in self._entries}
            new = [(key, entry) for key, entry in found if key not in known]
            self._entries.extend(new)
        return len(new)

    def count(self) -> int:
        with self._entries_lock:
            return len(self._entries)

    def write(self) -> int:
        """Write the kept entries; how many were added (one another Studio added from the journal is not added
        again). HistoryLocked (nothing written, all kept) while the lock is still held."""
        with self._writing_lock:
            with self._entries_lock:
                kept = list(self._entries)
            if not kept:
                return 0
            added = self._write([entry for _, entry in kept], [key for key, _ in kept])
            with self._entries_lock:
                del self._entries[:len(kept)]
            if self._journal is not None:
                self._journal.remove([key for key, _ in kept if key is not None])
        log.info("Added %d history entries kept while the database was locked", added)
        return added

    def add(self) -> str | None:
        """Write the kept entries; a sentence saying they were added, or None when there were none. HistoryLocked
        (nothing written, all kept) while the lock is still held."""
        if not (count := self.write()):
            return None
        return (f"The history database is free again: {entries_phrase(count)} kept while it was locked "
                f"{'were' if count > 1 else 'was'} added to the history.")

    def lost_sentence(self, reason: object) -> str:
        """What was lost when the kept entries could not be written before closing, and why; journaled ones are
        not lost, they are added the next time the history opens."""
        with self._entries_lock:
            count = len(self._entries)
            journaled = sum(key is not None for key, _ in self._entries)
        if journaled == count:
            return (f"{entries_phrase(count).capitalize()} could not be added to the history yet (the pictures are "
                    f"kept): {reason} Studio adds {'them' if count > 1 else 'it'} the next time it opens the history.")
        return (f"{entries_phrase(count - journaled).capitalize()} could not be added to the history, so "
                f"{'they are' if count - journaled > 1 else 'it is'} not in it (the pictures are kept): {reason}")
