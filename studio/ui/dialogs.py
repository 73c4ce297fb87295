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
from studio.ui.dialog_room import keep_wrapped_text_whole


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
        # Wrapped: set after the dialog is laid out, a longer size line ran past its edge and was cut off.
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.fill_check = QCheckBox("Fill the new area now (outpaint with the current model)")
        self.fill_check.setChecked(True)
        layout.addWidget(self.fill_check)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._update_summary()
        keep_wrapped_text_whole(self, self.summary)

    def amounts(self) -> tuple[int, int, int, int]:
        return self.left.value(), self.top.value(), self.right.value(), self.bottom.value()

    def _update_summary(self) -> None:
        left, top, right, bottom = self.amounts()
        w, h = self._size
        self.summary.setText(f"{w}×{h} → {w + left + right}×{h + top + bottom} px.\nThe new border is masked "
                             "(with a little overlap into the old edge) so it blends in.")


MAX_SCALE_SIDE = MAX_SIZE * 4  # the Scale Image dialog's limit on either side
MIN_SCALE_SIDE = MIN_SIZE // 8


class ScaleImageDialog(QDialog):
    """The picture's new size; with Keep proportions, a side past the limit brings the other down with it."""

    def __init__(self, size: tuple[int, int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Scale Image")
        self._aspect = size[0] / size[1]
        layout = QVBoxLayout(self)
        form = QFormLayout()
        # Their own maximum is above the limit, so that a side typed past it is seen here and both sides are brought
        # down together (a spin box clamping one side alone distorted the picture).
        self.width_spin = _spin(MAX_SCALE_SIDE * 64, size[0], step=1)
        self.height_spin = _spin(MAX_SCALE_SIDE * 64, size[1], step=1)
        self.width_spin.setMinimum(MIN_SCALE_SIDE)
        self.height_spin.setMinimum(MIN_SCALE_SIDE)
        self.keep_aspect = QCheckBox("Keep proportions")
        self.keep_aspect.setChecked(True)
        form.addRow("Width", self.width_spin)
        form.addRow("Height", self.height_spin)
        form.addRow("", self.keep_aspect)
        layout.addLayout(form)
        self.limit_note = QLabel()
        self.limit_note.setObjectName("hintLabel")
        self.limit_note.setWordWrap(True)
        layout.addWidget(self.limit_note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.width_spin.valueChanged.connect(self._width_changed)
        self.height_spin.valueChanged.connect(self._height_changed)
        self._show_limit(False, raised=min(size) < MIN_SCALE_SIDE)  # a picture thinner than that: lifted already
        keep_wrapped_text_whole(self, self.limit_note)

    def new_size(self) -> tuple[int, int]:
        return self.width_spin.value(), self.height_spin.value()

    def _width_changed(self, value: int) -> None:
        if self.keep_aspect.isChecked():
            self._set_both(value, round(value / self._aspect))
        else:
            self._set_both(value, self.height_spin.value())

    def _height_changed(self, value: int) -> None:
        if self.keep_aspect.isChecked():
            self._set_both(round(value * self._aspect), value)
        else:
            self._set_both(self.width_spin.value(), value)

    def _set_both(self, width: int, height: int) -> None:
        """Both sides at once, each within the limit; with Keep proportions the longer side is brought down to the
        limit and the other with it."""
        limited = max(width, height) > MAX_SCALE_SIDE
        if limited and self.keep_aspect.isChecked():
            if width >= height:
                width, height = MAX_SCALE_SIDE, round(MAX_SCALE_SIDE / self._aspect)
            else:
                width, height = round(MAX_SCALE_SIDE * self._aspect), MAX_SCALE_SIDE
        # The spin boxes would lift a side under their minimum alone, silently: a 4000×3 picture at 800 wide became
        # 800×8, stretched. Said in the note instead.
        raised = min(width, height) < MIN_SCALE_SIDE
        width, height = (min(max(MIN_SCALE_SIDE, width), MAX_SCALE_SIDE),
                         min(max(MIN_SCALE_SIDE, height), MAX_SCALE_SIDE))
        for spin, value in ((self.width_spin, width), (self.height_spin, height)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self._show_limit(limited, raised)

    def _show_limit(self, limited: bool, raised: bool = False) -> None:
        text = f"At most {MAX_SCALE_SIDE} px a side"
        if self.keep_aspect.isChecked():
            text += "; with Keep proportions both sides are brought down together"
        text = (f"{text}. That size was over it, so it is {self.width_spin.value()}×{self.height_spin.value()}."
                if limited else f"{text}.")
        if raised:
            text += (f" At least {MIN_SCALE_SIDE} px a side: a side would have been less, so it is "
                     f"{MIN_SCALE_SIDE} px" + (" and the picture's proportions are not kept (it is stretched)."
                                               if self.keep_aspect.isChecked() else "."))
        self.limit_note.setText(text)
