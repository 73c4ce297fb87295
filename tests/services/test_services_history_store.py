"""HistoryStore: SQLite (WAL, FTS5) history — search, filters, star/delete, migrations, damage, locks, crashes."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from studio.services import history_schema
from studio.services.history_schema import SCHEMA_1, SCHEMA_VERSION, migrate
from studio.services.history_errors import HistoryError, HistoryLocked
from studio.services.history_query import HistoryQuery, fts_query
from studio.services.history_store import HistoryEntry, HistoryStore
from studio.services.outputs import OutputStore

DAY = 24 * 3600.0
T0 = 1_760_000_000.0  # a fixed "now" for entries with explicit dates


def entry(prompt: str = "a red fox in the snow", **kwargs) -> HistoryEntry:  # noqa: ANN003
    values = dict(prompt=prompt, negative_prompt="blurry", model_name="tiny-sd", model_hash="0123456789",
                  model_path="/models/tiny-sd", seed=42, steps=20, cfg_scale=7.0, sampler="Euler a",
                  width=512, height=512)
    values.update(kwargs)
    return HistoryEntry(**values)


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "data" / "history.db")
    yield s
    s.close()


def ids_for(store: HistoryStore, **query) -> list[int]:  # noqa: ANN003
    return store.search_ids(HistoryQuery(**query))


# -- writing and reading -------------------------------------------------------------------

def test_an_entry_comes_back_with_every_field(store, tmp_path):
    before = time.time()
    original = entry(prompt='a fox, in the snow: "winter"\nsecond line ü 狐', strength=0.6,
                     generator="gated", generator_version="1.2.3",
                     postprocess=[{"id": "upscale", "scale": 2}], params={"batch_index": 1, "inpaint": {"padding": 8}},
                     elapsed=1.25, image_path=str(tmp_path / "a.png"), source_image_path=str(tmp_path / "s.png"),
                     source_mask_path=str(tmp_path / "m.png"), starred=True)
    entry_id = store.add(original)
    got = store.get(entry_id)
    assert got.id == entry_id
    assert before <= got.created <= time.time()  # set by the store when 0
    assert got == replace(original, id=entry_id, created=got.created)
    assert store.get(entry_id + 1000) is None
    # An explicit date is kept.
    dated = store.get(store.add(entry(created=T0)))
    assert dated.created == T0


def test_entries_keep_the_real_time_after_one_made_while_the_clock_was_fast(store, monkeypatch):
    real = time.time()
    monkeypatch.setattr("studio.services.history_store.time.time", lambda: real + 3 * 3600)  # fast, then corrected
    fast = store.add(entry(prompt="made while the clock was fast"))
    monkeypatch.setattr("studio.services.history_store.time.time", lambda: real + 60)
    later = [store.add(entry(prompt=f"made later {i}")) for i in range(2)]
    assert [store.get(i).created for i in later] == [real + 60] * 2  # not the fast entry's time
    # Times no longer follow ids: newest first sorts by time, text searches included.
    assert store._conn().execute("SELECT value FROM meta").fetchone() == (0,)
    assert store.search_ids() == [fast, later[1], later[0]]
    assert ids_for(store, text="made") == [fast, later[1], later[0]]
    assert store.count(HistoryQuery(until=real + 61)) == 2


def test_ids_are_newest_first_and_entries_keep_the_order_asked_for(store):
    ids = [store.add(entry(prompt=f"prompt {i}", created=T0 + i)) for i in range(5)]
    late_but_older = store.add(entry(prompt="imported", created=T0 - 10))  # added last, made first
    assert store.search_ids() == [*reversed(ids), late_but_older]
    assert store.search_ids(limit=2) == [ids[4], ids[3]]
    assert [e.prompt for e in store.search(limit=3)] == ["prompt 4", "prompt 3", "prompt 2"]
    asked = [ids[2], late_but_older, ids[0], 999_999, ids[4]]
    assert [e.id for e in store.entries(asked)] == [ids[2], late_but_older, ids[0], ids[4]]  # unknown ids skipped
    assert store.entries([]) == []
    many = store.add_many(entry(prompt=f"bulk {i}", created=T0 + 100 + i) for i in range(1200))
    page = list(reversed(many))[:700]  # more ids than one IN (...) query takes
    assert [e.id for e in store.entries(page)] == page
    assert store.count() == 6 + 1200
    assert store.count(HistoryQuery(text="bulk")) == 1200


def test_bulk_add_indexes_text_and_keeps_the_trigger_for_later_rows(store):
    ids = store.add_many(entry(prompt=f"castle number{i}", negative_prompt="fog") for i in range(1500))
    assert ids == list(range(1, 1501))
    assert ids_for(store, text="number1499") == [1500]
    assert store.count(HistoryQuery(text="castle fog")) == 1500
    later = store.add(entry(prompt="lighthouse"))
    assert ids_for(store, text="lighthouse") == [later]
    store.delete(1, remove_files=False)
    assert ids_for(store, text="number1") == [i for i in reversed(ids) if str(i - 1).startswith("1") and i != 1]
    # Ids are never reused, even the newest one's after it is deleted.
    store.delete(later, remove_files=False)
    more = store.add_many(entry(prompt=f"owl {i}", created=T0 + i) for i in range(1000))
    assert more[0] == later + 1 and ids_for(store, text="owl") == list(reversed(more))
    assert store._conn().execute("SELECT value FROM meta").fetchone() == (0,)  # T0 is before the rows above
    assert ids_for(store, text="castle")[:1] == [1500] and ids_for(store)[:2] == [1500, 1499]


# -- full-text search ----------------------------------------------------------------------

@pytest.fixture
def texts(store):
    prompts = {
        "fox": ('a red fox, in the snow: "winter"', "blurry, dark"),
        "castle": ("an old castle at night, oil painting", "text, watermark"),
        "unicode": ("Über straße ü 狐 kitsune", ""),
        "quoted": ('she said "hello" (loudly) -- [sic] 50% off', "low-res"),
        "cat": ("a cat sleeping on a windowsill", "foxes"),
    }
    return {name: store.add(entry(prompt=p, negative_prompt=n)) for name, (p, n) in prompts.items()}


@pytest.mark.parametrize(("text", "expected"), [
    ("fox ", ["fox"]),  # words are whole tokens ...
    ("fox", ["cat", "fox"]),  # ... except the last one while it is being typed: "foxes" (a negative prompt) too
    ("fo", ["cat", "fox"]),
    ("FOX snow", ["fox"]),  # case-insensitive, every word required
    ("snow fox ", ["fox"]),  # in any order
    ("red fo", ["fox"]),
    ("re fox", []),  # only the last word is a prefix
    ("fox !!!", ["fox"]),  # words without letters are left out
    ("watermark", ["castle"]),  # negative prompts are searched
    ("uber", ["unicode"]),  # diacritics folded
    ("STRASSE", []),
    ("straße", ["unicode"]),
    ("狐", ["unicode"]),
    ('"hello"', ["quoted"]),  # quotes are data
    ('"winter', ["fox"]),  # an unbalanced quote too
    ("(loudly)", ["quoted"]),
    ("[sic]", ["quoted"]),
    ("50%", ["quoted"]),
    ("low-res", ["quoted"]),  # a hyphenated word is a phrase
    ("res-low", []),
])
def test_full_text_search_treats_the_text_as_words(store, texts, text, expected):
    found = ids_for(store, text=text)
    assert found == sorted((texts[n] for n in expected), reverse=True)


def test_words_in_unspaced_scripts_and_emoji_are_found_inside_prompts(store, texts):
    """unicode61 takes a run of Chinese or Japanese as one token and drops emoji: those words are matched as
    substrings of the prompts instead, with the indexed words and the filters as before."""
    chinese = store.add(entry(prompt="一只可爱的猫，坐在窗台上", negative_prompt="模糊"))
    japanese = store.add(entry(prompt="かわいい猫 on a windowsill 🦊", model_name="other"))
    expected = {"猫": [japanese, chinese], "窗台": [chinese], "模糊": [chinese], "🦊": [japanese],
                "猫 windowsill": [japanese], "狐": [texts["unicode"]], "かわいい": [japanese], "🐈": [], "窗台 fox": []}
    for text, ids in expected.items():
        assert ids_for(store, text=text) == ids, text
        assert store.count(HistoryQuery(text=text)) == len(ids), text
    assert ids_for(store, text="猫", model="other") == [japanese]


def test_words_matched_inside_prompts_fold_case_beyond_ascii_the_same_on_both_sides(store):
    emile = store.add(entry(prompt="Émile🦊 portrait"))
    athena = store.add(entry(prompt="a temple", negative_prompt="ΑΘΗΝΑ🏛"))
    strasse = store.add(entry(prompt="STRASSE🚲 at night"))
    expected = {"Émile🦊": [emile], "émile🦊": [emile], "ÉMILE🦊": [emile], "αθηνα🏛": [athena], "ΑΘΗΝΑ🏛": [athena],
                "straße🚲": [strasse], "portrait émile🦊": [emile]}
    for text, ids in expected.items():
        assert ids_for(store, text=text) == ids, text
        assert store.count(HistoryQuery(text=text)) == len(ids), text


def test_a_query_with_bytes_that_are_not_text_and_ids_past_sqlite_s_range_are_no_error(store, texts):
    assert ids_for(store, text="fox" + b"\xff".decode("utf-8", "surrogateescape")) == [texts["fox"]]
    assert store.get(10**30) is None and store.get(-(10**30)) is None
    assert len(store.search(limit=10**30)) == len(texts)


@pytest.mark.parametrize("text", [
    "", "   ", "!!!", "*", '"', '""', "()", "-", "^", ":", "--", "___", "…", "\x00",
])
def test_a_query_with_nothing_searchable_matches_everything(store, texts, text):
    assert len(ids_for(store, text=text)) == len(texts)


@pytest.mark.parametrize("text", [
    "fox OR cat", "fox AND snow", "NOT fox", "fox NEAR cat", "NEAR(fox cat)", "prompt:fox", "{prompt}: fox",
    "fox*", "^fox", "-fox", "fox + snow", 'fox" OR "cat', "fox)", "(fox", "a\"b\"c", "fox\x00cat",
    "'; DROP TABLE entries; --", "' OR 1=1 --",
])
def test_fts_syntax_typed_by_the_person_is_never_syntax(store, texts, text):
    # No exception, and operators are plain words: "fox OR cat" needs the word "or", which no prompt has.
    found = ids_for(store, text=text)
    assert set(found) <= set(texts.values())
    assert store.count() == len(texts)  # and nothing was dropped
    if text in ("fox OR cat", "fox AND snow", "fox NEAR cat", "NOT fox"):
        assert found == []


def test_fts_query_quotes_every_word():
    assert fts_query("red fox") == '"red" "fox"*'
    assert fts_query("red fox ") == '"red" "fox"'
    assert fts_query('say "hi"') == '"say" """hi"""*'
    assert fts_query("fox !!!") == '"fox"'  # the word being typed is "!!!": "fox" is finished
    assert fts_query("... ---") == ""


@pytest.mark.parametrize("in_order", [True, False])
def test_newest_first_is_the_same_whether_or_not_times_follow_ids(store, in_order):
    """Text searches read ids in index order while every row's time follows the one before; once a row
    breaks that (a clock set back, an import), they sort by time. Both agree with a plain sort."""
    rng = random.Random(7)
    words = ["fox", "castle", "night", "snow", "forest", "owl"]
    created = T0
    for i in range(400):
        created += rng.choice((0.0, 0.5, 3.0))  # equal times too: then the higher id is newer
        when = created if in_order or rng.random() > 0.1 else created - rng.uniform(1, 500)
        store.add(entry(prompt=" ".join(rng.sample(words, 3)), model_name=rng.choice(("a", "b")),
                        starred=rng.random() < 0.3, created=when))
    follows = store._conn().execute("SELECT value FROM meta").fetchone()[0]
    assert bool(follows) is in_order
    everything = store.search(limit=None)
    assert [e.id for e in everything] == [e.id for e in sorted(everything, key=lambda e: (-e.created, -e.id))]
    for query in (HistoryQuery(text="fox"), HistoryQuery(text="fo", model="a"), HistoryQuery(text="owl castle"),
                  HistoryQuery(text="snow", starred_only=True, since=T0 + 100, until=T0 + 600),
                  HistoryQuery(text="nothing")):
        words_in = query.text.split()
        expected = [e.id for e in everything
                    if all(any(w.startswith(q) if q == words_in[-1] else w == q for w in e.prompt.split())
                           for q in words_in)
                    and (query.model is None or e.model_name.casefold() == query.model.casefold())
                    and (not query.starred_only or e.starred)
                    and (query.since is None or e.created >= query.since)
                    and (query.until is None or e.created < query.until)]
        assert store.search_ids(query) == expected, query
        assert store.search_ids(query, limit=5) == expected[:5]
        assert store.count(query) == len(expected)


# -- filters -------------------------------------------------------------------------------

def test_filters_by_model_dates_starred_and_outcome(store):
    a = store.add(entry(prompt="castle", model_name="sd15", created=T0))
    b = store.add(entry(prompt="castle", model_name="sdxl", created=T0 + DAY))
    c = store.add(entry(prompt="forest", model_name="sdxl", created=T0 + 2 * DAY, starred=True))
    d = store.add(entry(prompt="castle", model_name="sd15", created=T0 + 3 * DAY, outcome="failed",
                        message="The GPU ran out of memory."))
    e = store.add(entry(prompt="castle", model_name="sd15", created=T0 + 4 * DAY, outcome="cancelled"))
    assert ids_for(store, model="sdxl") == [c, b]
    assert ids_for(store, model="nope") == []
    assert ids_for(store, since=T0 + DAY, until=T0 + 3 * DAY) == [c, b]
    assert ids_for(store, since=T0 + 3 * DAY) == [e, d]
    assert ids_for(store, until=T0 + DAY) == [a]
    assert ids_for(store, starred_only=True) == [c]
    assert ids_for(store, outcome="failed") == [d]
    assert ids_for(store, outcome="ok") == [c, b, a]
    assert ids_for(store, text="castle", model="sd15", outcome="ok") == [a]
    assert ids_for(store, text="castle", since=T0 + DAY, until=T0 + 4 * DAY) == [d, b]
    assert store.count(HistoryQuery(text="castle", model="sd15")) == 3
    assert store.set_starred(a, True)
    assert ids_for(store, starred_only=True, model="sd15") == [a]
    assert store.set_starred(c, False) and not store.get(c).starred
    assert ids_for(store, starred_only=True) == [a]
    assert not store.set_starred(12345, True)
    assert store.get(d).message == "The GPU ran out of memory."
    with pytest.raises(HistoryError, match="outcome"):
        store.add(entry(outcome="exploded"))


def test_the_model_filter_ignores_case_as_the_words_do(store):
    """`--model dreamshaper` finds DreamShaper, and so does the gallery's filter (both use this query)."""
    a = store.add(entry(prompt="castle", model_name="DreamShaper", created=T0))
    b = store.add(entry(prompt="castle", model_name="ÉCLAIR-XL", created=T0 + 1))
    store.add(entry(prompt="castle", model_name="dreamshaper-v2", created=T0 + 2))
    assert ids_for(store, model="dreamshaper") == [a]
    assert ids_for(store, model="DREAMSHAPER", text="castle") == [a]
    assert ids_for(store, model="éclair-xl") == [b]  # beyond ASCII, which SQLite's NOCASE would miss
    assert store.count(HistoryQuery(model="Dreamshaper")) == 1


