"""Benchmark: the history store with 100,000 entries — full-text search, gallery open, filters.

Targets (issue 4): a full-text search under 50 ms; the gallery opens in under 300 ms (the store's
part: all ids newest first, plus the first page of entries).
Run: python tests/benchmarks/history_search.py [ENTRIES] [DB_PATH]
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from studio.services.history_query import HistoryQuery
from studio.services.history_store import HistoryEntry, HistoryStore

SUBJECTS = ("a lighthouse", "a red fox", "an old castle", "a cyberpunk city", "a portrait of a woman",
            "a cat sleeping", "a mountain lake", "a spaceship", "a dragon", "a bowl of fruit", "a samurai",
            "a forest path", "a steam locomotive", "an astronaut", "a medieval market", "a koi pond",
            "a robot", "a waterfall", "a desert caravan", "a snowy village", "an owl", "a sailing ship")
STYLES = ("oil painting", "watercolor", "digital art", "photograph", "concept art", "pencil sketch",
          "studio ghibli style", "unreal engine", "octane render", "matte painting", "anime", "ukiyo-e",
          "art nouveau", "pixel art", "low poly", "impressionist", "baroque", "film still")
DETAILS = ("at night", "at sunset", "in the rain", "in fog", "golden hour", "volumetric lighting",
           "highly detailed", "8k", "masterpiece", "best quality", "sharp focus", "bokeh", "dramatic lighting",
           "soft light", "wide angle", "close-up", "trending on artstation", "intricate", "cinematic",
           "by greg rutkowski", "by alphonse mucha", "neon lights", "moody", "pastel colors", "winter",
           "autumn leaves", "under the sea", "on mars", "ü umlaut", "狐 kitsune")
NEGATIVES = ("blurry, lowres", "bad anatomy, extra fingers", "watermark, text", "jpeg artifacts, ugly",
             "deformed, disfigured", "", "worst quality, low quality", "cropped, out of frame")
MODELS = ("sd-v1-5", "dreamshaper-8", "realisticVision-v6", "sdxl-base-1.0", "juggernautXL-v9", "anything-v5",
          "deliberate-v3")
SAMPLERS = ("Euler a", "DPM++ 2M Karras", "Euler", "DDIM", "UniPC")
QUERIES = ("castle", "red fox", "lighthouse at night", "watercolor drag", "blurry", "mucha", "kitsune",
           "cyberpunk city neon", "sam", "ukiyo")
YEAR = 365 * 24 * 3600


def realistic_entries(count: int, seed: int = 0, now: float | None = None) -> Iterator[HistoryEntry]:
    """count entries over the last year, oldest first, in batches of 1-4 that share a prompt."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    created = now - YEAR
    step = 0.95 * YEAR / max(1, count)  # the random steps add up to about 0.95 of a year: all in the past
    made = 0
    while made < count:
        prompt = ", ".join([rng.choice(SUBJECTS), rng.choice(STYLES),
                            *rng.sample(DETAILS, rng.randint(2, 7))])
        negative, model, sampler = rng.choice(NEGATIVES), rng.choice(MODELS), rng.choice(SAMPLERS)
        base_seed = rng.randrange(2**32)
        for index in range(min(rng.choice((1, 1, 2, 4)), count - made)):
            created = min(created + rng.uniform(0.2, 1.8) * step, now)  # never in the future
            outcome = "ok" if rng.random() > 0.02 else rng.choice(("failed", "cancelled"))
            yield HistoryEntry(
                prompt=prompt, negative_prompt=negative, model_name=model,
                model_hash=f"{zlib.crc32(model.encode()):010x}",
                model_path=f"/models/{model}", seed=(base_seed + index) % 2**32, steps=rng.choice((20, 25, 30)),
                cfg_scale=rng.choice((5.0, 6.5, 7.0)), sampler=sampler, width=512, height=rng.choice((512, 768)),
                generator="diffusers", generator_version="0.1.0", params={"batch_index": index, "mode": "txt2img"},
                outcome=outcome, message="" if outcome == "ok" else "The job was stopped.",
                elapsed=rng.uniform(0.3, 3.0),
                image_path=None if outcome != "ok" else f"/outputs/{made:07d}.png",
                created=created, starred=rng.random() < 0.03)
            made += 1


def build(path: Path, count: int) -> tuple[HistoryStore, float]:
    started = time.perf_counter()
    store = HistoryStore(path)
    store.add_many(realistic_entries(count))
    seconds = time.perf_counter() - started
    store.close()  # measured as Studio finds it at its next start (the big write checkpointed)
    return HistoryStore(path), seconds


