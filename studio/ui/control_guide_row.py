"""One ControlNet guide in the Control section, as a card: the ControlNet model, on/off and remove; the picture
(control_picture) with the preprocessor beside it; the weight, the steps it acts over and Canny's thresholds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.control import (
    CANNY,
    DEFAULT_HIGH,
    DEFAULT_LOW,
    DEPTH,
    MAX_WEIGHT,
    NONE,
    PREPROCESSORS,
    ControlGuide,
)
from studio.core.model_library import LibraryItem
from studio.core.outside_library import family_label, short_name
from studio.ui.buttons import tool_button
from studio.ui.control_picture import CanvasSource, ControlPicture
from studio.ui.depth_model import DepthModel, DepthOffer
from studio.ui.outside_entries import OutsideEntries
from studio.ui.tasks import Tasks
from studio.ui.theme import icon

ACTIVE = "Active"  # the row of the part of the steps a guide steers in
SWITCH_OFF = "Leave this guide out of the next jobs (it is kept, greyed)"
# Short: the descriptions are the tooltips.
LABELS = {NONE: "None", CANNY: "Canny edges", "invert": "Invert", DEPTH: "Depth (Depth Anything V2)"}


class GuideRow(QFrame):
    changed = Signal()
    remove_requested = Signal()

    def __init__(self, tasks: Tasks, canvas: Callable[[], CanvasSource | None],
                 keep_folder: Callable[[], Path | None], depth: DepthModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("controlGuide")
        self._tasks = tasks
        self._items: list[LibraryItem] = []
        self._family = ""  # the chosen checkpoint's family ("" unknown: every ControlNet fits)
        self.depth = depth  # the section's, shared by its cards
        self.picture = ControlPicture(tasks, self.guide, canvas, keep_folder, self.depth.annotator)
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)  # a long model name must not widen the panel
        # What a recipe's ControlNet path is (a checkpoint, a LoRA, nothing at all) is said on its entry and the card.
        self._outside = OutsideEntries(self.model_combo, "controlnet", tasks,
                                       lambda value: any(_value(i) == value for i in self._items), self._show_problem)
        self.model_combo.setToolTip("The ControlNet model: it must suit the picture (edges for a Canny model, "
                                    "lines for a lineart one…) and the checkpoint's family")
        # Not a checkable button: a checked one is filled with the accent colour, and on is every guide's usual state.
        self._enabled = True
        self.enabled_button = tool_button("eye", SWITCH_OFF)
        self.remove_button = tool_button("close", "Remove this guide")
        self.preprocessor_combo = QComboBox()
        # As narrow as the card: "Depth (Depth Anything V2)" at its full width made the panel scroll sideways.
        self.preprocessor_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preprocessor_combo.setMinimumContentsLength(10)
        self.preprocessor_combo.setToolTip("What is done to the picture first (A1111's preprocessor)")
        for index, (name, description) in enumerate(PREPROCESSORS.items()):
            self.preprocessor_combo.addItem(LABELS.get(name, name.title()), name)
            self.preprocessor_combo.setItemData(index, description, Qt.ItemDataRole.ToolTipRole)
        self.picture.extra.addWidget(self.preprocessor_combo)
        self.depth_offer = DepthOffer(self.depth)  # Depth chosen while its model is missing: the download
        self.picture.extra.addWidget(self.depth_offer)
        self.weight_slider = QSlider(Qt.Orientation.Horizontal)
        self.weight_slider.setRange(0, round(MAX_WEIGHT * 100))
        self.weight_spin = _spin(MAX_WEIGHT, "How strongly the guide steers: 1 as trained, 0 not at all")
        self.start_spin = _StepsPercentSpin("How far into the steps the guide starts to steer (0%: from the first)")
        self.end_spin = _StepsPercentSpin("How far into the steps it stops steering (below 100%: the last steps may "
                                          "stray from it, for freer details)")
        self.low_spin = _threshold_spin("Canny's low threshold: weaker edges than this are dropped")
        self.high_spin = _threshold_spin("Canny's high threshold: edges stronger than this are always kept; lower "
                                         "both for more edges")
        self._layout()
        self._wire()
        self.set_values(NONE, 1.0, 0.0, 1.0, DEFAULT_LOW, DEFAULT_HIGH)
        self._preprocessor_changed()

    def _layout(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        top = QHBoxLayout()
        top.setSpacing(2)
        top.addWidget(self.model_combo, 1)
        top.addWidget(self.enabled_button)
        top.addWidget(self.remove_button)
        layout.addLayout(top)
        layout.addWidget(self.picture)
        grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(4)
        for row, (name, first, second) in enumerate((("Weight", self.weight_slider, self.weight_spin),
                                                     (ACTIVE, self.start_spin, self.end_spin),
                                                     ("Canny", self.low_spin, self.high_spin))):
            label = QLabel(name)
            if name == ACTIVE:  # the spins hold parts of the steps, not a number of steps
                label.setToolTip("The part of the sampling steps in which the guide steers: 0% to 100% is all of them")
            grid.addWidget(label, row, 0)
            grid.addWidget(first, row, 1, 1, 2 if row == 0 else 1)
            if row:
                between = QLabel("to")
                between.setObjectName("hintLabel")
                grid.addWidget(between, row, 2, Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(second, row, 3)
        self.canny_fields = [grid.itemAtPosition(2, column).widget() for column in range(4)]
        self._fields = [grid.itemAt(index).widget() for index in range(grid.count())]
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        layout.addLayout(grid)

    def _wire(self) -> None:
        self.remove_button.clicked.connect(self.remove_requested)
        self.enabled_button.clicked.connect(lambda: self.set_enabled(not self._enabled))
        self.model_combo.activated.connect(self._model_chosen)
        self.model_combo.currentIndexChanged.connect(lambda *_: self._show_problem())
        self.weight_slider.valueChanged.connect(lambda v: self.weight_spin.setValue(v / 100))
        self.weight_spin.valueChanged.connect(lambda v: self.weight_slider.setValue(round(v * 100)))
        # Start before end, low at most high: each range follows the other, so the values are always a job's.
        self.start_spin.valueChanged.connect(lambda v: self.end_spin.setMinimum(min(1.0, v + 0.01)))
        self.end_spin.valueChanged.connect(lambda v: self.start_spin.setMaximum(max(0.0, v - 0.01)))
        self.low_spin.valueChanged.connect(self.high_spin.setMinimum)
        self.high_spin.valueChanged.connect(self.low_spin.setMaximum)
        self.preprocessor_combo.currentIndexChanged.connect(self._preprocessor_changed)
        self.depth.changed.connect(self._depth_changed)
        self.picture.preview_failed.connect(lambda text, made: self._tasks.run(self._preview_failed(text, made)))
        for spin in (self.low_spin, self.high_spin):
            spin.valueChanged.connect(lambda *_: self.picture.refresh_preview())
        for signal in (self.model_combo.currentIndexChanged, self.preprocessor_combo.currentIndexChanged,
                       self.weight_spin.valueChanged, self.start_spin.valueChanged, self.end_spin.valueChanged,
                       self.low_spin.valueChanged, self.high_spin.valueChanged, self.picture.changed):
            signal.connect(lambda *_: self.changed.emit())

    # -- models ----------------------------------------------------------------------------------------
    def set_models(self, items: list[LibraryItem], family: str) -> None:
        """The library's ControlNets: those for another family than the checkpoint's are listed greyed, with it
        named (one whose family is not known fits any: the job checks it); a chosen one missing from the library
        stays listed by its name."""
        current = self.model()
        self._items, self._family = items, family
        combo = self.model_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("Choose a ControlNet…", "")
        fitting = [i for i in items if not family or not i.family or i.family == family]
        for item in fitting + [i for i in items if i not in fitting]:
            fits = item in fitting
            combo.addItem(item.name if fits else f"{item.name}  ·  {family_label(item.family)}", _value(item))
            index = combo.count() - 1
            combo.setItemData(index, str(item.path) if fits else f"For {family_label(item.family)} models; the chosen "
                              f"model is {family_label(family)}", Qt.ItemDataRole.ToolTipRole)
            combo.model().item(index).setEnabled(fits)
        self.select_model(current)
        combo.blockSignals(False)
        self._show_problem()

    def select_model(self, value: str) -> None:
        """A ControlNet by name, file name or path; one not in the library is listed by its name."""
        combo = self.model_combo
        item = next((i for i in self._items if value in (_value(i), i.name, i.path.name, str(i.path))), None)
        index = combo.findData(_value(item) if item is not None else value) if value else 0
        combo.setCurrentIndex(self._outside.add(value) if index < 0 else index)

    def choose_first_model(self) -> None:
        """A new guide starts with the first ControlNet that fits the checkpoint, if there is one."""
        if self.model_combo.count() > 1 and self.model_combo.model().item(1).isEnabled():
            self.model_combo.setCurrentIndex(1)
            self._model_chosen(1)

    def model(self) -> str:
        return self.model_combo.currentData() or ""

    def model_family(self) -> str:
        """The chosen ControlNet's family; "" when it is not in the library."""
        return next((i.family for i in self._items if _value(i) == self.model()), "")

    def _model_chosen(self, index: int) -> None:
        # A Canny model wants Canny edges, as A1111's control types pair them; other choices are left alone.
        if "canny" in self.model_combo.itemText(index).lower() and self.preprocessor() == NONE:
            self.preprocessor_combo.setCurrentIndex(self.preprocessor_combo.findData(CANNY))

    # -- values ------------------------------------------------------------------------------------------
    def preprocessor(self) -> str:
        return self.preprocessor_combo.currentData() or NONE

    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, on: bool) -> None:
        """Off: the guide is kept (greyed) but left out of jobs, as an A1111 unit that is not enabled."""
        self._enabled = on
        self.enabled_button.setIcon(icon("eye" if on else "eye-off"))
        self.enabled_button.setToolTip(SWITCH_OFF if on else "Use this guide again")
        for widget in (self.model_combo, self.picture, *self._fields):
            widget.setEnabled(on)
        self.changed.emit()

    def guide(self) -> ControlGuide:
        return ControlGuide(model=self.model(), image=self.picture.image, preprocessor=self.preprocessor(),
                            weight=round(self.weight_spin.value(), 2), start=round(self.start_spin.value(), 2),
                            end=round(self.end_spin.value(), 2), low_threshold=self.low_spin.value(),
                            high_threshold=self.high_spin.value(), image_path=self.picture.path)

    def record(self) -> dict[str, Any]:
        """As the settings keep it: ControlGuide.to_record, and whether it is on."""
        return {**self.guide().to_record(), "enabled": self.enabled()}

    def set_values(self, preprocessor: str, weight: float, start: float, end: float, low: int, high: int) -> None:
        self.preprocessor_combo.setCurrentIndex(max(0, self.preprocessor_combo.findData(preprocessor)))
        self.weight_spin.setValue(weight)
        for first, second, a, b, gap, top in ((self.start_spin, self.end_spin, start, end, 0.01, 1.0),
                                              (self.low_spin, self.high_spin, low, high, 0, 255)):
            first.setMaximum(top)  # the ranges opened first: the new pair may lie beyond the old one's limits
            second.setMinimum(0)
            first.setValue(a)
            second.setValue(b)
            first.setMaximum(second.value() - gap)
            second.setMinimum(first.value() + gap)

    def set_record(self, record: dict[str, Any]) -> None:
        """A recorded guide (settings, a preset, a picture's recipe); its picture is read from its path. One with no
        ControlNet chosen yet shows "Choose a ControlNet…"."""
        guide = ControlGuide.from_record(record, unchosen_model=True)
        if guide is None:
            return
        self.select_model(guide.model)
        self.set_values(guide.preprocessor, guide.weight, guide.start, guide.end, guide.low_threshold,
                        guide.high_threshold)
        self.set_enabled(record.get("enabled", True) is not False)
        if guide.image_path:
            self.picture.use_file(Path(guide.image_path))

    def take_extended(self, extended: ControlGuide) -> None:
        """Its guide extended with the canvas picture (``extend_guide``): the picture its ControlNet saw, now taken
        as it is (no preprocessor); the weight and steps stay as the person has them."""
        image = extended.image
        if image is None:
            return
        self.preprocessor_combo.setCurrentIndex(max(0, self.preprocessor_combo.findData(extended.preprocessor)))
        self.picture.use_made_picture(image, f"Extended with the canvas, as the ControlNet saw it · "
                                             f"{image.width}×{image.height}")

    def restore(self, guide: ControlGuide, note: str) -> None:
        """The guide's picture before an extension with the canvas (undone), its file, and the preprocessor and
        thresholds it is seen with; the weight and steps stay as the person has them."""
        if guide.image is None:
            return
        self.set_values(guide.preprocessor, self.weight_spin.value(), self.start_spin.value(), self.end_spin.value(),
                        guide.low_threshold, guide.high_threshold)
        self.picture.show_picture(guide.image, guide.image_path, note)

    def problem(self, label: str) -> str | None:
        """Why a job cannot take this guide as it stands, in a sentence; None when it can."""
        if (problem := self.picture.problem(label)) is not None:
            return problem
        if self.preprocessor() == DEPTH and self.depth.known and self.depth.folder is None:
            return self.depth.missing(label)
        if not self.model():
            return f"{label} has no ControlNet model chosen; add one in the Model Library (Settings)."
        return self._mismatch(label)

    def _mismatch(self, label: str) -> str | None:
        if (outside := self._outside.found(self.model())) is not None and outside.problem:
            return outside.problem
        family = self.model_family()
        if self._family and family and family != self._family:
            return (f"{label}'s ControlNet {short_name(self.model())} is for {family_label(family)} models, and the "
                    f"chosen model is {family_label(self._family)}; choose one made for it.")
        return None

    def _show_problem(self) -> None:
        self.picture.other_problem = self._mismatch("This guide")
        self.picture.show_state()

    def _preprocessor_changed(self) -> None:
        for widget in self.canny_fields:
            widget.setVisible(self.preprocessor() == CANNY)
        self.depth_offer.set_wanted(self.preprocessor() == DEPTH)
        self.picture.refresh_preview(now=True)

    async def _preview_failed(self, sentence: str, made: int) -> None:
        """The depth model could not make the thumbnail: looked for again, the card offers it if it is gone (the
        offer says what is missing), else says why it could not be used (a broken model)."""
        if self.preprocessor() == DEPTH:
            await self.depth.recheck()
            if self.depth.folder is None:
                return
        self.picture.show_preview_problem(sentence, made)

    def _depth_changed(self) -> None:
        if self.preprocessor() == DEPTH and not self.depth.downloading:  # downloaded: the thumbnail becomes its map
            self.picture.refresh_preview(now=True)


