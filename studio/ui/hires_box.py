"""The prompt panel's Hires fix section: make a new picture at the model's size, enlarge it, redraw it larger."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from studio.core.hires import (
    BUILT_IN_UPSCALERS,
    DEFAULT_SCALE,
    DEFAULT_STRENGTH,
    LANCZOS,
    MAX_SCALE,
    HiresFix,
    upscaler_or_lanczos,
)
from studio.core.model_library import KIND_FOLDERS, LibraryItem
from studio.core.requests import MAX_SIZE, MAX_STEPS
from studio.ui.generation_controls import section_layout, strength_controls
from studio.ui.theme import section_label

UPSCALERS = KIND_FOLDERS["upscaler"]
ENABLE_TIP = ("Make the picture at the size above, where the model composes well, then enlarge it and redraw it at "
              "the larger size to add detail (AUTOMATIC1111's Hires. fix)")
ONLY_NEW = "Hires fix enlarges new pictures; image to image and inpainting work at the canvas's size."


class HiresBox(QWidget):
    """On/off, the upscale factor (with the size it makes), the upscaler, and the second pass's steps and strength.
    The values are kept while it is off, as A1111 keeps them."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = section_layout(self)
        layout.addWidget(section_label("Hires fix"))
        self.enabled_check = QCheckBox("Enlarge and redraw")
        self.enabled_check.setToolTip(ENABLE_TIP)
        layout.addWidget(self.enabled_check)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setRange(1.05, MAX_SCALE)
        self.scale_spin.setSingleStep(0.25)
        self.scale_spin.setDecimals(2)
        self.scale_spin.setSuffix("×")
        self.scale_spin.setToolTip("How much larger the final picture is than the size above")
        self.size_label = QLabel()
        self.size_label.setObjectName("hintLabel")
        self.upscaler_combo = QComboBox()
        # an upscaler model's long file name is cut short in the box, not given room by widening the panel
        self.upscaler_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.upscaler_combo.setMinimumContentsLength(12)
        self.upscaler_combo.setToolTip("How the picture is enlarged before it is redrawn: Lanczos resampling, its "
                                       "latents (AUTOMATIC1111's Latent upscalers), or an upscaler model from the "
                                       "model library (sharper; needs spandrel)")
        self._add_built_in_upscalers()
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, MAX_STEPS)
        self.steps_spin.setSpecialValueText("Same")
        self.steps_spin.setToolTip("Steps of the second pass (Same: as many as the first); it runs steps × strength")
        self.strength_slider, self.strength_spin = strength_controls(
            "How much the second pass may redraw: low adds detail, high changes the picture")
        self._fields: list[QWidget] = []
        for row, (name, widget, extra) in enumerate((
                ("Upscale", self.scale_spin, self.size_label), ("Upscaler", self.upscaler_combo, None),
                ("Steps", self.steps_spin, None), ("Strength", self.strength_slider, self.strength_spin))):
            label = QLabel(name)
            grid.addWidget(label, row, 0)
            grid.addWidget(widget, row, 1, 1, 1 if extra is not None else 2)
            if extra is not None:
                grid.addWidget(extra, row, 2)
            self._fields += [label, widget] + ([extra] if extra is not None else [])
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        self._base = (512, 512)
        self._applies = True
        self._wanted = ""  # an upscaler asked for before the library was read (the saved settings at start)
        self.enabled_check.toggled.connect(self._update)
        self.scale_spin.valueChanged.connect(self._update)
        self.upscaler_combo.activated.connect(lambda *_: setattr(self, "_wanted", ""))  # the person chose
        for signal in (self.enabled_check.toggled, self.scale_spin.valueChanged, self.steps_spin.valueChanged,
                       self.strength_spin.valueChanged, self.upscaler_combo.currentIndexChanged):
            signal.connect(lambda *_: self.changed.emit())
        self.set_values(HiresFix(DEFAULT_SCALE, 0, DEFAULT_STRENGTH, LANCZOS), enabled=False)

    # -- what it applies to ------------------------------------------------------------------------
    def set_base_size(self, width: int, height: int) -> None:
        """The first pass's size (the Size fields): the label says what the hires fix makes of it."""
        self._base = (width, height)
        self._update()

    def set_applies(self, applies: bool) -> None:
        """Off for a job that starts from the canvas (image to image, inpainting): it would be left out."""
        self._applies = applies
        self.enabled_check.setToolTip(ENABLE_TIP if applies else ONLY_NEW)
        self._update()

    def set_library(self, items: list[LibraryItem]) -> None:
        """The library's upscaler models to pick from (a chosen one that went missing falls back to Lanczos)."""
        current = self._wanted or self.upscaler_combo.currentData()
        self.upscaler_combo.blockSignals(True)
        self.upscaler_combo.clear()
        self._add_built_in_upscalers()
        for item in items:
            if item.kind == "upscaler" and item.usable:
                # One in the models folder's upscalers/ by the name A1111 records (the engine looks there), another
                # (a linked folder's) by its path.
                by_name = not item.linked and item.path.parent.name == UPSCALERS
                self.upscaler_combo.addItem(item.name, item.name if by_name else str(item.path))
                self.upscaler_combo.setItemData(self.upscaler_combo.count() - 1, str(item.path),
                                                Qt.ItemDataRole.ToolTipRole)
        if self._select(current or LANCZOS):
            self._wanted = ""
        self.upscaler_combo.blockSignals(False)

    def _add_built_in_upscalers(self) -> None:
        for name in BUILT_IN_UPSCALERS:
            self.upscaler_combo.addItem(name, name)
        self.upscaler_combo.setItemData(0, "Enlarge the picture by Lanczos resampling", Qt.ItemDataRole.ToolTipRole)
        for index in range(1, len(BUILT_IN_UPSCALERS)):  # AUTOMATIC1111's: a strength of 0.5 or more suits them
            self.upscaler_combo.setItemData(index, "Enlarge the first picture's latents (as AUTOMATIC1111 does); "
                                                   "use a strength of 0.5 or more", Qt.ItemDataRole.ToolTipRole)

    # -- values ------------------------------------------------------------------------------------
    def hires(self) -> HiresFix | None:
        """The hires fix a new picture gets, or None when it is off (or does not apply)."""
        if not (self.enabled_check.isChecked() and self._applies):
            return None
        return self.values()

    def values(self) -> HiresFix:
        """The settings as shown, on or off."""
        return HiresFix(round(self.scale_spin.value(), 2), self.steps_spin.value(),
                        round(self.strength_spin.value(), 2), self.upscaler_combo.currentData() or LANCZOS)

    def saved_values(self) -> HiresFix:
        """What the window's defaults and presets keep: an upscaler missing from the library for now (a linked
        drive not plugged in) stays chosen, as LoRAs and the VAE do, instead of becoming Lanczos for good."""
        return replace(self.values(), upscaler=self._wanted or self.values().upscaler)

    def set_values(self, hires: HiresFix, enabled: bool = True) -> list[str]:
        """Every setting of ``hires``; a note for an upscaler Studio does not have (it takes Lanczos instead)."""
        self.enabled_check.setChecked(enabled)
        self.scale_spin.setValue(hires.scale)
        self.steps_spin.setValue(hires.steps)
        self.strength_spin.setValue(hires.strength)
        if self._select(hires.upscaler):
            self._wanted = ""
            return []
        self._wanted = hires.upscaler
        return [note for note in (self._fallback(hires.upscaler),) if note]

    def _select(self, upscaler: str) -> bool:
        combo = self.upscaler_combo
        for i in range(combo.count()):
            if upscaler == combo.itemData(i) or upscaler.casefold() == combo.itemText(i).casefold():
                combo.setCurrentIndex(i)
                return True
        combo.setCurrentIndex(0)
        return False

    def _fallback(self, upscaler: str) -> str | None:
        first_model = len(BUILT_IN_UPSCALERS)
        names = [self.upscaler_combo.itemText(i) for i in range(first_model, self.upscaler_combo.count())]
        return upscaler_or_lanczos(upscaler, names)[1]

    def _update(self) -> None:
        on = self.enabled_check.isChecked() and self._applies
        self.enabled_check.setEnabled(self._applies)
        for widget in self._fields:
            widget.setEnabled(on)
        width, height = HiresFix(self.scale_spin.value()).size(*self._base)
        too_big = max(width, height) > MAX_SIZE
        self.size_label.setText(f"{width} × {height}")
        self.size_label.setToolTip(f"Studio makes at most {MAX_SIZE} pixels a side" if too_big else
                                   "The final picture's size")
        self.size_label.setProperty("error", too_big)
        self.size_label.style().polish(self.size_label)
