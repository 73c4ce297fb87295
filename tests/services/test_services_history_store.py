"""HistoryStore: SQLite (WAL, FTS5) history — writing and reading back, star/delete, concurrency, crashes."""

from __future__ import annotations

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
from history_testing import T0, ids_for
from history_testing import detailed_entry as entry
from PIL import Image

from studio.services.history_query import HistoryQuery
from studio.services.history_store import HistoryStore
from studio.services.outputs import OutputStore


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "data" / "history.db")
    yield s
    s.close()


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
