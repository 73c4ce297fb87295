"""history_index_repair: a damaged full-text index found while the history is in use is rebuilt from the entries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from studio.services.history_query import HistoryQuery
from studio.services.history_store import HistoryEntry, HistoryStore


def entry(prompt: str) -> HistoryEntry:
    return HistoryEntry(prompt=prompt, negative_prompt="blurry", model_name="tiny-sd", seed=42, steps=20,
                        width=512, height=512)


def ids_for(store: HistoryStore, **query) -> list[int]:  # noqa: ANN003
    return store.search_ids(HistoryQuery(**query))


def aside_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".corrupt-" in p.name)


def test_a_damaged_full_text_index_is_rebuilt_from_the_entries_and_said_once(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    store.add_many([entry(prompt=f"prompt number {i} cat") for i in range(300)])
    store.close()
    conn = sqlite3.connect(path)  # quick_check does not look into FTS5's data: the entries stay sound
    conn.execute("UPDATE entries_fts_data SET block = randomblob(length(block)) WHERE id > 10")
    conn.commit()
    conn.close()
    damaged = HistoryStore(path)
    assert damaged.count(HistoryQuery(text="number 5")) == 11  # 5, 50-59
    assert "search index" in damaged.notice and "rebuilt" in damaged.notice
    assert len(ids_for(damaged, text="cat")) == 300
    new = damaged.add(entry(prompt="a new cat"))
    assert ids_for(damaged, text="new cat") == [new] and aside_files(tmp_path) == []
    damaged.close()
