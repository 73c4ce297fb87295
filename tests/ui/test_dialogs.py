"""The Scale Image and Extend Canvas dialogs, and a big scale's busy bar with its Cancel."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QPushButton

from studio.core.requests import MAX_SIZE
from studio.ui.dialogs import ScaleImageDialog

MAX_SCALE_SIDE = MAX_SIZE * 4  # the dialog's limit on a side


def test_keep_proportions_holds_at_the_side_limit(qtbot):  # noqa: ANN001
    """A width whose height would pass the limit brings both sides down together: before, the height alone was
    clamped (63x97 asked at 16384 wide became 16384x16384, a distorted picture)."""
    dialog = ScaleImageDialog((63, 97))
    qtbot.addWidget(dialog)
    dialog.width_spin.setValue(16384)
    width, height = dialog.new_size()
    assert height == MAX_SCALE_SIDE and width == round(MAX_SCALE_SIDE * 63 / 97)
    assert "brought down together" in dialog.limit_note.text() and f"{width}×{height}" in dialog.limit_note.text()
    dialog.height_spin.setValue(MAX_SCALE_SIDE * 3)  # typed past the limit on the other side
    assert dialog.new_size() == (width, height)
    dialog.height_spin.setValue(194)
    assert dialog.new_size() == (126, 194) and "over it" not in dialog.limit_note.text()


def test_without_keep_proportions_each_side_is_limited_alone(qtbot):  # noqa: ANN001
    dialog = ScaleImageDialog((63, 97))
    qtbot.addWidget(dialog)
    dialog.keep_aspect.setChecked(False)
    dialog.width_spin.setValue(MAX_SCALE_SIDE + 100)
    assert dialog.new_size() == (MAX_SCALE_SIDE, 97)


def test_a_big_scale_shows_a_busy_bar_and_cancel_keeps_the_picture(qtbot, window, monkeypatch):  # noqa: ANN001
    from studio.ui import canvas_resizing

    picture = Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 48, 3), dtype=np.uint8))
    window.document.set_image(picture, "Open test picture")
    started, release = threading.Event(), threading.Event()
    real = canvas_resizing.scaled

    def held(*args):  # noqa: ANN002, ANN202
        started.set()
        release.wait(10)
        return real(*args)

    monkeypatch.setattr(canvas_resizing, "scaled", held)
    monkeypatch.setattr(canvas_resizing, "BIG_SCALE_PIXELS", 200 * 200)
    try:
        task = window.actions_.scale_image(480, 640)
        qtbot.waitUntil(started.is_set, timeout=5000)
        progress = window.actions_.scaling_progress
        assert progress is not None and progress.isVisible() and "480×640" in progress.labelText()
        assert progress.maximum() == 0  # a busy bar: the resample has no steps to count
        progress.findChild(QPushButton).click()  # the person's Cancel
        qtbot.waitUntil(task.done, timeout=5000)
    finally:
        release.set()
    assert task.cancelled()
    assert window.document.size == (48, 64) and window.document.image is picture
    assert "cancelled; the picture is unchanged" in window.status.message_label.text()
    assert window.actions_.scaling_progress is None

    started.clear()
    release.clear()
    try:  # the busy bar put away another way (Escape, closed) cancels too: no scale left running unseen
        task = window.actions_.scale_image(480, 640)
        qtbot.waitUntil(started.is_set, timeout=5000)
        window.actions_.scaling_progress.reject()
        qtbot.waitUntil(task.done, timeout=5000)
    finally:
        release.set()
    assert task.cancelled() and window.document.size == (48, 64)

    task = window.actions_.scale_image(96, 128)  # a small scale: no busy bar
    assert window.actions_.scaling_progress is None
    qtbot.waitUntil(lambda: window.document.size == (96, 128), timeout=5000)


def test_the_extend_summary_is_shown_whole_as_the_sizes_grow(qtbot):  # noqa: ANN001
    """The summary line grew with the sizes after the dialog was laid out: its end was cut off until the dialog
    widened under the person's eyes. It wraps now, and the dialog keeps its width."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtWidgets import QApplication

    from studio.ui.dialogs import ExtendCanvasDialog

    dialog = ExtendCanvasDialog((63, 97))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    width = dialog.width()
    for spin in (dialog.left, dialog.top, dialog.right, dialog.bottom):
        spin.setValue(2048)
    summary = dialog.summary
    assert "63×97 → 4159×4193" in summary.text()

    def whole() -> bool:
        room = summary.contentsRect()
        needed = summary.fontMetrics().boundingRect(QRect(0, 0, room.width(), 10_000), Qt.TextFlag.TextWordWrap,
                                                    summary.text())
        return needed.width() <= room.width() and needed.height() <= room.height() and summary.visibleRegion() \
            .boundingRect().size() == summary.size()

    assert whole()  # at once, before the dialog's layout is done again
    QApplication.processEvents()  # the layout's request, posted by the new text, handled
    assert whole() and dialog.width() == width


def test_a_side_lifted_to_the_minimum_is_said_in_the_note(qtbot):  # noqa: ANN001
    """A 4000×3 picture typed to 800 wide became 800×8 (the minimum side), stretched, without a word."""
    dialog = ScaleImageDialog((4000, 3))
    qtbot.addWidget(dialog)
    dialog.width_spin.setValue(800)
    assert dialog.new_size() == (800, 8)
    assert "At least 8 px a side" in dialog.limit_note.text()
    assert "proportions are not kept" in dialog.limit_note.text()
    dialog.width_spin.setValue(40000 // 3)  # 13333 × 10: within both limits again
    assert "At least" not in dialog.limit_note.text()


def _overlap(first, second) -> bool:  # noqa: ANN001
    return first.geometry().intersects(second.geometry())


def test_at_its_minimum_size_the_scale_dialogs_rows_and_note_do_not_overlap(qtbot):  # noqa: ANN001
    """The wrapped note's lines were left out of the minimum height: at 221×159 Width and Height overlapped and
    Keep proportions covered Height."""
    dialog = ScaleImageDialog((64, 64))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    for side in (64, MAX_SCALE_SIDE * 2):  # the note grows a sentence when a side is brought down
        dialog.width_spin.setValue(side)
        dialog.resize(dialog.minimumSize())
        qtbot.waitUntil(lambda: dialog.size() == dialog.minimumSize())
        dialog.layout().activate()
        note = dialog.limit_note
        assert not _overlap(dialog.width_spin, dialog.height_spin)
        assert not _overlap(dialog.keep_aspect, dialog.height_spin)
        assert note.height() >= note.heightForWidth(note.width())  # every wrapped line is shown
        assert note.geometry().top() >= dialog.keep_aspect.geometry().bottom()
