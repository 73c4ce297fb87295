"""OutputStore: one PNG per image, numbered, recipe embedded, never half-written."""

from __future__ import annotations

import re
import threading
from datetime import datetime

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