def test_models_and_recent_prompts(store):
    for i, (prompt, model) in enumerate([("one", "b-model"), ("two", "a-model"), ("one", "a-model"),
                                         ("three", ""), ("", "c-model"), ("two", "b-model")]):
        store.add(entry(prompt=prompt, model_name=model, created=T0 + i))
    assert store.models() == ["a-model", "b-model", "c-model"]
    assert store.recent_prompts() == ["two", "three", "one"]  # distinct, by last use, empty ones left out
    assert store.recent_prompts(limit=2) == ["two", "three"]
    assert store.recent_prompts(limit=0) == []
    store.add(entry(prompt="", model_name="B-Model", created=T0 + 10))
    store.add(entry(prompt="", model_name="Zeta", created=T0 + 11))
    # One name per model to the filter, which folds case: the one written last; sorted regardless of case.
    assert store.models() == ["a-model", "B-Model", "c-model", "Zeta"]


def test_delete_removes_the_files_no_other_entry_uses(store, tmp_path):
    files = {name: tmp_path / f"{name}.png" for name in ("a", "b", "source", "mask")}
    for path in files.values():
        Image.new("RGB", (4, 4)).save(path)
    shared = dict(source_image_path=str(files["source"]), source_mask_path=str(files["mask"]))
    first = store.add(entry(image_path=str(files["a"]), **shared))
    second = store.add(entry(image_path=str(files["b"]), **shared))
    assert store.delete(first)
    assert store.get(first) is None
    assert not files["a"].exists()
    assert files["source"].exists() and files["mask"].exists()  # the second entry still uses them
    assert store.delete(second)
    assert not any(p.exists() for p in files.values())
    assert not store.delete(second)
    assert ids_for(store, text="fox") == []  # gone from the full-text index too
    kept = tmp_path / "kept.png"
    Image.new("RGB", (4, 4)).save(kept)
    assert store.delete(store.add(entry(image_path=str(kept))), remove_files=False)
    assert kept.exists()
    # A file already gone is not an error.
    assert store.delete(store.add(entry(image_path=str(tmp_path / "never-written.png"))))



