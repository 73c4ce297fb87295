"""History entries that could not be written while another program held the database's write lock: kept in
memory, in the order they came, and written together once the lock is gone.

Each kept entry is also written to the journal (history_journal), so a window killed before the lock goes loses
nothing: the next open of the history adds what the journal holds."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from studio.services.history_entry import HistoryEntry
from studio.services.history_journal import PendingJournal

log = logging.getLogger(__name__)

# Writes entries in one transaction, each with its journal key (None: not journaled); an entry whose key was
# written before is skipped; how many were added. HistoryLocked while the lock is still held.
WriteKept = Callable[[Sequence[HistoryEntry], Sequence[str | None]], int]


def entries_phrase(count: int) -> str:
    """"1 entry", "3 entries"."""
    return "1 entry" if count == 1 else f"{count} entries"


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

    def journaled_count(self) -> int:
        """How many of the kept entries are in the journal too (not lost if this process ends)."""
        with self._entries_lock:
            return sum(key is not None for key, _ in self._entries)

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
        count, journaled = self.count(), self.journaled_count()
        if journaled == count:
            return (f"{entries_phrase(count).capitalize()} could not be added to the history yet (the pictures are "
                    f"kept): {reason} Studio adds {'them' if count > 1 else 'it'} the next time it opens the history.")
        return (f"{entries_phrase(count - journaled).capitalize()} could not be added to the history, so "
                f"{'they are' if count - journaled > 1 else 'it is'} not in it (the pictures are kept): {reason}")
