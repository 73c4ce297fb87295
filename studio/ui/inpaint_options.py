"""Inpainting options, shown in the prompt panel while a mask is painted (and visible)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QGridLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from studio.core.inpaint import INPAINT_FILLS, InpaintOptions
from studio.core.mask import feather_reach
from studio.ui.theme import section_label

AREAS = [("Masked area", True), ("Whole picture", False)]
FILL_LABELS = {"original": "Original", "noise": "Noise", "blurred": "Blurred surroundings"}


class InpaintOptionsBox(QWidget):
    area_changed = Signal()  # the area or its padding: where the job works

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(section_label("Inpaint"))
        self.hint = QLabel()  # what Generate changes, to the pixel: set with the feather (_say_feather)
        self.hint.setObjectName("hintLabel")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        self.area_combo = QComboBox()
        for label, value in AREAS:
            self.area_combo.addItem(label, value)
        self.area_combo.setToolTip("Masked area: work on the mask's box at the model's own size (more "
                                   "detail), then scale back. Whole picture: redraw at the picture's size.")
        self.fill_combo = QComboBox()
        for fill in INPAINT_FILLS:
            self.fill_combo.addItem(FILL_LABELS[fill], fill)
        self.fill_combo.setToolTip("What the masked area starts from")
        self.padding_spin = QSpinBox()
        self.padding_spin.setRange(0, 1024)
        self.padding_spin.setSuffix(" px")
        self.padding_spin.setToolTip("Context around the mask that the model sees (masked area only)")
        self.feather_spin = QDoubleSpinBox()
        self.feather_spin.setRange(0, 256)
        self.feather_spin.setDecimals(0)
        self.feather_spin.setSuffix(" px")
        for index, (name, widget) in enumerate([("Area", self.area_combo), ("Masked content", self.fill_combo),
                                                 ("Padding", self.padding_spin), ("Feather", self.feather_spin)]):
            if isinstance(widget, QComboBox):  # as narrow as the panel: "Blurred surroundings" made it scroll
                widget.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                widget.setMinimumContentsLength(8)
            grid.addWidget(QLabel(name), index // 2 * 2, index % 2)
            grid.addWidget(widget, index // 2 * 2 + 1, index % 2)
        layout.addLayout(grid)
        self.area_combo.currentIndexChanged.connect(
            lambda: self.padding_spin.setEnabled(bool(self.area_combo.currentData())))
        self.area_combo.currentIndexChanged.connect(self.area_changed)
        self.padding_spin.valueChanged.connect(self.area_changed)
        self.feather_spin.valueChanged.connect(self._say_feather)
        self.set_options(InpaintOptions())
        self._say_feather()

    def _say_feather(self) -> None:
        """The hint and the Feather box say how far past the mask the new pixels blend in: at the default 8 px,
        "keeps the rest" alone was untrue (pixels 1 px outside a stroke changed by up to 86/255, 10 px out by a
        little)."""
        feather = float(self.feather_spin.value())
        reach = feather_reach(feather)
        if reach:
            self.hint.setText(f"Generate redraws the masked area and blends it up to {reach} px beyond the mask "
                              "(Feather); the rest is kept. Hide the mask (M) to generate the whole picture instead.")
            self.feather_spin.setToolTip(f"How softly the new pixels blend into the old at the mask's edge: at "
                                         f"{feather:.0f} px they blend up to {reach} px beyond the mask.")
        else:
            self.hint.setText("Generate redraws the masked area and keeps the rest (Feather 0: a hard edge). Hide "
                              "the mask (M) to generate the whole picture instead.")
            self.feather_spin.setToolTip("How softly the new pixels blend into the old at the mask's edge: at 0 px "
                                         "the edge is hard and nothing outside the mask changes.")

    def options(self) -> InpaintOptions:
        return InpaintOptions(masked_only=bool(self.area_combo.currentData()), padding=self.padding_spin.value(),
                              fill=self.fill_combo.currentData(), feather=float(self.feather_spin.value()))

    def set_options(self, options: InpaintOptions) -> None:
        self.area_combo.setCurrentIndex(0 if options.masked_only else 1)
        self.fill_combo.setCurrentIndex(max(0, self.fill_combo.findData(options.fill)))
        self.padding_spin.setValue(options.padding)
        self.feather_spin.setValue(options.feather)
