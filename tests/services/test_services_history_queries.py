"""history_queries: reading the history back: full-text search, filters, the models and prompts used, and the
files entries point at."""

from __future__ import annotations

import random

import pytest
from history_testing import DAY, T0, ids_for
from history_testing import detailed_entry as entry

from studio.services.history_errors import HistoryError
from studio.services.history_query import HistoryQuery, fts_query
from studio.services.history_store import HistoryStore


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "data" / "history.db")
    yield s
    s.close()


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


def test_the_model_filter_finds_every_spelling_stored_and_one_written_since(store):
    a = store.add(entry(model_name="DreamShaper", created=T0))
    b = store.add(entry(model_name="dreamshaper", created=T0 + 1))
    strasse = store.add(entry(model_name="Straße-XL", created=T0 + 2))
    assert ids_for(store, model="DREAMSHAPER") == [b, a]
    assert ids_for(store, model="STRASSE-xl") == [strasse]  # ß folds to ss, as casefold does
    c = store.add(entry(model_name="DREAMSHAPER", created=T0 + 3))
    assert ids_for(store, model="dreamShaper") == [c, b, a]
    assert store.count(HistoryQuery(model="dreamshaper", since=T0 + 1)) == 2
    assert ids_for(store, model="nothing-like-it") == [] and store.count(HistoryQuery(model="nothing")) == 0


def test_the_model_filter_is_served_by_the_model_index(store):
    """Case is folded in Python over the few stored names, not in SQL over every row, so the filter's count and
    pages read the index entries_model (at 200,000 entries a filtered count took ~60 ms, now ~2 ms)."""
    for i, name in enumerate(["DreamShaper", "dreamshaper", "sd15"] * 3):
        store.add(entry(model_name=name, created=T0 + i, starred=i < 2))
    conn = store._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)  # each statement as run, its values written in
    try:
        assert store.count(HistoryQuery(model="DREAMSHAPER")) == 6
        assert len(ids_for(store, model="dreamshaper", since=T0 + 2)) == 4
        assert len(ids_for(store, model="dreamshaper", starred_only=True)) == 2
    finally:
        conn.set_trace_callback(None)
    filtered = [s for s in statements if s.startswith(("SELECT count(*) FROM entries", "SELECT id FROM entries"))]
    plans = [" | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {s}")) for s in filtered]
    assert len(plans) == 3
    assert "SEARCH entries USING COVERING INDEX entries_model (model_name=?)" in plans[0]
    assert "SEARCH entries USING COVERING INDEX entries_model (model_name=? AND created>?)" in plans[1]
    assert "entries_starred" in plans[2]  # starred entries are few: their own index, not all of the model's


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


def test_the_models_are_read_a_seek_per_name_not_by_reading_every_entry(store):
    """At 200,000 entries GROUP BY model_name read the whole index (~30 ms); a skip-scan seeks once or twice per
    stored name (~1 ms)."""
    for i, name in enumerate(["sd15", "", "DreamShaper", "sd15", "dreamshaper", "", "xl"] * 3):
        store.add(entry(model_name=name, created=T0 + i))
    conn = store._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        assert store.models() == ["dreamshaper", "sd15", "xl"]  # the spelling written last, as before
    finally:
        conn.set_trace_callback(None)
    [models_sql] = [s for s in statements if "model_name" in s]
    plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {models_sql}")]
    assert not [step for step in plan if step.startswith("SCAN entries")], plan
    assert any("SEARCH entries USING COVERING INDEX entries_model (model_name>?)" in step for step in plan), plan
    assert any("SEARCH entries USING COVERING INDEX entries_model (model_name=?)" in step for step in plan), plan


def test_recorded_files_are_the_pictures_sources_and_kept_control_pictures_entries_point_at(store, tmp_path):
    control = str(tmp_path / "sources" / f"{'ab' * 8}-control.png")  # a name Studio gives the copies it keeps
    own = str(tmp_path / "guide.png")  # a person's own file a guide names: recorded too, never Studio's to keep
    store.add(entry(image_path=str(tmp_path / "a.png"), source_image_path=str(tmp_path / "src.png"),
                    params={"controls": [{"model": "canny", "image": control}, {"model": "depth", "image": own}]}))
    asked = [str(tmp_path / name) for name in ("a.png", "src.png", "b.png")] + [control, own]
    assert store.recorded_files(asked) == {str(tmp_path / "a.png"), str(tmp_path / "src.png"), control}
    assert store.recorded_files([]) == set()
