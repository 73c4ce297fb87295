"""Minimum sizes for dialogs that hold word-wrapped text: a wrapped label asks for little width, and Qt's layouts
leave its extra lines out of the dialog's minimum height, so at its minimum size a dialog's rows overlapped."""

from __future__ import annotations

import os

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QAbstractItemView, QLabel, QTableView, QTreeView, QWidget

WRAPPED_TEXT_CHARS = 36  # a wrapped label is never narrower than about this many characters
ROWS_IN_SIGHT = 3  # a list or table at its dialog's minimum size still shows this many rows
ROW_PADDING = 8  # above and below a row's text (the stylesheet's item padding and the grid line), for empty lists
BREAK = "\u200b"  # a zero-width space: where a word-wrapped label may break a path


def breakable_path(path: object) -> str:
    """``path`` as text that a word-wrapped label may break after each folder separator: a long path has no space
    to break at, so it ran past the label's edge and was cut off mid-name."""
    text = str(path)
    for separator in {os.sep, "/"}:
        text = text.replace(separator, separator + BREAK)
    return text


def keep_rows_in_sight(view: QAbstractItemView, rows: int = ROWS_IN_SIGHT) -> None:
    """Give ``view`` a minimum height of its header, ``rows`` rows and a horizontal scroll bar, so that shrinking
    its dialog cannot leave the list with no row in sight."""
    if isinstance(view, QTableView):
        header_height = view.horizontalHeader().sizeHint().height() if view.horizontalHeader().isVisible() else 0
        row = view.verticalHeader().defaultSectionSize()
    else:
        header = view.header() if isinstance(view, QTreeView) else None
        header_height = header.sizeHint().height() if header is not None and not header.isHidden() else 0
        row = view.fontMetrics().height() + ROW_PADDING
    if view.model() is not None and view.model().rowCount() and view.sizeHintForRow(0) > 0:
        row = max(row, view.sizeHintForRow(0))
    scroll_bar = view.horizontalScrollBar().sizeHint().height()
    view.setMinimumHeight(header_height + rows * row + scroll_bar + 2 * view.frameWidth())


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

    # The window is its parent, not an attribute: Qt may call the filter while the object is still being made.
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() in (QEvent.Type.LayoutRequest, QEvent.Type.Show) and watched is self.parent():
            self.fit()
        return False

    def fit(self) -> None:
        window = self.parent()
        layout = window.layout() if isinstance(window, QWidget) else None
        if layout is None:
            return
        layout.activate()
        minimum = layout.totalMinimumSize()
        needed = layout.totalHeightForWidth(minimum.width()) if layout.hasHeightForWidth() else minimum.height()
        window.setMinimumHeight(max(minimum.height(), needed))
