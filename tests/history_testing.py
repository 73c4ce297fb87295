"""History entries and a look at the database file from outside the store, for the history tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from studio.services.history_store import HistoryEntry


def entry(prompt: str) -> HistoryEntry:
    return HistoryEntry(prompt=prompt, model_name="tiny-sd", seed=1, steps=2, width=64, height=64)


def prompts_on_disk(path: Path) -> list[str]:
    """The prompts the file at ``path`` holds, read by a connection of its own (not the store's)."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT prompt FROM entries ORDER BY id")]
    finally:
        conn.close()


class Locker:
    """Another program's write lock on the database, held until released."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()
