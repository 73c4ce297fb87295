"""The history benchmark at a smaller size, with generous bounds (the figures for 100,000 entries come from
``python tests/benchmarks/history_search.py``)."""

from __future__ import annotations

from benchmarks.history_search import build, measure

ENTRIES = 30_000


def test_search_and_gallery_open_stay_fast(tmp_path):
    path = tmp_path / "history.db"
    store, seconds = build(path, ENTRIES)
    assert store.count() == ENTRIES
    figures = measure(store, path)
    # Entries recorded in time order keep full-text searches on the index's own order (no sort).
    assert store._conn().execute("SELECT value FROM meta").fetchone() == (1,)
    store.close()
    print(f"\n{ENTRIES:,} entries built in {seconds:.2f} s: "
          + ", ".join(f"{name} {ms:.1f} ms" for name, ms in figures.items()))
    assert seconds < 20
    assert figures["search_all_ids_median"] < 50
    assert figures["search_first_200_entries_median"] < 50
    assert figures["gallery_open_including_connect_and_check"] < 300
    assert figures["all_ids_newest_first"] + figures["first_page_200_entries"] < 150
    for name in ("count_all", "count_text", "models", "recent_prompts_1000", "add_one", "filter_model_text_date"):
        assert figures[name] < 100, name