def timed(fn: Callable[[], object], repeat: int = 7) -> tuple[float, float, object]:
    """Median and max milliseconds over repeat runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), result


def measure(store: HistoryStore, path: Path) -> dict[str, float]:
    """The figures, in milliseconds (each a median over runs unless named _max)."""
    figures: dict[str, float] = {}
    search_medians, search_maxes = [], []
    for text in QUERIES:
        median, worst, _ = timed(lambda t=text: store.search_ids(HistoryQuery(text=t)))
        search_medians.append(median)
        search_maxes.append(worst)
    figures["search_all_ids_median"] = statistics.median(search_medians)
    figures["search_all_ids_max"] = max(search_maxes)
    page_medians = [timed(lambda t=text: store.search(HistoryQuery(text=t), limit=200))[0] for text in QUERIES]
    figures["search_first_200_entries_median"] = statistics.median(page_medians)
    figures["search_first_200_entries_max"] = max(page_medians)
    # As you type: every prefix of a query, each a fresh search.
    typing = [timed(lambda t="lighthouse at night"[:n]: store.search_ids(HistoryQuery(text=t)), repeat=3)[0]
              for n in range(1, len("lighthouse at night") + 1)]
    figures["search_as_you_type_max"] = max(typing)
    # The same where some entry's time is out of id order (an import of older pictures): searches then sort by time.
    conn = store._conn()
    conn.execute("UPDATE meta SET value = 0 WHERE key = 'created_follows_id'")
    typing = [timed(lambda t="lighthouse at night"[:n]: store.search_ids(HistoryQuery(text=t)), repeat=3)[0]
              for n in range(1, len("lighthouse at night") + 1)]
    figures["search_as_you_type_max_times_out_of_order"] = max(typing)
    figures["search_all_ids_median_times_out_of_order"] = statistics.median(
        timed(lambda t=text: store.search_ids(HistoryQuery(text=t)))[0] for text in QUERIES)
    conn.execute("UPDATE meta SET value = 1 WHERE key = 'created_follows_id'")

    def gallery_open() -> object:
        fresh = HistoryStore(path)  # a new connection, as when the panel first opens
        ids = fresh.search_ids()
        page = fresh.entries(ids[:200])
        fresh.close()
        return ids, page

    figures["gallery_open_including_connect_and_check"], figures["gallery_open_max"], _ = timed(gallery_open, 5)
    figures["open_store_quick_check_and_migrate_check"] = timed(lambda: HistoryStore(path).close(), 5)[0]
    figures["all_ids_newest_first"] = timed(lambda: store.search_ids())[0]
    ids = store.search_ids()
    figures["first_page_200_entries"] = timed(lambda: store.entries(ids[:200]))[0]
    middle = len(ids) // 2
    figures["page_deep_in_gallery"] = timed(lambda: store.entries(ids[middle:middle + 200]))[0]
    figures["filter_model_and_starred_ids"] = timed(
        lambda: store.search_ids(HistoryQuery(model="dreamshaper-8", starred_only=True)))[0]
    figures["filter_model_text_date"] = timed(lambda: store.search_ids(
        HistoryQuery(text="castle", model="sd-v1-5", since=time.time() - YEAR / 4)))[0]
    figures["count_all"] = timed(lambda: store.count())[0]
    figures["count_text"] = timed(lambda: store.count(HistoryQuery(text="castle")))[0]
    figures["models"] = timed(lambda: store.models())[0]
    figures["recent_prompts_1000"] = timed(lambda: store.recent_prompts(1000))[0]
    one = replace(next(realistic_entries(1, seed=99)), created=0.0)  # recorded now, as Studio records
    figures["add_one"] = timed(lambda: store.add(one), repeat=5)[0]
    figures["star_one"] = timed(lambda: store.set_starred(ids[10], True), repeat=5)[0]
    figures["delete_newest"] = timed(lambda: store.delete(store.search_ids(limit=1)[0]), repeat=5)[0]
    return figures


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tmp) / "history.db"
        store, seconds = build(path, count)
        size_mb = path.stat().st_size / 1e6
        print(f"Built {count:,} entries in {seconds:.2f} s ({size_mb:.1f} MB)")
        for name, ms in measure(store, path).items():
            print(f"  {name:45s} {ms:8.2f} ms")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
