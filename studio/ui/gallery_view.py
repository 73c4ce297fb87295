"""The gallery's grid of thumbnails, usable from the keyboard: the picture with the focus is always selected."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtGui import QFocusEvent, QKeyEvent
from PySide6.QtWidgets import QListView


class GalleryView(QListView):
    """A list view whose current picture is selected once it has focus.

    A plain QListView keeps a current row without selecting it: tabbing in, Home on the first picture or an arrow
    with only one picture moved nothing, so Enter, Delete and the reuse buttons (all on the selection) did nothing.
    """

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        super().focusInEvent(event)
        self.select_current()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        super().keyPressEvent(event)
        self.select_current()  # a key that did not move the cursor (Home on row 0) still selects where it is

    def select_current(self) -> None:
        """Select the current picture (the first when there is none) unless something is selected already."""
        model, selection = self.model(), self.selectionModel()
        if model is None or selection is None or selection.hasSelection() or model.rowCount() == 0:
            return
        index = self.currentIndex()
        if not index.isValid():
            index = model.index(0, 0)
        selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
