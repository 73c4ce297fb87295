"""The undo history as a list: click a row, or move to it with the arrow keys, to go back (or forward) to that
state."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QListWidget, QWidget

from studio.core.document import Document
from studio.ui.theme import TEXT, TEXT_DISABLED


class HistoryPanel(QListWidget):
    position_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyList")
        # A letter here is a tool's shortcut (focus_keys), never a search: a search moved the current row, and so
        # undid steps the person never meant to undo.
        self.setProperty("lettersAreShortcuts", True)
        # A generated step's row is long ("Inpainted 'a red fox in the snow at…' (seed 1389060011)"): cut in the
        # middle to the panel's width, its seed kept in sight, and whole in its tooltip.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._document: Document | None = None  # the one last shown
        self._shown_revision = -1  # its history_revision the rows were made for
        # A click or the arrow keys: the row that becomes current is the state to go to.
        self.currentRowChanged.connect(self._row_chosen)

    def _row_chosen(self, row: int) -> None:
        if row < 0:
            return
        self.position_requested.emit(row)
        document = self._document
        if document is not None and document.history_position != row:
            # The jump was refused (the brush is down) or went elsewhere: the list shows where the document is,
            # not a row it never went to (a later click on the row that looked current would do nothing).
            self.refresh(document)

    def keyboardSearch(self, search: str) -> None:  # noqa: N802
        """No search by typing: a row that becomes current is a jump in the history."""

    def refresh(self, document: Document) -> None:
        position = document.history_position
        self.blockSignals(True)
        # Asked after a brush's dabs too, which leave the history as it was: its rows are made again only when it
        # changed (every step named anew held the window's thread longer the longer the history).
        if document is not self._document or document.history_revision != self._shown_revision:
            self._document, self._shown_revision = document, document.history_revision
            self._show_rows(document, position)
        self.setCurrentRow(position)
        self.scrollToItem(self.item(position))
        self.blockSignals(False)

    def _show_rows(self, document: Document, position: int) -> None:
        # Named as Undo and Redo name them: a generated step by its prompt's start and seed, not "Generated".
        labels = ["Start", *document.history_descriptions()]
        if self.count() != len(labels) or any(self.item(i).text() != t for i, t in enumerate(labels)):
            self.clear()
            self.addItems(labels)
            for index, label in enumerate(labels):
                self.item(index).setToolTip(label)
        for index in range(self.count()):
            # Undone steps stay listed, dimmed, until a new change replaces them.
            self.item(index).setForeground(QColor(TEXT if index <= position else TEXT_DISABLED))
