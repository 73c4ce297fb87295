"""The prompt history and gallery: every job Studio ran, in SQLite (WAL, FTS5) in the user data folder.

One row per output image (a batch of four is four rows, each with its own seed, so each can be
run again exactly), and one row for a job that failed or was cancelled before making any image.
Image files are written (atomically, fsynced) before the row that points at them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Callable

from studio.services.history_entry import INSERT_SQL, OUTCOMES, HistoryEntry, row_values
from studio.services.history_errors import HistoryError, HistoryLocked
from studio.services.history_file_uses import controls_referenced, kept_controls, referenced
from studio.services.history_index_repair import repairs_index
from studio.services.history_journal import PendingJournal, insert_unmarked, journal_folder
from studio.services.history_pending import PendingEntries, entries_phrase
from studio.services.history_queries import HistoryQueries

log = logging.getLogger(__name__)

HISTORY_FILE = "history.db"
_BULK_ROWS = 1000  # add_many batches from this size index their text in one statement
_FTS_INSERT_TRIGGER = "entries_fts_insert"


def default_history_path() -> Path:
    """Where Studio keeps its history: ``<user data folder>/history.db``."""
    from studio.core.paths import studio_paths

    return studio_paths().data_dir / HISTORY_FILE


class HistoryStore(HistoryQueries):
    """The whole history: opened (history_connection), read (history_queries) and written here. Entries that could
    not be written while another program held the lock are kept (history_pending) and written later."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0, read_only: bool = False) -> None:
        super().__init__(path, busy_timeout=busy_timeout, read_only=read_only)
        # Entries that could not be written while another program held the lock: kept, and written by add_pending.
        journal = None if read_only else PendingJournal(journal_folder(self.path))  # kept across a crash
        self._pending = PendingEntries(self._add_kept, journal)
        self._open()
        if not read_only:
            self._add_journaled()

    def close(self, wait_for_pending: float | None = None, on_wait: Callable[[str], None] | None = None) -> str | None:
        """Close this thread's connection; no thread may use the store afterwards. Entries still kept while the
        database was locked are written first, waiting up to ``wait_for_pending`` seconds (default: busy_timeout;
        0: tried once without waiting, for a store only read from) for the lock, with ``on_wait`` told why; a
        sentence saying they were added, or what was lost when they could not be, else None (none were kept).

        Connections of other threads close when those threads end (sqlite3 objects stay on their thread).
        """
        said = None
        if self.pending_count() and not self._closed:
            if on_wait is not None:
                on_wait(f"Waiting for the history database {self.path}, locked by another program…")
            try:
                wait = self.busy_timeout if wait_for_pending is None else wait_for_pending
                self._conn().execute(f"PRAGMA busy_timeout = {int(wait * 1000):d}")
                said = self.add_pending()
            except HistoryError as exc:
                said = self.not_added_sentence(exc)
            if said is not None and self._pending.count():  # journaled ones are not lost: only lost ones are errors
                lost = self._pending.count() > self._pending.journaled_count()
                log.log(logging.ERROR if lost else logging.WARNING, "%s", said)
        self._closed = True
        self._drop_connection()
        return said

    # -- entries kept while the database is locked -----------------------------------------
    def keep_for_later(self, entry: HistoryEntry) -> None:
        """Keep an entry that could not be written (another program holds the lock): add_pending writes it. Its
        time is now, not when the lock is gone."""
        self._pending.keep(entry)

    def _add_journaled(self) -> None:
        """Add the entries a Studio that ended (or was killed) while the database was locked left in the journal.
        Tried once without waiting: while the lock is still held they stay kept, and add_pending writes them."""
        if not self._pending.keep_journaled():
            return
        try:
            conn = self._conn()
            conn.execute("PRAGMA busy_timeout = 0")
            if not (added := self._pending.write()):
                return
        except HistoryError as exc:
            log.warning("History entries kept while the database was locked are not added yet: %s", exc)
            return
        finally:
            self._conn().execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000):d}")
        self._add_notice(f"{entries_phrase(added).capitalize()} kept while the history database was locked "
                         f"{'were' if added > 1 else 'was'} added to the history.")

    @repairs_index
    def _add_kept(self, entries: Sequence[HistoryEntry], keys: Sequence[str | None]) -> int:
        """Store kept entries in one transaction, each journaled one with its mark; one marked already (added before
        its journal file was removed) is skipped. How many were added."""
        with self._write() as conn:
            return insert_unmarked(conn, entries, keys)

    def pending_count(self) -> int:
        return self._pending.count()

    def not_added_sentence(self, reason: object) -> str:
        """Why the kept entries could not be added now (``reason``), and what becomes of them: journaled ones are
        added the next time the history opens; any that could not be journaled are lost."""
        if isinstance(reason, HistoryLocked):  # its "try again" fits no sentence saying Studio adds them next time
            reason = f"Another program still holds the lock on the history database {self.path}."
        return self._pending.lost_sentence(reason)

    def add_pending(self) -> str | None:
        """Write the entries kept while the database was locked; a sentence saying they were added, or None when
        there were none. HistoryLocked (nothing written, all kept) while the lock is still held."""
        return self._pending.add()

    # -- writing ---------------------------------------------------------------------------
    def add(self, entry: HistoryEntry) -> int:
        """Store one entry (its image file must already be on disk); returns its id."""
        return self.add_many([entry])[0]

    @repairs_index
    def add_many(self, entries: Iterable[HistoryEntry]) -> list[int]:
        """Store entries in one transaction (imports, benchmarks); returns their ids in order.

        Large batches skip the per-row full-text trigger and index the new rows in one statement
        (the trigger is dropped and re-created inside the same transaction: other connections
        never see it missing).
        """
        entries = list(entries)  # it may be run twice (a repaired index)
        with self._write() as conn:
            # The real time, even before the latest entry's (a clock that was fast, then corrected): raising it
            # to that would stamp every later entry with the wrong time. A row earlier than the one before it
            # turns the meta flag created_follows_id off (schema 3's trigger), so newest first then sorts by
            # time instead of reading ids in order, and stays correct.
            now = time.time()
            for entry in entries:
                if entry.outcome not in OUTCOMES:
                    raise HistoryError(f"A history entry's outcome must be one of {', '.join(OUTCOMES)}, not "
                                       f"{entry.outcome!r}.")
            rows = [row_values(entry, now) for entry in entries]
            if len(rows) < _BULK_ROWS:
                return [conn.execute(INSERT_SQL, row).lastrowid for row in rows]
            trigger_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                                       (_FTS_INSERT_TRIGGER,)).fetchone()[0]
            conn.execute(f"DROP TRIGGER {_FTS_INSERT_TRIGGER}")
            conn.executemany(INSERT_SQL, rows)
            # Under the write lock, AUTOINCREMENT ids of one statement are consecutive.
            first = conn.execute("SELECT last_insert_rowid()").fetchone()[0] - len(rows) + 1
            conn.execute("INSERT INTO entries_fts (rowid, prompt, negative_prompt) "
                         "SELECT id, prompt, negative_prompt FROM entries WHERE id >= ? ORDER BY id", (first,))
            conn.execute(trigger_sql)
            return list(range(first, first + len(rows)))

    @repairs_index
    def set_starred(self, entry_id: int, starred: bool) -> bool:
        """Star or unstar an entry; False when there is no such entry."""
        with self._write() as conn:
            return conn.execute("UPDATE entries SET starred = ? WHERE id = ?",
                                (int(bool(starred)), entry_id)).rowcount > 0

    @repairs_index
    def delete(self, entry_id: int, remove_files: bool = True) -> bool:
        """Forget an entry; with remove_files, also delete its image, source picture and mask files and the
        control pictures kept for its guides, when no other entry uses them. False when there is no such entry.

        The row goes first, then the files: a crash in between leaves a stray file, never a row without one.
        """
        with self._write() as conn:
            row = conn.execute("SELECT image_path, source_image_path, source_mask_path, params FROM entries "
                               "WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            controls = kept_controls(row[3])
            paths = list(dict.fromkeys([*(p for p in row[:3] if p), *controls]))
            still_used = (referenced(conn, paths) | controls_referenced(conn, controls)
                          if remove_files and paths else set())
        if remove_files:
            for path in paths:
                if path in still_used:
                    continue
                if not Path(path).is_absolute():  # recorded by an older Studio: relative to a folder long gone
                    log.warning("Not removing %s of deleted history entry %s: a relative path", path, entry_id)
                    continue
                try:
                    Path(path).unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("Could not remove %s of deleted history entry %s: %s", path, entry_id, exc)
        return True
