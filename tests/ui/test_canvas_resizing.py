"""Extending and scaling the canvas: frame drags, the pixel limit, failures told, one change after another."""

from __future__ import annotations

import numpy as np
import pytest
from canvas_testing import SIZE, drag, open_test_picture
from PySide6.QtCore import QRectF

from studio.core.mask import fill_rect


@pytest.fixture
def picture(window):  # noqa: ANN001, ANN201
    return open_test_picture(window)


def test_dragging_a_frame_past_the_edges_extends_the_canvas(qtbot, window, picture, monkeypatch):  # noqa: ANN001
    from studio.ui.canvas_tools import FRAME

    generated: list[bool] = []
    monkeypatch.setattr(window, "generate", lambda: generated.append(True))
    canvas = window.canvas
    canvas.set_zoom(0.5)
    canvas.centerOn(SIZE / 2, SIZE / 2)
    canvas.set_tool(FRAME)
    drag(qtbot, canvas, [(-50, 10), (SIZE + 20, SIZE - 10)])
    qtbot.waitUntil(lambda: window.document.size == (SIZE + 56 + 24, SIZE), timeout=5000)  # multiples of 8
    mask = window.document.mask
    assert mask[:, :56].min() == 255 and mask[:, -24:].min() == 255
    assert mask[SIZE // 2, 56 + SIZE // 2] == 0  # the middle of the old picture is kept
    assert generated == [True]  # and the new area is filled by inpainting at once
    window.actions_.undo.trigger()
    assert window.document.size == (SIZE, SIZE)


def test_a_frame_dragged_far_at_low_zoom_asks_for_no_more_than_extend_canvas_allows(qtbot, window):  # noqa: ANN001
    """A long drag at 2% zoom asked for a 200,000² canvas: a MemoryError in a task, and nothing said."""
    from types import SimpleNamespace

    from studio.core.images import MAX_PIXELS
    from studio.core.inpaint import MAX_EXTEND
    from studio.ui.canvas_tools import FrameTool

    def amounts(size: tuple[int, int], rect: QRectF) -> tuple[int, int, int, int]:
        return FrameTool(SimpleNamespace(document=SimpleNamespace(size=size))).extension(rect)

    assert amounts((512, 512), QRectF(-100_000, 100, 200_000, 200_000)) == (MAX_EXTEND, 0, MAX_EXTEND, MAX_EXTEND)
    assert amounts((512, 512), QRectF(-50, 10, 600, 100)) == (56, 0, 40, 0)  # as before within the limits
    left, top, right, bottom = amounts((15000, 15000), QRectF(-3000, -3000, 21000, 21000))
    assert max(left, top, right, bottom) <= MAX_EXTEND and (15000 + left + right) * (15000 + top + bottom) <= MAX_PIXELS
    assert min(left, top, right, bottom) > 0 and all(a % 8 == 0 for a in (left, top, right, bottom))


def test_a_size_change_that_fails_in_its_worker_is_told_and_changes_nothing(qtbot, window, picture, monkeypatch):  # noqa: ANN001
    from studio.ui import canvas_resizing

    def out_of_memory(*args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(canvas_resizing, "extend_canvas", out_of_memory)
    task = window.actions_.extend_canvas(0, 0, 64, 0, fill=False)
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.exception() is None
    assert window.status.message_label.text() == ("The picture could not be extended (there was not enough memory); "
                                                  "it is unchanged.")
    assert window.document.size == (SIZE, SIZE) and window.document.history_labels() == ["Open test picture"]


def test_a_canvas_past_the_pixel_limit_is_never_made(qtbot, window, picture, monkeypatch):  # noqa: ANN001
    """Extend, the frame tool, scale and paste made canvases Studio then refused to open again or recover."""
    from PySide6.QtGui import QImage

    from studio.core import images

    monkeypatch.setattr(images, "MAX_PIXELS", SIZE * (SIZE + 8))
    for make in (lambda: window.actions_.extend_canvas(0, 0, 16, 0, fill=False),
                 lambda: window.actions_.scale_image(SIZE + 16, SIZE),
                 lambda: window.actions_.run(window.actions_._take_pasted(
                     QImage(SIZE, SIZE + 16, QImage.Format.Format_RGB32), "Paste"))):
        window.status.set_message("")
        task = make()
        qtbot.waitUntil(task.done, timeout=5000)
        assert task.exception() is None
        assert "would be too large for Studio to open again" in window.status.message_label.text()
        assert window.document.size == (SIZE, SIZE) and window.document.history_labels() == ["Open test picture"]
    task = window.actions_.extend_canvas(0, 0, 8, 0, fill=False)  # up to the limit is fine
    qtbot.waitUntil(task.done, timeout=5000)
    assert window.document.size == (SIZE + 8, SIZE)


def test_a_second_size_change_waits_for_the_first_and_works_on_its_result(qtbot, window, picture):  # noqa: ANN001
    """Two frames dragged in quick succession: the second extends what the first made, neither is dropped."""
    doc = window.document
    window.actions_.extend_canvas(0, 0, 64, 0, fill=False)
    window.actions_.extend_canvas(0, 0, 0, 32, fill=False)
    window.actions_.scale_image(SIZE, SIZE)  # asked while the picture is still SIZE x SIZE: a no-op then
    qtbot.waitUntil(lambda: doc.size == (SIZE + 64, SIZE + 32), timeout=5000)
    qtbot.wait(50)
    assert doc.history_labels()[-2:] == [f"Extend canvas to {SIZE + 64}×{SIZE}",
                                         f"Extend canvas to {SIZE + 64}×{SIZE + 32}"]
    np.testing.assert_array_equal(np.asarray(doc.image)[:SIZE, :SIZE], np.asarray(picture))
    assert "so it was not" not in window.status.message_label.text()


@pytest.mark.parametrize(("work", "change", "done"), [
    ("scaled", lambda actions: actions.scale_image(SIZE * 2, SIZE), f"Scaled to {SIZE * 2}×{SIZE}."),
    ("extend_canvas", lambda actions: actions.extend_canvas(0, 0, SIZE, 0, fill=False), None)])
def test_canvas_size_changes_run_off_the_window_thread_and_never_overwrite_later_work(
        qtbot, window, picture, monkeypatch, work, change, done):  # noqa: ANN001
    """Scale and extend work in a worker thread (at 4096x4096 they held the window 0.4-1.4 s); if the person
    changes the picture or mask meanwhile, that work is kept and the size change is dropped with a sentence."""
    import threading

    from studio.ui import canvas_resizing

    doc = window.document
    threads: list[str] = []
    release = threading.Event()
    real_work = getattr(canvas_resizing, work)

    def held_work(*args):  # noqa: ANN002, ANN202
        threads.append(threading.current_thread().name)
        release.wait(10)
        return real_work(*args)

    monkeypatch.setattr(canvas_resizing, work, held_work)
    change(window.actions_)
    qtbot.waitUntil(lambda: bool(threads), timeout=5000)
    doc.edit_mask("Fill rectangle", lambda mask: fill_rect(mask, (0, 0, SIZE, SIZE)))  # the person goes on
    filled = doc.mask.copy()
    release.set()
    qtbot.waitUntil(lambda: "so it was not" in window.status.message_label.text(), timeout=5000)
    assert doc.size == (SIZE, SIZE) and np.array_equal(doc.mask, filled)
    assert threading.main_thread().name not in threads

    change(window.actions_)
    qtbot.waitUntil(lambda: doc.size == (SIZE * 2, SIZE), timeout=5000)
    if done:
        assert window.status.message_label.text() == done
    assert doc.mask.shape == (SIZE, SIZE * 2) and doc.mask.min() == 255  # the filled mask, kept
    shown = window.canvas._image_item.pixmap()
    assert (shown.width(), shown.height()) == (SIZE * 2, SIZE)
    window.actions_.undo.trigger()
    assert doc.size == (SIZE, SIZE)


@pytest.mark.parametrize("own_mask", [False, True])
def test_the_border_mask_goes_when_the_extend_fill_lands_and_undo_brings_it_back(
        qtbot, window, picture, monkeypatch, own_mask):  # noqa: ANN001
    """Extend Canvas with the fill masks the new border; once the fill lands that mask goes (else the next inpaint
    of a few strokes redraws the border again), leaving the person's own mask as it was."""
    from PIL import Image

    from studio.core.events import GeneratedImage, JobOutput
    from studio.core.metadata import Recipe
    from studio.ui.result_arrival import BORDER_MASK_CLEARED

    doc = window.document
    if own_mask:
        doc.edit_mask("Fill rectangle", lambda mask: fill_rect(mask, (100, 100, 120, 120)))
    own = doc.mask.copy()
    sent = []
    monkeypatch.setattr(window.submission, "submit", sent.append)
    task = window.actions_.extend_canvas(0, 0, 64, 0, fill=True)
    qtbot.waitUntil(lambda: task.done() and len(sent) == 1, timeout=10_000)
    extended = doc.mask.copy()
    assert extended[:, SIZE:].min() == 255
    request = sent[0]
    window.jobs.requests[7] = request
    result = Image.new("RGB", doc.size, (0, 200, 0))
    recipe = Recipe("a lake", "", 4, "Euler", 7, 1, *doc.size, "tiny-sd", strength=0.75, mask_blur=8)
    window.handle_event(JobOutput(7, GeneratedImage(result, recipe), 0))
    assert np.asarray(doc.image)[0, -1].tolist() == [0, 200, 0]  # the fill is in
    assert doc.history_labels()[-1] == BORDER_MASK_CLEARED
    assert doc.history_descriptions()[-2] == "Filled the extended border 'a lake' (seed 1)"  # not "Inpainted"
    expected = np.zeros_like(extended)
    expected[:, :SIZE] = own
    np.testing.assert_array_equal(doc.mask, expected)  # the person's mask only
    assert doc.has_mask == own_mask
    window.actions_.undo.trigger()  # the border mask comes back; the fill stays
    np.testing.assert_array_equal(doc.mask, extended)
    assert np.asarray(doc.image)[0, -1].tolist() == [0, 200, 0]


def test_scale_image_keeps_how_much_of_the_picture_the_mask_covers(qtbot, window, picture):  # noqa: ANN001
    """A soft-edged mask grew ~3 % with each Scale Image (bilinear, then anything above 0 counts as masked)."""
    from studio.core.mask import feather

    doc = window.document
    ys, xs = np.mgrid[:SIZE, :SIZE]
    stroke = np.where((ys - 128) ** 2 + (xs - 100) ** 2 <= 30 ** 2, 255, 0).astype(np.uint8)
    stroke[40:52, 150:230] = 255
    doc.set_mask("Paint mask", feather(stroke, 1))  # soft-edged, as an anti-aliased brush paints
    before = int((doc.mask > 0).sum())
    task = window.actions_.scale_image(177, 313)
    qtbot.waitUntil(task.done, timeout=10_000)
    assert doc.size == (177, 313)
    ratio = (doc.mask > 0).sum() / (before * 177 * 313 / SIZE ** 2)
    assert abs(ratio - 1) < 0.01
