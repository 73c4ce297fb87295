"""The history database's connections: one per thread, the file checked, opened and migrated, a damaged one set
aside, and the file watched while Studio runs (removed, replaced or overwritten meanwhile)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.services.history_damage import DamagedDatabase, check_database, companions_found, move_aside
from studio.services.history_errors import HistoryError, is_damage, shape_problem, translated
from studio.services.history_file_watch import DatabaseFileWatch
from studio.services.history_index_repair import INDEX_REBUILT, rebuild_damaged_index
from studio.services.history_query import register_functions
from studio.services.history_reading import connect_read_only, schema_problem
from studio.services.history_schema import SCHEMA_VERSION, NewerSchemaError, migrate

log = logging.getLogger(__name__)


class HistoryConnection:
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

    def _open(self) -> None:
        """Open the database at ``path`` (HistoryError when it cannot be used), setting a damaged one aside."""
        if problem := shape_problem(self.path):
            raise problem
        if self.read_only:
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

    def schema_version(self) -> int:
        with self._errors():
            return self._conn().execute("PRAGMA user_version").fetchone()[0]
