"""A gallery cell of a job that made no picture: a failed one is marked in red, a cancelled one with a sign of its
own in grey (both had the same grey warning sign)."""

from __future__ import annotations

from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QStyleOptionViewItem

from studio.services.history_entry import HistoryEntry
from studio.ui.gallery_delegate import CELL, GalleryDelegate
from studio.ui.gallery_model import ENTRY_ROLE


def _mark(outcome: str) -> QImage:
    """The sign at the top of a cell for a job with this outcome."""
    model = QStandardItemModel()
    item = QStandardItem()
    item.setData(HistoryEntry(prompt="a fox", outcome=outcome), ENTRY_ROLE)
    model.appendRow(item)
    image = QImage(CELL, CELL, QImage.Format.Format_ARGB32)
    image.fill(QColor("black"))
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, CELL, CELL)
    painter = QPainter(image)
    GalleryDelegate().paint(painter, option, model.index(0, 0))
    painter.end()
    return image.copy(CELL // 2 - 12, 18, 24, 24)


def _reddest(image: QImage) -> int:
    return max(image.pixelColor(x, y).red() - image.pixelColor(x, y).green()
               for x in range(image.width()) for y in range(image.height()))


def test_failed_and_cancelled_jobs_have_different_marks(qapp):  # noqa: ANN001
    failed, cancelled = _mark("failed"), _mark("cancelled")
    assert failed != cancelled
    assert _reddest(failed) > 80  # red: something went wrong
    assert _reddest(cancelled) < 30  # neutral: stopped on purpose
