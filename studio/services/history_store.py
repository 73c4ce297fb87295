"""The prompt history and gallery: every job Studio ran, in SQLite (WAL, FTS5) in the user data folder.

One row per output image (a batch of four is four rows, each with its own seed, so each can be
run again exactly), and one row for a job that failed or was cancelled before making any image.
Image files are written (atomically, fsynced) before the row that points at them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable

from studio.services.history_damage import DamagedDatabase, check_database, companions_found, move_aside
from studio.services.history_entry import (
    INSERT_SQL,
    OUTCOMES,
    SELECT_SQL,
    HistoryEntry,
    entry_from_row,
    row_values,
)
from studio.services.history_errors import (
    HistoryError,
    HistoryLocked,
    is_damage,
    shape_problem,
    translated,
)
from studio.services.history_file_uses import controls_referenced, kept_controls, referenced
from studio.services.history_file_watch import DatabaseFileWatch
from studio.services.history_index_repair import INDEX_REBUILT, rebuild_damaged_index, repairs_index
from studio.services.history_journal import PendingJournal, insert_unmarked, journal_folder
from studio.services.history_pending import PendingEntries, entries_phrase
from studio.services.history_query import (
    NEWEST_FIRST,
    HistoryQuery,
    created_follows_id,
    fold,
    fts_query,
    ids_sql,
    register_functions,
    unspaced_words,
    where_sql,
)
from studio.services.history_reading import connect_read_only, schema_problem
from studio.services.history_schema import SCHEMA_VERSION, NewerSchemaError, migrate

log = logging.getLogger(__name__)
RECENT_PROMPTS = 1000  # earlier prompts the prompt box offers (Up/Down, completion)

HISTORY_FILE = "history.db"
_ID_CHUNK = 500  # ids per "IN (...)" query, well under every SQLite's variable limit
SQLITE_MAX_INT = 2**63 - 1
_BULK_ROWS = 1000  # add_many batches from this size index their text in one statement
_FTS_INSERT_TRIGGER = "entries_fts_insert"


def default_history_path() -> Path:
    """Where Studio keeps its history: ``<user data folder>/history.db``."""
    from studio.core.paths import studio_paths

    return studio_paths().data_dir / HISTORY_FILE


class HistoryStore:
    """Thread-safe: each thread gets its own connection (the engine thread writes, the UI reads).

    ``notice`` is a sentence for the person when something happened at open (a damaged database
    was set aside), else None. ``read_only``: opened only to read (history_reading), where writing is refused;
    nothing is checked, repaired or migrated then.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 5.0, read_only: bool = False) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.notice: str | None = None
        self._notice_lock = threading.Lock()  # each thread's first connection may add to it
        self.read_only = read_only
        self._local = threading.local()
        self._closed = False
        # The file this store opened, checked before each use (removed, replaced or overwritten meanwhile).
        self._file = DatabaseFileWatch(self.path, busy_timeout, self._open_checked, self._drop_connection)
        # Entries that could not be written while another program held the lock: kept, and written by add_pending.
        journal = None if read_only else PendingJournal(journal_folder(self.path))  # kept across a crash
        self._pending = PendingEntries(self._add_kept, journal)
        if problem := shape_problem(self.path):
            raise problem
        if read_only:
            with self._errors():
                problem = schema_problem(self._conn(), self.path)
            if problem:
                self._drop_connection()
                raise HistoryError(problem)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"The history folder {self.path.parent} could not be created: "
                               f"{exc.strerror or exc}.") from None
        found = companions_found(self.path)
        try:
            self._open_checked()
        except DamagedDatabase as exc:
            self._drop_connection()
            aside = move_aside(self.path, found)
            log.warning("History database %s was damaged (%s); moved to %s", self.path, exc, aside)
            self.notice = (f"The history database was damaged, so Studio set it aside as {aside.name} "
                           f"(in {aside.parent}) and started a new, empty history.")
            self._file.open_new()
        self._file.start()
        self._add_journaled()

    # -- opening ---------------------------------------------------------------------------
    def _open_checked(self) -> None:
        """Check, open and migrate; DamagedDatabase when the file is damaged, HistoryError when unusable."""
        if self.path.exists() and self.path.stat().st_size > 0:
            check_database(self.path, self.busy_timeout)
        try:
            conn = self._conn(watch=False)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.info("History database %s stays in %s journal mode", self.path, mode)
            migrate(conn)
        except NewerSchemaError as exc:
            self._drop_connection()
            raise HistoryError(
                f"The history database {self.path} was made by a newer version of Studio (schema {exc.found}, "
                f"this version knows {SCHEMA_VERSION}); update Studio to use it.") from None
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise DamagedDatabase(str(exc)) from exc
            self._drop_connection()
            raise translated(exc, self.path) from None

    # -- connections -----------------------------------------------------------------------
    def _conn(self, watch: bool = True) -> sqlite3.Connection:
        if watch and self._file.watching and not self._closed:
            self._file.follow()
            if getattr(self._local, "generation", self._file.generation) != self._file.generation:
                self._drop_connection()  # still on the file that was removed, replaced or set aside
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise HistoryError("The history is closed.")
        if self.read_only:
            conn, notice = connect_read_only(self.path, self.busy_timeout)
            if notice:
                self._add_notice(notice)
        else:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000):d}")
            # WAL + NORMAL: a power cut may lose the last rows, never consistency (and their files were
            # fsynced before them, so no row ever lacks its file).
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            register_functions(conn)
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        self._local.generation = self._file.generation
        return conn

    def _add_notice(self, text: str) -> None:
        """Add a sentence to ``notice``: what one thread's connection or a repair found is kept, whatever another
        thread's connection finds later (that one found no -wal file, the app's note on a read-only history…)."""
        with self._notice_lock:
            if text not in (self.notice or ""):
                self.notice = " ".join(filter(None, (self.notice, text)))

    def take_news(self) -> list[str]:
        """Sentences about what happened to the database file since the last call (it was removed, replaced or
        damaged while Studio ran, and a new one was started), for the person; each is given once."""
        return self._file.take_news()

    def _set_aside_damaged(self) -> bool:
        """A database damaged while Studio ran set aside and a new one started now (history_file_watch); True when
        that was done."""
        if self.read_only or self._closed:
            return False
        return self._file.set_aside_damaged()

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

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

    def _repair_index(self) -> bool:
        """Rebuild a damaged full-text index (the entries table being sound); True when it was rebuilt."""
        if not rebuild_damaged_index(self._conn(), self._write, self.path):
            return False
        self._add_notice(INDEX_REBUILT)
        return True

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise translated(exc, self.path) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taking the write lock at once, so it never deadlocks upgrading)."""
        with self._errors():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may already have rolled back (a full disk)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

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

    # -- reading ---------------------------------------------------------------------------
    @repairs_index
    def get(self, entry_id: int) -> HistoryEntry | None:
        if not -SQLITE_MAX_INT <= entry_id <= SQLITE_MAX_INT:
            return None  # no row has it (SQLite's integers are 64-bit)
        with self._errors():
            row = self._conn().execute(f"{SELECT_SQL} WHERE id = ?", (entry_id,)).fetchone()
        return None if row is None else entry_from_row(row)

    @repairs_index
    def search_ids(self, query: HistoryQuery = HistoryQuery(), limit: int | None = None) -> list[int]:
        """Ids of the entries matching query, newest first (a gallery fetches the entries page by page)."""
        with self._errors():
            conn = self._conn()
            sql, args = ids_sql(query, created_follows_id(conn))
            if limit is not None:
                sql += " LIMIT ?"
                args.append(min(max(0, int(limit)), SQLITE_MAX_INT))
            return [row[0] for row in conn.execute(sql, args)]

    @repairs_index
    def entries(self, ids: Sequence[int]) -> list[HistoryEntry]:
        """The entries with these ids, in the order given (ids that no longer exist are skipped)."""
        found: dict[int, HistoryEntry] = {}
        with self._errors():
            conn = self._conn()
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = list(ids[start:start + _ID_CHUNK])
                marks = ", ".join("?" for _ in chunk)
                for row in conn.execute(f"{SELECT_SQL} WHERE id IN ({marks})", chunk):
                    entry = entry_from_row(row)
                    found[entry.id] = entry
        return [found[i] for i in ids if i in found]

    def search(self, query: HistoryQuery = HistoryQuery(), limit: int | None = 50) -> list[HistoryEntry]:
        """The entries matching query, newest first."""
        # Ids first, then the rows: sorting only (created, id) pairs is much cheaper than whole rows.
        return self.entries(self.search_ids(query, limit))

    @repairs_index
    def count(self, query: HistoryQuery = HistoryQuery()) -> int:
        match = fts_query(query.text)
        indexed_only = match and not unspaced_words(query.text)
        if indexed_only and replace(query, text="") == HistoryQuery():  # words only: the index alone knows
            sql, args = "SELECT count(*) FROM entries_fts WHERE entries_fts MATCH ?", [match]
        else:
            where, args = where_sql(query)
            sql = f"SELECT count(*) FROM entries{where}"
        with self._errors():
            return self._conn().execute(sql, args).fetchone()[0]

    @repairs_index
    def recorded_files(self, paths: Sequence[str]) -> set[str]:
        """Which of these files (full paths) an entry points at: its picture, source picture or mask, or a control
        picture kept for its guides. Writing over one would make the entry show another picture."""
        if not paths:
            return set()
        with self._errors():
            conn = self._conn()
            return referenced(conn, list(paths)) | controls_referenced(conn, list(paths))

    @repairs_index
    def models(self) -> list[str]:
        """The distinct model names in the history, sorted (for the model filter).

        Names differing only in case (DreamShaper, dreamshaper) are one model to the filter, which folds case:
        listed once, as most recently written."""
        with self._errors():
            rows = self._conn().execute(  # SQLite takes a bare column from the row where max() is found
                "SELECT model_name, max(created) FROM entries WHERE model_name != '' "
                "GROUP BY studio_fold(model_name)").fetchall()
        return sorted((name for name, _ in rows), key=lambda name: (fold(name), name))

    @repairs_index
    def recent_prompts(self, limit: int = RECENT_PROMPTS) -> list[str]:
        """Distinct prompts, most recently used first (for Up/Down recall and completion)."""
        prompts: dict[str, None] = {}
        with self._errors():
            cursor = self._conn().execute(f"SELECT prompt FROM entries WHERE prompt != '' {NEWEST_FIRST}")
            try:
                while len(prompts) < limit and (rows := cursor.fetchmany(256)):
                    for (prompt,) in rows:
                        prompts.setdefault(prompt)
                        if len(prompts) >= limit:
                            break
            finally:
                cursor.close()
        return list(prompts)

    def schema_version(self) -> int:
        with self._errors():
            return self._conn().execute("PRAGMA user_version").fetchone()[0]

