"""The clipboard and drops: copying the picture or its masked area, pasting, dropping picture files."""

from __future__ import annotations

import numpy as np
import pytest
from canvas_testing import open_test_picture
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from PySide6.QtWidgets import QMessageBox

from studio.ui.qt_images import pil_to_qimage


@pytest.fixture
def picture(window):  # noqa: ANN001, ANN201
    return open_test_picture(window)


def test_drop_and_paste_open_pictures_and_bad_files_leave_the_document(qtbot, window, tmp_path, monkeypatch):  # noqa: ANN001
    from studio.ui import canvas_picture

    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warnings.append(text))
    on_this_thread = [False]  # an opened file is converted for display in a worker thread, not on this one
    convert = canvas_picture.pil_to_qpixmap
    monkeypatch.setattr(canvas_picture, "pil_to_qpixmap", lambda image: on_this_thread.append(True) or convert(image))
    good = tmp_path / "dropped.png"
    Image.new("RGB", (96, 64), (10, 20, 30)).save(good)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(good))])
    drop = QDropEvent(QPointF(400, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: window.document.image is not None, timeout=5000)
    assert window.document.image.size == (96, 64)
    shown = window.canvas._image_item.pixmap().toImage()
    assert (shown.width(), shown.height(), shown.pixelColor(5, 5).getRgb()[:3]) == (96, 64, (10, 20, 30))
    assert on_this_thread == [False]

    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:60])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(broken))])
    window.dropEvent(QDropEvent(QPointF(400, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                                Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: bool(warnings), timeout=5000)
    assert "broken.png" in warnings[0] and warnings[0].endswith(".")
    assert window.document.image.size == (96, 64)

    QGuiApplication.clipboard().setImage(pil_to_qimage(Image.new("RGB", (48, 40), (250, 0, 0))))
    window.actions_.paste.trigger()
    qtbot.waitUntil(lambda: window.document.image.size == (48, 40), timeout=5000)
    assert window.document.image.getpixel((5, 5)) == (250, 0, 0)
    assert on_this_thread == [False]  # a pasted picture, too, is converted in worker threads
    window.actions_.undo.trigger()
    assert window.document.image.size == (96, 64)


def test_copy_picture_and_masked_area(qtbot, window, picture):  # noqa: ANN001
    """Both are made in a worker thread and handed to the clipboard on the window's."""
    from studio.ui.qt_images import qimage_to_pil

    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    window.actions_.copy.trigger()
    qtbot.waitUntil(lambda: not clipboard.image().isNull(), timeout=5000)
    assert np.array_equal(np.asarray(qimage_to_pil(clipboard.image())), np.asarray(picture))
    assert window.status.message_label.text() == "Copied the picture."
    window.document.edit_mask("box", lambda m: (m.__setitem__((slice(10, 30), slice(20, 60)), 255),
                                                (20, 10, 60, 30))[1])
    window.document.edit_mask("soft", lambda m: (m.__setitem__((slice(12, 14), slice(20, 22)), 100),
                                                 (20, 12, 22, 14))[1])
    window.actions_.copy_masked.trigger()
    qtbot.waitUntil(lambda: clipboard.image().size().toTuple() == (40, 20), timeout=5000)
    copied = np.asarray(qimage_to_pil(clipboard.image()))
    assert copied.shape == (20, 40, 4)
    np.testing.assert_array_equal(copied[..., :3], np.asarray(picture)[10:30, 20:60])
    assert (copied[2:4, :2, 3] == 100).all() and copied[5:, 5:, 3].min() == 255
    assert window.status.message_label.text() == "Copied the masked area (40×20)."


def _drop_as_qt_does(widget, path) -> bool:  # noqa: ANN001
    """A file dragged over ``widget`` and let go, routed as Qt routes it: to the nearest widget that takes drops."""
    from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent
    from PySide6.QtWidgets import QApplication

    target = widget
    while target is not None and not target.acceptDrops():
        target = target.parentWidget()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    point = target.mapFrom(widget, widget.rect().center())
    enter = QDragEnterEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    enter.setAccepted(False)
    QApplication.sendEvent(target, enter)
    move = QDragMoveEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier)
    move.setAccepted(enter.isAccepted())
    QApplication.sendEvent(target, move)
    if not move.isAccepted():
        return False
    QApplication.sendEvent(target, QDropEvent(QPointF(point), Qt.DropAction.CopyAction, mime,
                                              Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    return True


def test_a_picture_dropped_on_the_canvas_itself_opens(qtbot, window, tmp_path):  # noqa: ANN001
    picture = tmp_path / "photo.png"
    Image.new("RGB", (80, 64), (200, 10, 10)).save(picture)
    assert _drop_as_qt_does(window.canvas.viewport(), picture)
    qtbot.waitUntil(lambda: window.document.image is not None, timeout=5000)
    assert window.document.image.size == (80, 64)


def test_a_pasted_picture_says_it_took_the_canvas_place_and_the_prompt_box_says_where_to_paste_it(
        qtbot, window, picture):  # noqa: ANN001
    """Studio has no layers: Ctrl+V on the canvas puts the picture in place of the canvas, and the sentence says so
    and how to get the old one back. Ctrl+V in the prompt box, which takes no picture, says where to paste it."""
    window.document.set_image(Image.new("RGB", (64, 64), (9, 9, 9)), "Open")
    QGuiApplication.clipboard().setImage(pil_to_qimage(Image.new("RGB", (220, 180), (250, 0, 0))))
    window.actions_.paste.trigger()
    qtbot.waitUntil(lambda: window.document.image.size == (220, 180), timeout=5000)
    assert window.status.message_label.text() == ("Pasted a 220×180 picture in place of the canvas (Ctrl+Z brings "
                                                  "the old one back).")
    for edit in (window.prompt_panel.prompt_edit, window.prompt_panel.negative_edit):
        window.status.set_message("")
        edit.setPlainText("a house")
        edit.setFocus()
        qtbot.waitUntil(edit.hasFocus, timeout=2000)
        qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        assert window.status.message_label.text() == ("The clipboard holds a picture: click the canvas and press "
                                                      "Ctrl+V to paste it.")
        assert edit.toPlainText() == "a house" and window.document.image.size == (220, 180)
    QGuiApplication.clipboard().setText("by a lake")  # text still pastes into the box
    qtbot.keyClick(window.prompt_panel.negative_edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert "by a lake" in window.prompt_panel.negative_edit.toPlainText()


def test_a_picture_pasted_on_an_empty_canvas_says_no_old_one_comes_back(qtbot, window):  # noqa: ANN001
    """On an empty canvas the sentence said the picture took the canvas' place and Ctrl+Z brought the old one back:
    there was none."""
    assert window.document.image is None
    QGuiApplication.clipboard().setImage(pil_to_qimage(Image.new("RGB", (220, 180), (250, 0, 0))))
    window.actions_.paste.trigger()
    qtbot.waitUntil(lambda: window.document.image is not None, timeout=5000)
    assert window.status.message_label.text() == "Pasted a 220×180 picture."
