"""A gallery cell: the picture's thumbnail fitted in, a star when starred, a mark on failed jobs."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from studio.services.history_entry import HistoryEntry
from studio.ui.gallery_model import ENTRY_ROLE, THUMB_ROLE
from studio.ui.theme import ACCENT, BASE, DANGER, TEXT_DIM, icon

CELL = 132
STAR = "#f5c542"


class GalleryDelegate(QStyledItemDelegate):
    """A thumbnail cell: the picture fitted in, a star when starred, a mark on failed jobs."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        return QSize(CELL, CELL)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        entry: HistoryEntry | None = index.data(ENTRY_ROLE)
        rect = option.rect.adjusted(4, 4, -4, -4)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(BASE))
        painter.drawRoundedRect(rect, 6, 6)
        thumb = index.data(THUMB_ROLE) if entry and entry.outcome == "ok" else None
        if thumb is not None and not thumb.isNull():
            scaled = thumb.size().scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(rect.center())
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, thumb)
        elif entry is not None and entry.outcome == "ok":
            icon("image", TEXT_DIM).paint(painter, QRect(rect.center().x() - 14, rect.center().y() - 14, 28, 28))
        elif entry is not None:  # a failed or cancelled job: what it was, and that it did not finish
            # A failure is marked in red; a cancelled job, stopped on purpose, in a neutral grey of its own sign.
            mark = icon("alert", DANGER) if entry.outcome == "failed" else icon("cancel-all", TEXT_DIM)
            mark.paint(painter, QRect(rect.center().x() - 12, rect.top() + 14, 24, 24))
            painter.setPen(QColor(TEXT_DIM))
            painter.setClipRect(rect.adjusted(6, 0, -6, -6))
            text = f"{entry.outcome.capitalize()}\n{entry.prompt[:80]}"
            painter.drawText(rect.adjusted(6, 44, -6, -6),
                             Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap, text)
            painter.setClipping(False)
        if entry is not None and entry.starred:
            icon("star-filled", STAR).paint(painter, QRect(rect.right() - 22, rect.top() + 4, 18, 18))
        if option.state & QStyle.StateFlag.State_Selected:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor(ACCENT), 2))
            painter.drawRoundedRect(rect, 6, 6)
        painter.restore()
