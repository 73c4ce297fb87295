"""This session's pictures as thumbnails; clicking one puts it on the canvas."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from studio.core.events import GeneratedImage
from studio.ui.qt_images import pil_to_qpixmap

THUMB = 96
MAX_RESULTS = 200  # older thumbnails drop off the strip; the files stay in the outputs folder


class ResultsStrip(QListWidget):
    result_activated = Signal(object)  # GeneratedImage

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultsStrip")
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 12, THUMB + 12))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self._outputs: dict[int, GeneratedImage] = {}
        self._next = 0
        self.itemClicked.connect(self._activate)
        self.itemActivated.connect(self._activate)

    def add_result(self, output: GeneratedImage) -> None:
        thumb = output.image.copy()
        thumb.thumbnail((THUMB * 2, THUMB * 2))
        item = QListWidgetItem(QIcon(pil_to_qpixmap(thumb)), "")
        recipe = output.recipe
        where = f"\n{output.path}" if output.path else ""
        item.setToolTip(f"{recipe.prompt[:200]}\nSeed {recipe.seed} · {recipe.width}×{recipe.height} · "
                        f"{recipe.sampler} · {recipe.steps} steps{where}")
        key = self._next
        self._next += 1
        item.setData(Qt.ItemDataRole.UserRole, key)
        self._outputs[key] = output
        self.insertItem(0, item)
        while self.count() > MAX_RESULTS:
            old = self.takeItem(self.count() - 1)
            self._outputs.pop(old.data(Qt.ItemDataRole.UserRole), None)

    def _activate(self, item: QListWidgetItem) -> None:
        output = self._outputs.get(item.data(Qt.ItemDataRole.UserRole))
        if output is not None:
            self.result_activated.emit(output)
