"""Finding a damaged history database before Studio opens it, and setting it aside (with its -wal and -shm files)
so that a new, empty history can start in its place."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from studio.services.history_errors import HistoryError, is_damage, translated

COMPANIONS = ("-wal", "-shm")  # SQLite's files beside a WAL database


class DamagedDatabase(Exception):
    """The file is not a usable SQLite database (internal: leads to moving it aside)."""


def companion(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def companions_found(path: Path) -> set[str]:
    """The suffixes of the -wal and -shm files beside the database now (before anything opens it)."""
    return {suffix for suffix in COMPANIONS if companion(path, suffix).exists()}


def check_database(path: Path, busy_timeout: float) -> None:
    """``PRAGMA quick_check`` on a read-only connection: closing it never checkpoints or deletes the
    -wal file, so a damaged database is set aside exactly as it was found.

    DamagedDatabase when the file is damaged, HistoryError when it cannot be checked."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                               timeout=busy_timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise translated(exc, path) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000):d}")
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
    except sqlite3.Error as exc:
        if is_damage(exc):
            raise DamagedDatabase(str(exc)) from exc
        raise translated(exc, path) from None
    finally:
        conn.close()
    if problems != ["ok"]:
        raise DamagedDatabase(" ".join(str(p) for p in problems)[:300])


def move_aside(path: Path, found: set[str]) -> Path:
    """Rename the damaged database to ``<name>.corrupt-<time>``; returns its new path."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while aside.exists():
        counter += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
    try:
        # The -wal and -shm files found with the damaged database go with it, under its new name;
        # the empty ones the check itself created are removed.
        for suffix in COMPANIONS:
            beside = companion(path, suffix)
            if suffix in found and beside.exists():
                beside.replace(aside.with_name(aside.name + suffix))
            else:
                beside.unlink(missing_ok=True)
        path.replace(aside)
    except OSError as exc:
        raise HistoryError(f"The history database {path} is damaged and could not be moved aside: "
                           f"{exc.strerror or exc}.") from None
    return aside
