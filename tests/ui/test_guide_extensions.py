"""Control guides extended with the canvas (outpainting) follow its undo and redo: an undo pressed while a guide is
being extended, a guide that cannot be extended (said, the others still extended), the person's weight and steps
kept, a preprocessor chosen after the undo used by the redo, and records forgotten with their canvases."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.control import CANNY, DEPTH, INVERT, NONE, preprocess
from studio.core.model_library import LibraryItem
from studio.core.models import ModelEntry
from studio.ui import control_box as control_box_module
from studio.ui.prompt_panel import PromptPanel

WAIT_MS = 20_000
SD15 = LibraryItem("dreamshaper_8", Path("/m/checkpoints/dreamshaper_8.safetensors"), "checkpoint", "sd1", "SD 1.x",
                   1, "models folder")
NET = LibraryItem("control_v11p_sd15_canny", Path("/m/controlnet/control_v11p_sd15_canny.safetensors"),
                  "controlnet", "sd1", "ControlNet", 1, "models folder")
RIGHT = (0, 0, 64, 0)


@pytest.fixture
def panel(qtbot, qt_loop, tmp_path):  # noqa: ANN001
    panel = PromptPanel()
    qtbot.addWidget(panel)
    models = tmp_path / "models"
    models.mkdir()
    panel.set_models([ModelEntry(SD15.name, SD15.path, SD15.label)], str(SD15.path), str(models))
    panel.control_box.set_library([SD15, NET], models)
    panel.canvas = [Image.new("RGB", (64, 64))]  # what the canvas shows, as the window's "Canvas picture" reads it
    panel.image_sources = lambda: [("Canvas picture", lambda: panel.canvas[0])]
    panel.show()
    return panel


def _row(qtbot, panel, tmp_path, preprocessor=CANNY, name="photo.png"):  # noqa: ANN001, ANN202
    photo = tmp_path / name
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photo)
    row = panel.control_box.add()
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData(preprocessor))
    row.picture.use_file(photo)
    qtbot.waitUntil(lambda: row.picture.state == "ready" and panel.control_box.depth.known, timeout=WAIT_MS)
    return row


def _extend(qtbot, panel, before, after) -> list[str]:  # noqa: ANN001
    panel.canvas[0] = after
    task = asyncio.ensure_future(panel.control_box.follow_extend(before, after, RIGHT))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    return task.result()


def _show(panel, picture) -> None:  # noqa: ANN001
    """An undo or a redo: the canvas shows ``picture`` and the window tells the guides."""
    panel.canvas[0] = picture
    panel.control_box.follow_canvas(picture)


def test_an_undo_pressed_while_a_guide_is_extended_keeps_it_and_a_redo_takes_the_extension(  # noqa: ANN001
        qtbot, panel, tmp_path, monkeypatch):
    row = _row(qtbot, panel, tmp_path)
    original = row.picture.image
    before, after = panel.canvas[0], Image.new("RGB", (128, 64))
    go, real = threading.Event(), control_box_module.extend_guide
    monkeypatch.setattr(control_box_module, "extend_guide", lambda *args: go.wait(10) and real(*args))
    panel.canvas[0] = after
    task = asyncio.ensure_future(panel.control_box.follow_extend(before, after, RIGHT))
    qtbot.wait(100)
    _show(panel, before)  # Ctrl+Z while the guide's (depth) map is being made
    go.set()
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert row.picture.image is original and row.preprocessor() == CANNY
    _show(panel, after)
    assert row.picture.image.size == (128, 64) and row.preprocessor() == NONE


def test_a_guide_that_cannot_be_extended_is_said_and_the_others_are_extended(qtbot, panel, tmp_path):  # noqa: ANN001
    depth = _row(qtbot, panel, tmp_path, DEPTH, "a.png")  # no depth model in the models folder
    canny = _row(qtbot, panel, tmp_path, CANNY, "b.png")
    depth_picture = depth.picture.image
    problems = _extend(qtbot, panel, panel.canvas[0], Image.new("RGB", (128, 64)))
    assert len(problems) == 1 and problems[0].startswith("Control guide 1 could not be extended with the canvas: ")
    assert "Depth" in problems[0] and problems[0].endswith(".")
    assert depth.picture.image is depth_picture and canny.picture.image.size == (128, 64)


def test_undo_and_redo_swap_the_picture_and_keep_the_weight_and_steps_the_person_set(qtbot, panel, tmp_path):  # noqa: ANN001
    row = _row(qtbot, panel, tmp_path)
    original = row.picture.image
    before, after = panel.canvas[0], Image.new("RGB", (128, 64))
    _extend(qtbot, panel, before, after)
    row.weight_spin.setValue(0.4)
    row.start_spin.setValue(0.2)
    _show(panel, before)
    assert row.picture.image is original and row.preprocessor() == CANNY
    assert (row.weight_spin.value(), row.start_spin.value()) == (0.4, 0.2)
    row.weight_spin.setValue(0.7)
    _show(panel, after)
    assert row.picture.image.size == (128, 64) and row.weight_spin.value() == 0.7


def test_a_preprocessor_chosen_after_the_undo_makes_the_redo_extend_the_guide_again(qtbot, panel, tmp_path):  # noqa: ANN001
    row = _row(qtbot, panel, tmp_path)
    original = row.picture.image
    before, after = panel.canvas[0], Image.new("RGB", (128, 64))
    _extend(qtbot, panel, before, after)
    _show(panel, before)
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData(INVERT))
    _show(panel, after)
    qtbot.waitUntil(lambda: row.picture.image.size == (128, 64), timeout=WAIT_MS)
    seen = np.asarray(row.picture.image)
    assert np.array_equal(seen[:, :64], np.asarray(preprocess(original, INVERT))) and seen[:, 64:].max() == 0
    _show(panel, before)
    assert row.picture.image is original and row.preprocessor() == INVERT


def test_records_are_forgotten_once_the_history_lets_their_canvas_pictures_go(qtbot, panel, tmp_path):  # noqa: ANN001
    row = _row(qtbot, panel, tmp_path, NONE)
    extensions = panel.control_box.extensions
    before, after = panel.canvas[0], Image.new("RGB", (128, 64))
    _extend(qtbot, panel, before, after)
    assert list(extensions._kept) == [row]
    panel.canvas[0] = None
    del before, after
    gc.collect()
    panel.control_box.follow_canvas(Image.new("RGB", (8, 8)))
    assert extensions._kept == {}