def test_delete_never_removes_a_file_recorded_by_a_relative_path(store, tmp_path, monkeypatch):
    """Relative to the folder Studio started in then, which is not this one: it would be another folder's file."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (4, 4)).save(tmp_path / "00001-1.png")
    assert store.delete(store.add(entry(image_path="00001-1.png")))
    assert (tmp_path / "00001-1.png").exists()


# -- migrations ----------------------------------------------------------------------------

def make_schema_1_database(path: Path) -> None:
    """A history as the first Studio that had one left it: only migration 1, and rows in its columns."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, target=1)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in conn.execute("PRAGMA table_info(entries)")]
    assert "source_mask_path" not in columns and "generator_version" not in columns
    conn.executemany(
        "INSERT INTO entries (created, prompt, negative_prompt, model_name, seed, steps, cfg_scale, sampler, width, "
        "height, params, outcome, image_path, source_image_path, starred) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(T0, "an old castle", "fog", "sd15", 1, 20, 7.0, "Euler a", 512, 512, '{"batch_index": 0}', "ok",
          "/out/1.png", None, 0),
         (T0 + 1, "a red fox", "", "sd15", 2, 25, 6.5, "DDIM", 512, 768, "{}", "ok", "/out/2.png", "/src/2.png", 1),
         (T0 + 2, "a red fox", "", "sdxl", 3, 30, 5.0, "Euler", 1024, 1024, "{}", "failed", None, None, 0)])
    conn.close()


