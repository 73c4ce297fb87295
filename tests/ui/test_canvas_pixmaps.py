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
    for name in ("pil_to_qpixmap", "pil_to_pixmap_ready_qimage", "pil_to_qimage"):
        real = getattr(canvas_module, name)

        def recorded(image, _real=real):  # noqa: ANN001, ANN202
            if image.size == (SIDE, SIDE):
                view.converted.append(threading.current_thread())
            return _real(image)

        monkeypatch.setattr(canvas_module, name, recorded)
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
    canvas._kept = KeptPixmaps(budget=0)  # nothing kept: as past the budget, or a picture never shown
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
