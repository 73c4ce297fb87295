"""History entries that could not be written while another program held the database's write lock: kept in
memory, in the order they came, and written together once the lock is gone."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from studio.services.history_entry import HistoryEntry

log = logging.getLogger(__name__)


def entries_phrase(count: int) -> str:
    """"1 entry", "3 entries"."""
    return "1 entry" if count == 1 else f"{count} entries"


class PendingEntries:
    """Entries kept while the database was locked; ``write`` stores a batch in one transaction (HistoryLocked while
    the lock is still held)."""

    def __init__(self, write: Callable[[Iterable[HistoryEntry]], object]) -> None:
        self._write = write
        self._entries: list[HistoryEntry] = []
        self._entries_lock = threading.Lock()
        self._writing_lock = threading.Lock()  # one writer of the kept entries at a time (never twice)

    def keep(self, entry: HistoryEntry) -> None:
        """Keep an entry that could not be written. Its time is now, not when the lock is gone."""
        with self._entries_lock:
            self._entries.append(entry if entry.created else replace(entry, created=time.time()))

    def count(self) -> int:
        with self._entries_lock:
            return len(self._entries)

    def add(self) -> str | None:
        """Write the kept entries; a sentence saying they were added, or None when there were none. HistoryLocked
        (nothing written, all kept) while the lock is still held."""
        with self._writing_lock:
            with self._entries_lock:
                entries = list(self._entries)
            if not entries:
                return None
            self._write(entries)
            with self._entries_lock:
                del self._entries[:len(entries)]
        log.info("Added %d history entries kept while the database was locked", len(entries))
        return (f"The history database is free again: {entries_phrase(len(entries))} kept while it was locked "
                f"{'were' if len(entries) > 1 else 'was'} added to the history.")

    def lost_sentence(self, reason: object) -> str:
        """What was lost when the kept entries could not be written before closing, and why."""
        count = self.count()
        return (f"{entries_phrase(count).capitalize()} could not be added to the history, so "
                f"{'they are' if count > 1 else 'it is'} not in it (the pictures are kept): {reason}")
