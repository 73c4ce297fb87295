"""Reading a history database Studio may not write to (a read-only folder or disk, another user's files): what
``studio history search``, ``show`` and ``rerun`` need, where opening it for writing is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from studio.services.history_errors import SQLITE_CANTOPEN, SQLITE_READONLY, primary_code
from studio.services.history_schema import SCHEMA_VERSION


def connect_read_only(path: Path, timeout: float) -> tuple[sqlite3.Connection, str | None]:
    """A read-only connection, and a sentence when it may miss the newest entries (else None).

    ``mode=ro`` first. A WAL database read that way needs its -shm file, which SQLite cannot make in a read-only
    folder; then the file is opened as ``immutable`` (no locks, no -shm), which reads it as it is on disk without
    its -wal file: entries still there (Studio ended without closing the history) are not seen.
    """
    uri = path.resolve().as_uri()
    try:
        return _opened(f"{uri}?mode=ro", timeout), None
    except sqlite3.OperationalError as exc:
        if primary_code(exc) not in (SQLITE_READONLY, SQLITE_CANTOPEN):  # a writer refused, or no -shm file
            raise
    conn = _opened(f"{uri}?immutable=1", timeout)
    wal = path.with_name(path.name + "-wal")
    unseen = wal.is_file() and wal.stat().st_size > 0
    return conn, ("Its newest entries may be missing: they are still in its -wal file, which only a Studio that "
                  "may write there takes in." if unseen else None)


def _opened(uri: str, timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA user_version").fetchone()  # opens the file (and the -shm) now, not at the first search
    except BaseException:
        conn.close()
        raise
    return conn


def schema_problem(conn: sqlite3.Connection, path: Path) -> str | None:
    """Why the database cannot be read as it is (its schema is another version's: it cannot be migrated without
    writing), or None."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found == 0:
        return f"The history database {path} holds no history yet."
    if found > SCHEMA_VERSION:
        return (f"The history database {path} was made by a newer version of Studio (schema {found}, this version "
                f"knows {SCHEMA_VERSION}); update Studio to use it.")
    if found < SCHEMA_VERSION:
        return (f"The history database {path} was made by an earlier version of Studio, and can only be read once "
                "Studio updates it, where it may write to it and to its folder.")
    return None
