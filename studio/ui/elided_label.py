"""A one-line label that shortens a text too long for its room with "…" instead of widening its panel."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

MIN_SHOWN = "Abcd…"  # the least the label keeps room for: a few letters and the ellipsis


class ElidedLabel(QLabel):
    """A label whose minimum width is a few letters, not its whole text: a long name (a LoRA's, a path) is shown
    shortened with "…" to the width the layout gives it, so it cannot push its panel wider. ``text()`` is the whole
    text; set a tooltip to show it whole."""

    def __init__(self, text: str = "", mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._whole = text
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self._elide()

    def setText(self, text: str) -> None:  # noqa: N802
        self._whole = text
        self.updateGeometry()
        self._elide()

    def text(self) -> str:
        return self._whole

    def shown_text(self) -> str:
        """The text as drawn, shortened with "…" when it does not fit."""
        return super().text()

    def sizeHint(self) -> QSize:  # noqa: N802
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._whole) + margins.left() + margins.right()
        return QSize(width, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        margins = self.contentsMargins()
        width = min(self.fontMetrics().horizontalAdvance(MIN_SHOWN), self.fontMetrics().horizontalAdvance(self._whole))
        return QSize(width + margins.left() + margins.right(), super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        room = self.contentsRect().width()
        shown = self.fontMetrics().elidedText(self._whole, self._mode, room) if room > 0 else self._whole
        if shown != super().text():
            super().setText(shown)
