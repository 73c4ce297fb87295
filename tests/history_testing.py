"""History entries and a look at the database file from outside the store, for the history tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from studio.services.history_query import HistoryQuery
from studio.services.history_store import HistoryEntry, HistoryStore

DAY = 24 * 3600.0
T0 = 1_760_000_000.0  # a fixed "now" for entries with explicit dates


def entry(prompt: str) -> HistoryEntry:
    return HistoryEntry(prompt=prompt, model_name="tiny-sd", seed=1, steps=2, width=64, height=64)


def detailed_entry(prompt: str = "a red fox in the snow", **kwargs) -> HistoryEntry:  # noqa: ANN003
    """An entry with every usual field set (``kwargs`` override them)."""
    values = dict(prompt=prompt, negative_prompt="blurry", model_name="tiny-sd", model_hash="0123456789",
                  model_path="/models/tiny-sd", seed=42, steps=20, cfg_scale=7.0, sampler="Euler a",
                  width=512, height=512)
    values.update(kwargs)
    return HistoryEntry(**values)


def ids_for(store: HistoryStore, **query) -> list[int]:  # noqa: ANN003
    """The ids of the entries matching a HistoryQuery made of ``query``, newest first."""
    return store.search_ids(HistoryQuery(**query))


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
