"""Opening a picture as the document: compared and converted off the window thread, after a stroke ends."""

from __future__ import annotations

import numpy as np
import pytest
from canvas_testing import open_test_picture
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QGuiApplication

from studio.ui.canvas_tools import BRUSH
from studio.ui.qt_images import pil_to_qimage


@pytest.fixture
def picture(window):  # noqa: ANN001, ANN201
    return open_test_picture(window)


def test_a_picture_opened_or_pasted_over_one_of_its_size_is_compared_with_it_off_the_window_thread(
        qtbot, window, picture, tmp_path, monkeypatch):  # noqa: ANN001
    """Only the part that differs is recorded for undo; finding it held the window 50-65 ms at 4096x4096."""
    import threading

    from studio.core import comparison

    threads: list[threading.Thread] = []
    compare = comparison.changed_box

    def comparing(a, b):  # noqa: ANN001, ANN202
        threads.append(threading.current_thread())
        return compare(a, b)

    monkeypatch.setattr(comparison, "changed_box", comparing)
    doc, seen = window.document, []
    doc.add_listener(lambda change: seen.append(change))
    opened = np.asarray(picture).copy()
    opened[30:40, 50:70] = 0
    path = tmp_path / "edited.png"
    Image.fromarray(opened).save(path)
    window.actions_.run(window.actions_.open_path(path))
    qtbot.waitUntil(lambda: doc.history_labels()[-1] == "Open edited.png", timeout=5000)
    pasted = opened.copy()
    pasted[200:210, 5:9] = 255
    QGuiApplication.clipboard().setImage(pil_to_qimage(Image.fromarray(pasted)))
    window.actions_.paste.trigger()
    qtbot.waitUntil(lambda: doc.history_labels()[-1] == "Paste", timeout=5000)
    assert [change.box for change in seen if change.image] == [(50, 30, 70, 40), (5, 200, 9, 210)]
    np.testing.assert_array_equal(np.asarray(doc.image), pasted)
    assert threads and threading.main_thread() not in threads


def test_a_picture_opened_or_pasted_during_a_stroke_waits_for_it(qtbot, window, picture, tmp_path):  # noqa: ANN001
    """A picture of another size that lands while the brush is down (a big file read and converted in threads, a
    paste) would change the canvas under the stroke: it becomes the document once the brush is let go."""
    other = tmp_path / "other.png"
    Image.new("RGB", (96, 64), (10, 20, 30)).save(other)
    canvas, viewport = window.canvas, window.canvas.viewport()
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=20, hardness=1.0)
    doc = window.document
    for arrive, size in ((lambda: window.actions_.run(window.actions_.open_path(other)), (96, 64)),
                         (lambda: (QGuiApplication.clipboard().setImage(pil_to_qimage(Image.new("RGB", (48, 40)))),
                                   window.actions_.paste.trigger()), (48, 40))):
        before = doc.image
        qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(10, 10)))
        qtbot.mouseMove(viewport, canvas.mapFromScene(QPointF(30, 10)))
        arrive()
        qtbot.wait(300)  # read and converted by now; it waits
        assert doc.image is before
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(30, 10)))
        qtbot.waitUntil(lambda size=size: doc.image.size == size, timeout=5000)
        assert doc.history_labels()[-2] == "Paint mask"
        doc.undo()  # back to the stroke, on the picture it was painted on
        assert doc.image is before and doc.mask[10, 20] == 255
        doc.redo()


def test_a_refusal_about_the_canvas_picture_goes_when_another_picture_is_opened(qtbot, window, tmp_path):  # noqa: ANN001
    """'A 1x1 picture is too small to inpaint' stayed under Generate after a bigger picture was opened."""
    panel, doc = window.prompt_panel, window.document
    one_pixel, thin = tmp_path / "one-pixel.png", tmp_path / "thin-4000x3.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(one_pixel)
    Image.new("RGB", (4000, 3), (10, 200, 10)).save(thin)
    panel.prompt_edit.setPlainText("a cat")
    window.actions_.run(window.actions_.open_path(one_pixel))
    qtbot.waitUntil(lambda: doc.image is not None and doc.size == (1, 1), timeout=5000)
    doc.set_mask("Paint", np.full((1, 1), 255, np.uint8))
    window.generate()
    qtbot.waitUntil(lambda: not panel.error_label.isHidden(), timeout=5000)
    assert panel.error_label.text() == "A 1x1 picture is too small to inpaint: each side needs at least 8 px."
    window.actions_.run(window.actions_.open_path(thin))
    qtbot.waitUntil(lambda: doc.image is not None and doc.size == (4000, 3), timeout=5000)
    assert panel.error_label.isHidden()
    # Its own refusal, once Generate is pressed for it.
    doc.set_mask("Paint", np.full((3, 4000), 255, np.uint8))
    window.generate()
    qtbot.waitUntil(lambda: not panel.error_label.isHidden(), timeout=5000)
    assert panel.error_label.text() == ("A 4000x3 picture is too thin to inpaint: its height is 3 px, under the 8 px "
                                        "it needs.")
    assert window.queue_panel.job_ids() == []


def test_the_empty_canvas_refusal_goes_when_a_picture_is_opened(qtbot, window, tmp_path):  # noqa: ANN001
    """"The canvas is empty; open or generate a picture…" asks for a picture: opening one answers it."""
    panel, doc = window.prompt_panel, window.document
    picture = tmp_path / "cat.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(picture)
    panel.prompt_edit.setPlainText("a cat")
    panel.use_canvas_check.setChecked(True)
    window.generate()
    qtbot.waitUntil(lambda: not panel.error_label.isHidden(), timeout=5000)
    assert "canvas is empty" in panel.error_label.text()
    window.actions_.run(window.actions_.open_path(picture))
    qtbot.waitUntil(lambda: doc.image is not None, timeout=5000)
    assert panel.error_label.isHidden()


def test_a_refusal_about_no_picture_stays_when_a_picture_is_opened(qtbot, window, tmp_path):  # noqa: ANN001
    panel = window.prompt_panel
    panel.use_canvas_check.setChecked(False)
    panel.seed_edit.setText("not a seed")
    window.generate()
    qtbot.waitUntil(lambda: not panel.error_label.isHidden(), timeout=5000)
    refusal = panel.error_label.text()
    opened = tmp_path / "opened.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(opened)
    window.actions_.run(window.actions_.open_path(opened))
    qtbot.waitUntil(lambda: window.document.image is not None, timeout=5000)
    assert not panel.error_label.isHidden() and panel.error_label.text() == refusal


def test_a_multi_page_tiff_says_its_first_page_is_opened(qtbot, window, tmp_path):  # noqa: ANN001
    """It opened its first page with no word of the other two."""
    path = tmp_path / "multi.tif"
    pages = [Image.new("RGB", (60, 50), (value, 0, 0)) for value in (0, 100, 200)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    window.actions_.run(window.actions_.open_path(path))
    qtbot.waitUntil(lambda: window.status.message_label.text() == "Opened multi.tif (60×50), its first page of 3.",
                    timeout=5000)
    assert window.document.image.getpixel((0, 0)) == (0, 0, 0)