def _value(item: LibraryItem) -> str:
    # One in the models folder's controlnet/ by its name (as recipes record it), one elsewhere by its path.
    return item.name if not item.linked and item.path.parent.name == "controlnet" else str(item.path)


def _spin(top: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(0, top)
    spin.setSingleStep(0.05)
    spin.setDecimals(2)
    spin.setToolTip(tip)
    return spin


class _StepsPercentSpin(QDoubleSpinBox):
    """A fraction of the steps (0 to 1, as the job takes it) shown as a percentage: "0.00 to 1.00" beside a
    "Steps" label read as a count of steps."""

    def __init__(self, tip: str) -> None:
        super().__init__()
        self.setRange(0, 1)
        self.setSingleStep(0.05)
        self.setDecimals(2)
        self.setToolTip(tip)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt's name)
        return f"{round(value * 100)}%"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        digits = text.replace("%", "").strip()
        return float(digits) / 100 if digits else 0.0

    def validate(self, text: str, pos: int) -> object:
        digits = text.replace("%", "").strip()
        if not digits:
            return QValidator.State.Intermediate, text, pos
        if not digits.isdigit():
            return QValidator.State.Invalid, text, pos
        inside = self.minimum() <= int(digits) / 100 <= self.maximum()
        return (QValidator.State.Acceptable if inside else QValidator.State.Intermediate), text, pos


def _threshold_spin(tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(0, 255)
    spin.setSingleStep(10)
    spin.setToolTip(tip)
    return spin
