"""Whole-mask changes (fills, invert, clear, grow, mask files): off the window thread, queued, undone exactly."""

from __future__ import annotations

import numpy as np
import pytest
from canvas_testing import SIZE, drag, open_test_picture
from PIL import Image

from studio.core.mask import fill_rect
from studio.ui.canvas_tools import LASSO, RECT


@pytest.fixture
def picture(window):  # noqa: ANN001, ANN201
    return open_test_picture(window)


def test_a_big_rectangle_or_lasso_fill_is_made_off_the_window_thread_and_undoes_without_tinting(
        qtbot, window, picture, monkeypatch):  # noqa: ANN001
    """At 4096x4096 a big lasso held the window 90-300 ms on release, and its undo and redo as long again: a fill
    over much of a big mask is made with its tinted layer in a worker thread, as invert is; a small one at once."""
    import threading

    from studio.core import mask as mask_module
    from studio.ui import canvas as canvas_module
    from studio.ui import canvas_tools, mask_overlay

    monkeypatch.setattr(canvas_module, "BIG_FILL", 64 * 64, raising=False)  # this picture's "big"
    here: list[str] = []
    window_thread = threading.current_thread()

    def watched(module, name):  # noqa: ANN001, ANN202
        real = getattr(module, name)

        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if threading.current_thread() is window_thread:
                here.append(name)
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, call)

    watched(mask_overlay, "_tint")
    watched(canvas_tools, "fill_rect")
    watched(canvas_tools, "fill_polygon")
    doc, canvas = window.document, window.canvas
    canvas.set_tool(RECT)
    drag(qtbot, canvas, [(10, 10), (200, 220)])
    canvas.set_tool(LASSO)
    drag(qtbot, canvas, [(100, 5), (250, 100), (150, 250), (5, 150)])
    assert here == [] and doc.history_labels() == ["Open test picture"]  # under way, not on this thread
    qtbot.waitUntil(lambda: not window.actions_._tasks, timeout=5000)
    assert doc.history_labels()[1:] == ["Fill rectangle", "Fill lasso"]
    expected = np.zeros((SIZE, SIZE), np.uint8)
    fill_rect(expected, (10, 10, 200, 220))
    mask_module.fill_polygon(expected, [(100, 5), (250, 100), (150, 250), (5, 150)])
    assert (doc.mask != expected).mean() < 0.01  # the same shapes, but for the edges' rounding on screen
    assert doc.mask[11:219, 11:199].min() == 255 and doc.mask[240:, 240:].max() == 0
    for step in (window.actions_.document_undo, window.actions_.document_redo, window.actions_.document_undo):
        step()
    assert here == []  # nothing filled or tinted on the window's thread
    overlay = canvas.overlay
    x0, y0, x1, y1 = overlay._layer_box
    np.testing.assert_array_equal(overlay._pixels, overlay.tints[doc.mask[y0:y1, x0:x1]])
    canvas.set_tool(RECT)
    drag(qtbot, canvas, [(10, 10), (40, 40)])  # a small fill: at once
    assert doc.history_labels()[-1] == "Fill rectangle" and "fill_rect" in here


def test_whole_mask_edits_are_made_off_the_window_thread_queue_up_and_undo_without_tinting(
        qtbot, window, picture, monkeypatch):  # noqa: ANN001
    """Invert, grow and clear work out the new mask, where it changed and its tinted layer in a worker thread (at
    4096x4096 inverting held the window 74-86 ms); a second one waits for the first and works on its result; an
    edit made meanwhile is kept and the change is made again from it; undo and redo swap kept layers."""
    import threading

    from studio.core import comparison
    from studio.ui import mask_edits, mask_overlay

    doc, actions = window.document, window.actions_
    here: list[str] = []
    window_thread = threading.current_thread()

    def watched(module, name):  # noqa: ANN001, ANN202
        real = getattr(module, name)

        def call(*args):  # noqa: ANN002, ANN202
            if threading.current_thread() is window_thread:
                here.append(name)
            return real(*args)
        monkeypatch.setattr(module, name, call)

    watched(comparison, "changed_box")
    watched(mask_overlay, "_tint")
    doc.edit_mask("Fill rectangle", lambda mask: fill_rect(mask, (20, 30, 120, 90)))
    painted = doc.mask.copy()
    here.clear()

    first, second = actions.invert(), actions.invert()  # Ctrl+I twice, quickly
    qtbot.waitUntil(lambda: first.done() and second.done(), timeout=5000)
    assert np.array_equal(doc.mask, painted) and doc.history_labels()[-2:] == ["Invert mask", "Invert mask"]
    doc.undo()
    assert np.array_equal(doc.mask, 255 - painted)
    doc.redo()
    doc.undo()
    assert here == []  # nothing compared or tinted on the window's thread

    release = threading.Event()
    real_change = mask_edits.mask_change

    def held_change(*args):  # noqa: ANN002, ANN202
        release.wait(10)
        return real_change(*args)

    monkeypatch.setattr(mask_edits, "mask_change", held_change)
    task = actions.grow(4)
    doc.edit_mask("Fill rectangle", lambda mask: fill_rect(mask, (200, 200, 210, 210)))  # the person goes on
    release.set()
    qtbot.waitUntil(task.done, timeout=5000)
    assert doc.history_labels()[-2:] == ["Fill rectangle", "Grow mask 4 px"]
    assert doc.mask[198, 205] == 255 and doc.mask[205, 205] == 255  # grown from the person's mask, theirs kept

    task = actions.clear()
    qtbot.waitUntil(task.done, timeout=5000)
    assert not doc.has_mask and window.canvas.overlay._image.isNull()


def test_mask_files_round_trip(qtbot, window, picture, tmp_path):  # noqa: ANN001
    window.document.edit_mask("box", lambda m: (m.__setitem__((slice(100, 150), slice(100, 150)), 255),
                                                (100, 100, 150, 150))[1])
    path = tmp_path / "mask.png"
    task = window.actions_.run(window.actions_.saving.save_mask_to(path))
    qtbot.waitUntil(task.done, timeout=5000)
    saved = np.asarray(Image.open(path))
    np.testing.assert_array_equal(saved, window.document.mask)
    task = window.actions_.clear()
    qtbot.waitUntil(task.done, timeout=5000)
    assert not window.document.has_mask
    task = window.actions_.run(window.actions_.open_mask_path(path))
    qtbot.waitUntil(task.done, timeout=5000)
    np.testing.assert_array_equal(window.document.mask, saved)


def test_a_32_bit_greyscale_tiff_opens_as_the_mask_it_shows(qtbot, window, picture, tmp_path):  # noqa: ANN001
    """Open Mask read a 32-bit ("I") TIFF through the picture path, which made it black: an empty mask."""
    wide = np.zeros((SIZE, SIZE), np.int32)
    wide[:, SIZE // 2:] = 65535
    wide[:, SIZE // 4:SIZE // 2] = 32896  # mid-grey: 128 of 255
    Image.fromarray(wide, "I").save(tmp_path / "mask.tif")
    task = window.actions_.run(window.actions_.open_mask_path(tmp_path / "mask.tif"))
    qtbot.waitUntil(task.done, timeout=5000)
    expected = np.zeros((SIZE, SIZE), np.uint8)
    expected[:, SIZE // 4:SIZE // 2], expected[:, SIZE // 2:] = 128, 255
    np.testing.assert_array_equal(window.document.mask, expected)