def test_a_schema_1_database_is_migrated_with_its_rows_intact(tmp_path):
    path = tmp_path / "history.db"
    make_schema_1_database(path)
    store = HistoryStore(path)
    assert store.schema_version() == SCHEMA_VERSION == 3
    assert store.notice is None
    old = store.search(limit=None)
    assert [(e.id, e.prompt, e.seed, e.sampler, e.height, e.outcome, e.starred) for e in old] == [
        (3, "a red fox", 3, "Euler", 1024, "failed", False),
        (2, "a red fox", 2, "DDIM", 768, "ok", True),
        (1, "an old castle", 1, "Euler a", 512, "ok", False)]
    assert old[2].params == {"batch_index": 0} and old[2].negative_prompt == "fog"
    assert old[1].source_image_path == "/src/2.png"
    assert all(e.source_mask_path is None and e.generator_version == "" for e in old)
    # The full-text index built by schema 1 still answers, and the new columns work.
    assert ids_for(store, text="fox") == [3, 2]
    assert ids_for(store, starred_only=True) == [2]
    new = store.add(entry(prompt="inpainted fox", source_image_path="/src/n.png", source_mask_path="/src/n-mask.png",
                          generator_version="0.1.0"))
    got = store.get(new)
    assert (got.source_mask_path, got.generator_version) == ("/src/n-mask.png", "0.1.0")
    assert ids_for(store, text="fox") == [new, 3, 2]
    store.close()
    # Opening again changes nothing.
    again = HistoryStore(path)
    assert again.schema_version() == 3 and again.count() == 4
    again.close()


