"""OutputStore: one PNG per image, numbered, recipe embedded, never half-written."""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import StudioError
from studio.core.images import read_recipe
from studio.core.metadata import Recipe
from studio.services.outputs import OutputStore


def recipe(seed: int) -> Recipe:
    return Recipe("a lighthouse, at night: \"storm\"", "fog", 20, "DPM++ 2M Karras", 6.5, seed, 64, 48, "tiny-sd",
                  "0123456789")


def test_saves_numbered_pngs_in_a_dated_folder_with_the_recipe(tmp_path):
    store = OutputStore(tmp_path / "outputs")
    image = Image.new("RGB", (64, 48), (10, 200, 30))
    first = store.save(image, recipe(7))
    second = store.save(image, recipe(8))
    assert first.parent == tmp_path / "outputs" / datetime.now().strftime("%Y-%m-%d")
    assert (first.name, second.name) == ("00001-7.png", "00002-8.png")
    assert read_recipe(first) == recipe(7)
    assert read_recipe(second) == recipe(8)
    with Image.open(first) as saved:
        assert np.array_equal(np.asarray(saved), np.asarray(image))
    assert not [p for p in first.parent.iterdir() if p.suffix == ".part"]


def test_numbers_keep_counting_across_runs(tmp_path):
    root = tmp_path / "outputs"
    OutputStore(root).save(Image.new("RGB", (8, 8)), recipe(1))
    folder = next(root.iterdir())
    (folder / "00041-5.png").write_bytes(b"")  # a file from an earlier session
    (folder / "notes.txt").write_text("not an output")
    assert OutputStore(root).save(Image.new("RGB", (8, 8)), recipe(2)).name == "00042-2.png"


def test_parallel_saves_get_distinct_numbers(tmp_path):
    store = OutputStore(tmp_path / "outputs")
    paths = []
    lock = threading.Lock()

    def save(seed: int) -> None:
        path = store.save(Image.new("RGB", (8, 8)), recipe(seed))
        with lock:
            paths.append(path)

    threads = [threading.Thread(target=save, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    numbers = sorted(int(re.match(r"(\d{5})-", p.name).group(1)) for p in paths)
    assert numbers == list(range(1, 9))


def test_an_unwritable_output_folder_is_one_sentence(tmp_path):
    blocker = tmp_path / "outputs"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(StudioError, match="The image could not be saved in"):
        OutputStore(blocker).save(Image.new("RGB", (8, 8)), recipe(1))


def test_stale_temp_files_from_a_crash_are_removed_on_the_first_save(tmp_path):
    root = tmp_path / "outputs"
    old_day, sources = root / "2020-01-01", root / "2020-01-01" / "sources"
    sources.mkdir(parents=True)
    stale = [old_day / ".00003-9.png.k2j3h4.part", sources / ".120000-ab-image.png.x1.part"]
    fresh = old_day / ".00004-9.png.zz.part"  # maybe another Studio process saving right now: kept
    keep = [old_day / "00002-8.png", old_day / ".hidden-note"]
    for path in [*stale, fresh, *keep]:
        path.write_bytes(b"\x89PNG half")
    long_ago = time.time() - 3600
    for path in stale:
        os.utime(path, (long_ago, long_ago))
    store = OutputStore(root)
    store.save(Image.new("RGB", (8, 8)), recipe(1))
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and all(p.exists() for p in keep)
    assert store.remove_stale_parts(max_age=0) == [fresh]


def test_sources_are_kept_once_as_pngs_next_to_the_outputs(tmp_path):
    store = OutputStore(tmp_path / "outputs")
    picture = Image.new("RGBA", (20, 10), (1, 2, 3, 128))
    mask = Image.new("L", (20, 10), 0)
    mask.paste(255, (0, 0, 5, 5))
    image_path, mask_path = store.save_sources(picture, mask)
    assert image_path.parent == tmp_path / "outputs" / datetime.now().strftime("%Y-%m-%d") / "sources"
    assert image_path.name.endswith("-image.png") and mask_path.name == image_path.name.replace("-image", "-mask")
    with Image.open(image_path) as saved:
        assert saved.mode == "RGBA" and np.array_equal(np.asarray(saved), np.asarray(picture))
    with Image.open(mask_path) as saved:
        assert saved.mode == "L" and np.array_equal(np.asarray(saved), np.asarray(mask))
    only_image, no_mask = store.save_sources(picture)
    assert no_mask is None and only_image != image_path
    # Sources never disturb the output numbering.
    assert store.save(Image.new("RGB", (8, 8)), recipe(3)).name == "00001-3.png"


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_number_another_studio_took_meanwhile_is_never_written_over(tmp_path, monkeypatch, hard_links):
    from studio.services import outputs

    store = OutputStore(tmp_path / "outputs")
    theirs = store.save(Image.new("RGB", (8, 8), (255, 0, 0)), recipe(5))  # 00001-5.png, the other process's
    numbers = iter([1])  # this process listed the folder before the other one wrote
    real_next = outputs._next_number
    monkeypatch.setattr(outputs, "_next_number", lambda folder: next(numbers, None) or real_next(folder))
    if not hard_links:
        def no_links(*args: object) -> None:
            raise PermissionError(1, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_links)
    ours = store.save(Image.new("RGB", (8, 8), (0, 0, 255)), recipe(5))
    assert (theirs.name, ours.name) == ("00001-5.png", "00002-5.png")
    with Image.open(theirs) as saved:
        assert saved.getpixel((0, 0)) == (255, 0, 0)
    assert not [p for p in ours.parent.iterdir() if p.name.endswith(".part")]


def test_a_relative_or_tilde_root_saves_under_an_absolute_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    saved = OutputStore(Path("~/Pictures")).save(Image.new("RGB", (8, 8)), recipe(1))
    assert saved.is_absolute() and saved.is_relative_to(tmp_path / "home" / "Pictures")
