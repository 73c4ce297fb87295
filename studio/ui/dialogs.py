"""Small dialogs: extend the canvas (outpaint) and scale the picture."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.inpaint import MAX_EXTEND
from studio.core.requests import MAX_SIZE, MIN_SIZE


def _spin(maximum: int, value: int, step: int = 8, suffix: str = " px") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(0, maximum)
    spin.setSingleStep(step)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin


class ExtendCanvasDialog(QDialog):
    """How many pixels to add on each side, and whether to fill them by inpainting at once."""

    def __init__(self, size: tuple[int, int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Extend Canvas")
        self._size = size
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.left, self.top, self.right, self.bottom = (_spin(MAX_EXTEND, 0) for _ in range(4))
        self.right.setValue(128)
        for label, spin in (("Left", self.left), ("Top", self.top), ("Right", self.right), ("Bottom", self.bottom)):
            form.addRow(label, spin)
            spin.valueChanged.connect(self._update_summary)
        layout.addLayout(form)
        self.summary = QLabel()
        self.summary.setObjectName("hintLabel")
        layout.addWidget(self.summary)
        self.fill_check = QCheckBox("Fill the new area now (outpaint with the current model)")
        self.fill_check.setChecked(True)
        layout.addWidget(self.fill_check)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._update_summary()

    def amounts(self) -> tuple[int, int, int, int]:
        return self.left.value(), self.top.value(), self.right.value(), self.bottom.value()

    def _update_summary(self) -> None:
        left, top, right, bottom = self.amounts()
        w, h = self._size
        self.summary.setText(f"{w}×{h} → {w + left + right}×{h + top + bottom}. The new border is masked "
                             "(with a little overlap into the old edge) so it blends in.")


class ScaleImageDialog(QDialog):
    def __init__(self, size: tuple[int, int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Scale Image")
        self._aspect = size[0] / size[1]
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.width_spin = _spin(MAX_SIZE * 4, size[0], step=1)
        self.height_spin = _spin(MAX_SIZE * 4, size[1], step=1)
        self.width_spin.setMinimum(MIN_SIZE // 8)
        self.height_spin.setMinimum(MIN_SIZE // 8)
        self.keep_aspect = QCheckBox("Keep proportions")
        self.keep_aspect.setChecked(True)
        form.addRow("Width", self.width_spin)
        form.addRow("Height", self.height_spin)
        form.addRow("", self.keep_aspect)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.width_spin.valueChanged.connect(self._width_changed)
        self.height_spin.valueChanged.connect(self._height_changed)

    def new_size(self) -> tuple[int, int]:
        return self.width_spin.value(), self.height_spin.value()

    def _width_changed(self, value: int) -> None:
        if self.keep_aspect.isChecked():
            self.height_spin.blockSignals(True)
            self.height_spin.setValue(max(1, round(value / self._aspect)))
            self.height_spin.blockSignals(False)

    def _height_changed(self, value: int) -> None:
        if self.keep_aspect.isChecked():
            self.width_spin.blockSignals(True)
            self.width_spin.setValue(max(1, round(value * self._aspect)))
            self.width_spin.blockSignals(False)
