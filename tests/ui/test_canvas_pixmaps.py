"""Undo, redo and new pictures on a big canvas never convert a whole picture on the window's thread (at 4096x4096
that held it 150-240 ms): pictures shown before are kept converted, any other is converted in a worker thread
with a rough stand-in shown at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from studio.core.document import Document
from studio.ui import canvas as canvas_module
from studio.ui import canvas_picture, canvas_preview
from studio.ui.canvas import CanvasView
from studio.ui.canvas_pixmaps import CONVERT_AT_ONCE, KeptPixmaps
from studio.ui.qt_images import pil_to_pixmap_ready_qimage, qimage_to_pil

SIDE = 1280  # px: over CONVERT_AT_ONCE, so converting one on the window's thread is what a 4096² picture's is


def _picture(seed: int) -> Image.Image:
    small = np.random.default_rng(seed).integers(0, 256, (SIDE // 16, SIDE // 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((SIDE, SIDE), Image.Resampling.BILINEAR)


def _shown(canvas: CanvasView) -> np.ndarray:
    return np.asarray(qimage_to_pil(canvas._image_item.pixmap().toImage()).convert("RGB"))


@pytest.fixture
def canvas(qtbot, qt_loop, monkeypatch):  # noqa: ANN001, ANN201
    """A canvas on a document, recording which thread converts each picture of SIDE x SIDE (in .converted)."""
    view = CanvasView()
    qtbot.addWidget(view)
    view.set_document(Document())
    view.converted = []
    # the canvas's conversions, its picture item's and its preview's
    for module in (canvas_module, canvas_picture, canvas_preview):
        for name in ("pil_to_qpixmap", "pil_to_pixmap_ready_qimage", "pil_to_qimage"):
            real = getattr(module, name, None)
            if real is None:
                continue

            def recorded(image, *more, _real=real):  # noqa: ANN001, ANN002, ANN202
                if image.size == (SIDE, SIDE):
                    view.converted.append(threading.current_thread())
                return _real(image, *more)

            monkeypatch.setattr(module, name, recorded)
    assert SIDE * SIDE > CONVERT_AT_ONCE
    return view


def test_undo_and_redo_over_several_whole_pictures_swap_in_the_kept_pixmaps(canvas):  # noqa: ANN001
    document = canvas.document
    pictures = [_picture(seed) for seed in range(3)]
    for picture in pictures:  # as opening does: converted ahead in a worker thread
        canvas.prepare(picture, pil_to_pixmap_ready_qimage(picture))
        document.set_image(picture, "Open")
    for expected in (1, 0, 1, 2, 1, 0):
        showing = next(k for k, picture in enumerate(pictures) if picture is document.image)
        document.undo() if expected < showing else document.redo()
        assert canvas.converted == []  # neither here nor in a worker: swapped in
        np.testing.assert_array_equal(_shown(canvas), np.asarray(pictures[expected]))
    document.go_to(3)
    np.testing.assert_array_equal(_shown(canvas), np.asarray(pictures[2]))
    assert canvas.converted == []


def test_a_big_picture_not_kept_shows_a_stand_in_at_once_and_is_converted_in_a_worker(qtbot, canvas):  # noqa: ANN001
    document = canvas.document
    first, second = _picture(1), _picture(2)
    document.set_image(first, "Open")  # not converted ahead
    assert canvas.showing_stand_in() and canvas._image_item.pixmap().width() < SIDE
    qtbot.waitUntil(lambda: not canvas.showing_stand_in(), timeout=10_000)
    np.testing.assert_array_equal(_shown(canvas), np.asarray(first))
    canvas.prepare(second, pil_to_pixmap_ready_qimage(second))
    document.set_image(second, "Open")
    canvas._image_item._kept = KeptPixmaps(budget=0)  # nothing kept: as past the budget, or a picture never shown
    document.undo()
    assert canvas.showing_stand_in()
    item = canvas._image_item
    assert item.mapRectToScene(item.boundingRect()).width() == pytest.approx(SIDE)  # laid over the whole picture
    qtbot.waitUntil(lambda: not canvas.showing_stand_in(), timeout=10_000)
    np.testing.assert_array_equal(_shown(canvas), np.asarray(first))
    assert item.mapRectToScene(item.boundingRect()).width() == SIDE
    assert canvas.converted and threading.main_thread() not in canvas.converted


def test_a_region_changed_while_the_stand_in_shows_is_converted_with_the_rest(qtbot, canvas):  # noqa: ANN001
    document = canvas.document
    document.set_image(_picture(3), "Open")
    assert canvas.showing_stand_in()
    changed = np.asarray(document.image).copy()
    changed[100:140, 200:260] = (250, 0, 60)
    document.set_image(Image.fromarray(changed), "Generated")  # a region: nothing to paint it into yet
    qtbot.waitUntil(lambda: not canvas.showing_stand_in(), timeout=10_000)
    np.testing.assert_array_equal(_shown(canvas), changed)
    changed[300:310, 10:20] = 0
    document.set_image(Image.fromarray(changed), "Generated")  # now painted into the pixmap, as before
    np.testing.assert_array_equal(_shown(canvas), changed)
    assert threading.main_thread() not in canvas.converted


def test_kept_pixmaps_go_with_their_pictures_and_past_the_budget(qapp) -> None:  # noqa: ANN001
    from studio.ui.qt_images import pil_to_qpixmap

    oldest, dropped, middle, newest = (Image.new("RGB", (64, 64), (k, 0, 0)) for k in range(4))
    kept = KeptPixmaps(budget=3 * 64 * 64 * 4)
    for picture in (oldest, dropped, middle, newest):
        kept.keep(picture, pil_to_qpixmap(picture))
    assert len(kept) == 3 and kept.take(oldest) is None  # it went past the budget
    assert kept.take(newest) is not None and kept.take(newest) is None  # taken: no longer kept
    del dropped  # its step left the undo history
    assert kept.take(middle) is not None and len(kept) == 0


def test_a_big_changed_region_and_its_undo_are_converted_in_a_worker_and_painted_exactly(qtbot, canvas,  # noqa: ANN001
                                                                                        monkeypatch):
    """An inpaint result's region, its undo and redo: a big region is converted in a worker thread (at 4096x4096
    one of 3000x1300 held the window 9-16 ms), and one changed again before it is painted is painted as it is
    then; a whole picture shown meanwhile is not painted over."""
    from studio.ui.canvas_picture import REGION_AT_ONCE

    threads: list[threading.Thread] = []
    real = canvas_picture.pil_to_qimage
    monkeypatch.setattr(canvas_picture, "pil_to_qimage", lambda image: threads.append(threading.current_thread())
                        or real(image))
    document = canvas.document
    first = _picture(4)
    canvas.prepare(first, pil_to_pixmap_ready_qimage(first))
    document.set_image(first, "Open")
    array = np.asarray(first).copy()
    array[100:900, 50:1000] = (250, 0, 60)  # 950x800: over REGION_AT_ONCE
    assert 950 * 800 > REGION_AT_ONCE
    document.set_image(Image.fromarray(array), "Generated")
    assert canvas.converting_regions()
    qtbot.waitUntil(lambda: not canvas.converting_regions(), timeout=10_000)
    np.testing.assert_array_equal(_shown(canvas), array)
    document.undo()
    document.redo()  # before the undo's region is painted
    document.undo()
    qtbot.waitUntil(lambda: not canvas.converting_regions(), timeout=10_000)
    np.testing.assert_array_equal(_shown(canvas), np.asarray(first))
    assert threads and threading.main_thread() not in threads
    document.redo()
    second = _picture(5)
    canvas.prepare(second, pil_to_pixmap_ready_qimage(second))
    document.set_image(second, "Open")  # a whole picture before the region is painted
    qtbot.waitUntil(lambda: not canvas.converting_regions() and not canvas._image_item._painting_regions,
                    timeout=10_000)
    np.testing.assert_array_equal(_shown(canvas), np.asarray(second))


def test_conversions_of_pictures_no_longer_to_be_shown_are_given_up(qtbot, canvas, monkeypatch):  # noqa: ANN001
    """Ctrl+Z held over big pictures whose pixmaps are no longer kept: each picture passed over started a
    conversion in a worker thread, all running to the end side by side; now those passed over give up."""
    from studio.ui.qt_images import ConversionCancelled

    ended: dict[int, str] = {}
    real = canvas_picture.pil_to_pixmap_ready_qimage

    def recorded(image, cancelled=None):  # noqa: ANN001, ANN202
        try:
            converted = real(image, cancelled)
        except ConversionCancelled:
            ended[id(image)] = "given up"
            raise
        ended[id(image)] = "converted"
        return converted

    monkeypatch.setattr(canvas_picture, "pil_to_pixmap_ready_qimage", recorded)
    document = canvas.document
    canvas._image_item._kept = KeptPixmaps(budget=0)
    pictures = [_picture(seed) for seed in range(6, 10)]
    for picture in pictures:  # one after another, before any conversion could end
        document.set_image(picture, "Open")
    qtbot.waitUntil(lambda: not canvas.showing_stand_in(), timeout=10_000)
    qtbot.waitUntil(lambda: len(ended) == len(pictures), timeout=10_000)
    assert [ended[id(p)] for p in pictures] == ["given up"] * 3 + ["converted"]
    np.testing.assert_array_equal(_shown(canvas), np.asarray(pictures[-1]))
