"""Minimum sizes for dialogs that hold word-wrapped text: a wrapped label asks for little width, and Qt's layouts
leave its extra lines out of the dialog's minimum height, so at its minimum size a dialog's rows overlapped."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLabel, QWidget

WRAPPED_TEXT_CHARS = 36  # a wrapped label is never narrower than about this many characters


def keep_wrapped_text_whole(window: QWidget, *labels: QLabel, chars: int = WRAPPED_TEXT_CHARS) -> None:
    """Keep ``window``'s minimum height enough for its layout at its minimum width, wrapped lines included, as the
    labels' texts change; each of ``labels`` (word-wrapped) keeps room for about ``chars`` characters a line."""
    for label in labels:
        label.setMinimumWidth(label.fontMetrics().averageCharWidth() * chars)
    room = _WrappedTextRoom(window)
    window.installEventFilter(room)
    room.fit()


class _WrappedTextRoom(QObject):
    """Sets its window's minimum height each time the window's layout is redone (a label's new text asks for that)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self._window and event.type() in (QEvent.Type.LayoutRequest, QEvent.Type.Show):
            self.fit()
        return False

    def fit(self) -> None:
        layout = self._window.layout()
        if layout is None:
            return
        layout.activate()
        minimum = layout.totalMinimumSize()
        needed = layout.totalHeightForWidth(minimum.width()) if layout.hasHeightForWidth() else minimum.height()
        self._window.setMinimumHeight(max(minimum.height(), needed))