def test_migrating_rows_made_out_of_time_order_keeps_newest_first_correct(tmp_path):
    path = tmp_path / "history.db"
    make_schema_1_database(path)
    conn = sqlite3.connect(path)
    with conn:  # a row recorded after a clock went back
        conn.execute("INSERT INTO entries (created, prompt) VALUES (?, 'a red fox, early')", (T0 - 5,))
    conn.close()
    store = HistoryStore(path)
    assert store._conn().execute("SELECT value FROM meta").fetchone() == (0,)
    assert ids_for(store, text="fox") == [3, 2, 4]
    assert ids_for(store) == [3, 2, 1, 4]
    store.close()


def test_a_failing_migration_leaves_the_previous_schema(tmp_path, monkeypatch):
    path = tmp_path / "history.db"
    make_schema_1_database(path)
    broken = "ALTER TABLE entries ADD COLUMN half_done TEXT;\nTHIS IS NOT SQL;"
    monkeypatch.setattr(history_schema, "MIGRATIONS", (SCHEMA_1, broken))
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, target=2)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "half_done" not in [row[1] for row in conn.execute("PRAGMA table_info(entries)")]
    conn.close()


def test_a_database_from_a_newer_studio_is_refused_not_replaced(tmp_path):
    path = tmp_path / "history.db"
    HistoryStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(HistoryError, match="newer version of Studio"):
        HistoryStore(path)
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []


# -- damage and locks ----------------------------------------------------------------------

def aside_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".corrupt-" in p.name)


def test_a_file_that_is_not_a_database_is_moved_aside_and_a_fresh_one_made(tmp_path):
    path = tmp_path / "history.db"
    garbage = b"this is not SQLite at all\n" * 400
    path.write_bytes(garbage)
    (tmp_path / "history.db-wal").write_bytes(b"stale wal")
    store = HistoryStore(path)
    aside = aside_files(tmp_path)
    assert [p.name for p in aside] == [f"{aside[0].name}", f"{aside[0].name}-wal"]
    assert aside[0].name.startswith("history.db.corrupt-")
    assert aside[0].read_bytes() == garbage  # kept, byte for byte
    assert store.notice and "damaged" in store.notice and aside[0].name in store.notice
    assert store.count() == 0
    store.add(entry())
    assert store.count() == 1
    store.close()
    reopened = HistoryStore(path)
    assert reopened.notice is None and reopened.count() == 1
    reopened.close()


def test_a_truncated_database_is_moved_aside(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    store.add_many(entry(prompt=f"prompt number {i} " + "long words " * 30) for i in range(2000))
    store.close()
    size = path.stat().st_size
    assert size > 100_000 and not (tmp_path / "history.db-wal").exists()  # checkpointed on close
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    damaged = HistoryStore(path)
    assert damaged.notice is not None
    assert len(aside_files(tmp_path)) == 1 and aside_files(tmp_path)[0].stat().st_size == size // 2
    assert damaged.count() == 0
    damaged.close()


def test_a_damaged_page_found_by_quick_check_is_moved_aside(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    store.add_many(entry(prompt=f"prompt number {i}") for i in range(3000))
    store.close()
    page_size = 4096
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entries_created'").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:  # scribble over the created index's root page, keeping the header intact
        f.seek((root - 1) * page_size + 8)
        f.write(os.urandom(page_size - 8))
    damaged = HistoryStore(path)
    assert damaged.notice is not None and len(aside_files(tmp_path)) == 1
    damaged.close()


LOCK_HOLDER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    if sys.argv[2] == "exclusive":
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("UPDATE entries SET starred = 1")
        conn.execute("COMMIT")  # in exclusive locking mode the lock stays after the commit
    else:
        conn.execute("BEGIN IMMEDIATE")  # a writer mid-transaction
        conn.execute("UPDATE entries SET starred = 1")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.close()
""")


def hold_lock(path: Path, mode: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(path), mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(10) == 0


def test_a_database_locked_by_another_process_is_not_mistaken_for_a_damaged_one(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    store.add(entry())
    store.close()
    holder = hold_lock(path, "exclusive")
    try:
        started = time.perf_counter()
        with pytest.raises(HistoryLocked, match="locked by another program"):
            HistoryStore(path, busy_timeout=0.3)
        assert time.perf_counter() - started >= 0.25  # it waited for the lock first
    finally:
        release(holder)
    assert aside_files(tmp_path) == []  # nothing moved aside
    store = HistoryStore(path)
    assert store.notice is None and store.count() == 1 and store.get(1).starred
    store.close()


def test_a_writer_in_another_process_makes_writes_wait_then_fail_with_a_sentence(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path, busy_timeout=0.3)
    first = store.add(entry())
    holder = hold_lock(path, "immediate")
    try:
        other = HistoryStore(path, busy_timeout=0.3)  # WAL: opening and reading go on during a write
        assert other.notice is None and other.search_ids() == [first]
        with pytest.raises(HistoryLocked):
            store.add(entry(prompt="second"))
        other.close()
    finally:
        release(holder)
    assert store.add(entry(prompt="second")) == first + 1
    assert aside_files(tmp_path) == []
    store.close()


def test_store_settings_wal_and_connection_per_thread(store):
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    other: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: other.append(store._conn()))
    thread.start()
    thread.join()
    assert other[0] is not conn
    with pytest.raises(sqlite3.ProgrammingError):  # check_same_thread stays on
        other[0].execute("SELECT 1")


def test_a_closed_store_refuses_use(tmp_path):
    store = HistoryStore(tmp_path / "history.db")
    store.close()
    with pytest.raises(HistoryError, match="closed"):
        store.count()


# -- concurrency and crashes ---------------------------------------------------------------

def test_readers_see_consistent_results_while_the_engine_thread_writes(store):
    total = 300
    errors: list[BaseException] = []
    done = threading.Event()
    seen_counts: list[int] = []

    def write() -> None:
        try:
            for i in range(total):
                store.add(entry(prompt=f"castle number {i}", created=T0 + i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                ids = store.search_ids(HistoryQuery(text="castle"))
                assert ids == sorted(ids, reverse=True)
                page = store.entries(ids[:50])
                assert [e.id for e in page] == ids[:50]
                seen_counts.append(store.count())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, name="studio-engine"),
               *(threading.Thread(target=read) for _ in range(2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert seen_counts and all(0 <= c <= total for c in seen_counts)
    assert store.count(HistoryQuery(text="castle")) == total


CRASH_WRITER = textwrap.dedent("""
    import random, sys, time
    from pathlib import Path
    from PIL import Image
    from studio.core.metadata import Recipe
    from studio.services.history_store import HistoryEntry, HistoryStore
    from studio.services.outputs import OutputStore

    root, db, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    outputs, store = OutputStore(root), HistoryStore(db)
    rng = random.Random(seed)
    print("ready", flush=True)
    while True:
        size = rng.choice((64, 192, 320))
        image = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
        recipe = Recipe("crash test " + str(seed), "", 20, "Euler a", 7.0, rng.randrange(2**32), size, size, "m")
        path = outputs.save(image, recipe)  # the file first (atomic, fsynced) ...
        store.add(HistoryEntry(prompt=recipe.prompt, seed=recipe.seed, width=size, height=size,
                               image_path=str(path)))  # ... then the row pointing at it
""")


def check_consistent(root: Path, db: Path) -> tuple[int, int]:
    """Every row's file is a complete PNG, and no final-named file is half written. Returns (rows, pngs)."""
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    conn.close()
    store = HistoryStore(db)
    assert store.notice is None
    rows = store.search(limit=None)
    store.close()
    for row in rows:
        with Image.open(row.image_path) as img:
            img.verify()
    pngs = sorted(root.rglob("*.png"))
    for png in pngs:  # including files whose row never got written: still never half a file
        with Image.open(png) as img:
            img.load()
    return len(rows), len(pngs)


def test_killing_a_process_mid_save_leaves_a_consistent_history(tmp_path):
    root, db = tmp_path / "outputs", tmp_path / "history.db"
    rng = random.Random(1234)
    iterations, started = 25, time.perf_counter()
    rows = pngs = 0
    for iteration in range(iterations):
        child = subprocess.Popen([sys.executable, "-c", CRASH_WRITER, str(root), str(db), str(iteration)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
        child.stdout.close()
        rows, pngs = check_consistent(root, db)
        assert rows <= pngs  # a file may lack its row (killed between the two), never the reverse
    assert rows >= iterations  # it really was saving when it was killed
    assert time.perf_counter() - started < 60
    # Temp files a kill left mid-write never carry a final name, and are swept once stale.
    leftovers = list(root.rglob(".*.part"))
    removed = OutputStore(root).remove_stale_parts(max_age=0)
    assert sorted(removed) == sorted(leftovers)
    assert not list(root.rglob("*.part"))


def test_recorded_files_are_the_pictures_sources_and_kept_control_pictures_entries_point_at(store, tmp_path):
    control = str(tmp_path / "sources" / f"{'ab' * 8}-control.png")  # a name Studio gives the copies it keeps
    own = str(tmp_path / "guide.png")  # a person's own file a guide names: recorded too, never Studio's to keep
    store.add(entry(image_path=str(tmp_path / "a.png"), source_image_path=str(tmp_path / "src.png"),
                    params={"controls": [{"model": "canny", "image": control}, {"model": "depth", "image": own}]}))
    asked = [str(tmp_path / name) for name in ("a.png", "src.png", "b.png")] + [control, own]
    assert store.recorded_files(asked) == {str(tmp_path / "a.png"), str(tmp_path / "src.png"), control}
    assert store.recorded_files([]) == set()
