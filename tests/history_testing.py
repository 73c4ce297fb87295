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
