"""The prompt panel's setting sections below the prompts: size, sampling and seed, image to image."""

from __future__ import annotations

import re
import unicodedata

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFocusEvent, QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.requests import (
    MAX_BATCH_COUNT,
    MAX_CFG,
    MAX_SEED,
    MAX_SIZE,
    MAX_STEPS,
    MIN_SIZE,
    SCHEDULER_NAMES,
    SIZE_MULTIPLE,
)
from studio.ui.buttons import tool_button
from studio.ui.theme import error_label, section_label

SIZE_PRESETS = [
    ("512 × 512", 512, 512), ("512 × 768", 512, 768), ("768 × 512", 768, 512), ("768 × 768", 768, 768),
    ("1024 × 1024", 1024, 1024), ("832 × 1216", 832, 1216), ("1216 × 832", 1216, 832),
    ("896 × 1152", 896, 1152), ("1152 × 896", 1152, 896),
]


def section_layout(widget: QWidget) -> QVBoxLayout:
    # No margins and the panel's spacing: a section lays out exactly as its rows did in the panel itself.
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(6)
    return layout


def strength_controls(tip: str) -> tuple[QSlider, QDoubleSpinBox]:
    """A denoising strength as a slider and a spin box that follow each other (0.01 to 1)."""
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(1, 100)
    spin = QDoubleSpinBox()
    spin.setRange(0.01, 1.0)
    spin.setSingleStep(0.05)
    spin.setDecimals(2)
    spin.setToolTip(tip)
    slider.valueChanged.connect(lambda v: spin.setValue(v / 100))
    spin.valueChanged.connect(lambda v: slider.setValue(round(v * 100)))
    return slider, spin


class SizeBox(QWidget):
    """Width and height, a swap button and a menu of common sizes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = section_layout(self)
        layout.addWidget(section_label("Size"))
        row = QHBoxLayout()
        self.width_spin = self._size_spin("Width in pixels (a multiple of 8)")
        self.height_spin = self._size_spin("Height in pixels (a multiple of 8)")
        self.swap_button = tool_button("swap", "Swap width and height")
        # A button with a menu, not a drop-down: the drop-down's "1024 × 1024" made the panel need 447 px, which
        # a small window took from the canvas.
        self.presets = tool_button("chevron-down", "Common sizes")
        self.presets.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.presets.setProperty("menuIcon", True)  # its icon is the chevron: no second one (style.qss)
        self.presets.setMenu(QMenu(self.presets))
        for label, w, h in SIZE_PRESETS:
            self.presets.menu().addAction(label, lambda w=w, h=h: self.set_size(w, h))
        row.addWidget(self.width_spin, 1)
        row.addWidget(self.swap_button)
        row.addWidget(self.height_spin, 1)
        row.addWidget(self.presets)
        layout.addLayout(row)
        self.swap_button.clicked.connect(self._swap)

    @staticmethod
    def _size_spin(tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(MIN_SIZE, MAX_SIZE)
        spin.setSingleStep(SIZE_MULTIPLE)
        spin.setSuffix(" px")
        spin.setToolTip(tip)
        spin.setMinimumWidth(96)  # "4096 px" fits; its own hint (111 px) made the panel wider than its dock
        return spin

    def set_size(self, width: int, height: int) -> None:
        self.width_spin.setValue(width)
        self.height_spin.setValue(height)

    def _swap(self) -> None:
        self.set_size(self.height_spin.value(), self.width_spin.value())


# A seed as written in a picture's parameters ("Seed: 42, Size: 512x512", "seed=77"): the number after "seed".
_SEED_FIELD = re.compile(r"\bseed\s*[:=]\s*(-?\d{1,3}(?:,\d{3})+(?!\d)|-?\d+)", re.IGNORECASE)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")  # "1,234": a seed as a spreadsheet or a web page shows it
MAX_SEED_DIGITS = len(str(MAX_SEED))
RANDOM_SEED_NOTE = "Seed -1 means a random seed: the box is cleared, so each job gets a new random seed."


# What typing goes through on its way to a seed: "S", "Se", "Seed", "Seed:", "seed = -", "-", "1," (to "1,234").
_SEED_IN_THE_MAKING = re.compile(r"(?i)s(?:e(?:e(?:d\s*(?:[:=]\s*-?)?)?)?)?|-|\d{1,3}(?:,\d{3})*,\d{0,2}")


def seed_in_the_making(text: str) -> bool:
    """Whether the text is no seed yet but more typing can make one ("Se" of "Seed: 42"): it is refused only when
    the person leaves the box or generates, not after each letter."""
    plain = unicodedata.normalize("NFKC", text).strip()
    return _SEED_IN_THE_MAKING.fullmatch(plain) is not None


def read_seed(text: str) -> tuple[str, str]:
    """The seed box's text for a typed or pasted text, and a sentence: what was done (RANDOM_SEED_NOTE), or, with
    "" for the text, why it holds no seed. "-" is a seed in the making (-1). Never converts the text to an int: Python
    refuses more than 4300 digits, and inside Qt's validator that killed Studio."""
    plain = unicodedata.normalize("NFKC", text).strip()  # full-width "４２" is 42
    field = _SEED_FIELD.search(plain)
    if field is not None:
        plain = field.group(1)
    if _THOUSANDS.fullmatch(plain):
        plain = plain.replace(",", "")
    if plain in ("-", "-1"):
        return ("-" if plain == "-" else ""), ("" if plain == "-" else RANDOM_SEED_NOTE)
    if plain == "" or (plain.isascii() and plain.isdigit()):
        return plain, ""
    return "", _not_a_seed(text)


def _not_a_seed(text: str) -> str:
    return (f"{_quoted(text)} is not a seed: a seed is a whole number from 0 to {MAX_SEED} (empty or -1 for a "
            "random one).")


def _quoted(text: str) -> str:
    one_line = " ".join(text.split())
    return f"\u201c{one_line[:40]}\u2026\u201d" if len(one_line) > 40 else f"\u201c{one_line}\u201d"


def seed_too_large(digits: str) -> bool:
    """Whether ASCII digits are more than MAX_SEED, by their length first (no conversion of a long text)."""
    digits = digits.lstrip("0")
    return len(digits) > MAX_SEED_DIGITS or (len(digits) == MAX_SEED_DIGITS and int(digits) > MAX_SEED)


class SeedValidator(QValidator):
    """A seed as typed or pasted: digits, taken out of "Seed: 42, Size: ...", "1,234" or full-width digits; "-1"
    clears the box (random). A seed above MAX_SEED (ComfyUI's are up to 2**64 - 1) stays in the box as written,
    Intermediate, for the box to refuse in words. Text that holds no seed is kept out, and `refused` says why:
    keeping the old seed without a word looked as if the paste had worked."""

    refused = Signal(str)  # why a text was kept out of the box
    noted = Signal(str)  # what was done with a text that was changed on its way in ("-1": cleared, random)

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:  # noqa: D102
        # An exception escaping a Qt virtual override aborts the process: none may leave this method.
        try:
            if seed_in_the_making(text):  # kept as typed, and said only when the person leaves it so
                return QValidator.State.Intermediate, text, pos
            seed, why = read_seed(text)
            if seed == "" and why and why != RANDOM_SEED_NOTE:
                self.refused.emit(why)
                return QValidator.State.Invalid, text, pos
            if why:
                self.noted.emit(why)
            state = (QValidator.State.Intermediate if seed == "-" or (seed and seed_too_large(seed))
                     else QValidator.State.Acceptable)
            return state, seed, min(pos, len(seed))
        except Exception:  # noqa: BLE001 - see above; the box keeps its text
            return QValidator.State.Invalid, text, pos


def seed_refusal(text: str) -> str:
    """Why the seed box's text cannot be a seed, in a sentence; "" when it can."""
    digits = text.strip()
    if digits == "-":
        return f"A seed is a whole number from 0 to {MAX_SEED}: type -1 or clear the box for a random one."
    if not (digits.isascii() and digits.isdigit()):  # "Seed:" left half typed; set in code past the validator
        return _not_a_seed(text) if digits else ""
    if seed_too_large(digits):
        shown = digits if len(digits) <= 40 else f"{digits[:20]}\u2026 ({len(digits)} digits)"
        return (f"Seed {shown} is more than {MAX_SEED}, the largest seed Studio takes, so Generate refuses it: "
                "enter a smaller seed, or clear the box for a random one.")
    return ""


class SeedEdit(QLineEdit):
    """The seed box; says when the person leaves it, where a seed half typed ("Seed:") is refused."""

    left = Signal()

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt's name
        super().focusOutEvent(event)
        if event.reason() != Qt.FocusReason.PopupFocusReason:  # its own context menu is no leaving
            self.left.emit()


class SamplingBox(QWidget):
    """Sampler, steps, CFG scale, image count and seed; a plugin generator uses only the count and the seed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = section_layout(self)
        self.title = section_label("Sampling")
        layout.addWidget(self.title)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        self.scheduler_combo = QComboBox()
        self.scheduler_combo.addItems(SCHEDULER_NAMES)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, MAX_STEPS)
        self.cfg_spin = QDoubleSpinBox()
        self.cfg_spin.setRange(0.0, MAX_CFG)
        self.cfg_spin.setSingleStep(0.5)
        self.cfg_spin.setDecimals(1)
        self.cfg_spin.setToolTip("How strongly the picture follows the prompt (CFG scale)")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, MAX_BATCH_COUNT)
        self.batch_spin.setToolTip("How many images to make, one after another, with consecutive seeds")
        self._diffusers_only: list[QWidget] = [self.scheduler_combo, self.steps_spin, self.cfg_spin]
        for r, (name, widget) in enumerate([("Sampler", self.scheduler_combo), ("Steps", self.steps_spin),
                                            ("CFG scale", self.cfg_spin), ("Images", self.batch_spin)]):
            label = QLabel(name)
            if widget is not self.batch_spin:
                self._diffusers_only.append(label)
            grid.addWidget(label, r // 2 * 2, r % 2)
            grid.addWidget(widget, r // 2 * 2 + 1, r % 2)
        layout.addLayout(grid)
        seed_row = QHBoxLayout()
        self.seed_edit = SeedEdit()
        self.seed_edit.setPlaceholderText("Random")
        self.seed_validator = SeedValidator(self.seed_edit)
        self.seed_edit.setValidator(self.seed_validator)
        self.seed_edit.setToolTip("Seed: the same seed and settings make the same picture. Empty = random.")
        self.random_seed_button = tool_button("dice", "Random seed for every job")
        self.reuse_seed_button = tool_button("reuse", "Reuse the seed of the last picture")
        self.reuse_seed_button.setEnabled(False)
        seed_row.addWidget(QLabel("Seed"))
        seed_row.addWidget(self.seed_edit, 1)
        seed_row.addWidget(self.random_seed_button)
        seed_row.addWidget(self.reuse_seed_button)
        layout.addLayout(seed_row)
        self.seed_error = error_label(self)  # a seed too large for Studio, said as it is pasted or typed
        layout.addWidget(self.seed_error)
        self.seed_edit.textChanged.connect(self._check_seed)
        self.seed_edit.left.connect(self._refuse_unfinished_seed)
        self.seed_validator.refused.connect(self._show_seed_error)
        self.seed_validator.noted.connect(self._say)
        self._last_seed: int | None = None
        self.random_seed_button.clicked.connect(self.seed_edit.clear)
        self.reuse_seed_button.clicked.connect(self._reuse_seed)

    def set_plugin_mode(self, plugin: bool) -> None:
        """A plugin generator has no sampler, steps or CFG: hide them and call the section Output."""
        for widget in self._diffusers_only:
            widget.setVisible(not plugin)
        self.title.setText("OUTPUT" if plugin else "SAMPLING")

    def remember_seed(self, seed: int) -> None:
        self._last_seed = seed
        self.reuse_seed_button.setEnabled(True)
        self.reuse_seed_button.setToolTip(f"Reuse seed {seed} of the last picture")

    def _check_seed(self, text: str) -> None:
        refusal = "" if seed_in_the_making(text) else seed_refusal(text)
        self.seed_error.setText(refusal)
        self.seed_error.setVisible(bool(refusal))
        bar = self.window().statusBar() if isinstance(self.window(), QMainWindow) else None
        if text and hasattr(bar, "withdraw_message"):  # a seed since: "-1 means random" no longer says the box
            bar.withdraw_message(RANDOM_SEED_NOTE)

    def _refuse_unfinished_seed(self) -> None:
        if refusal := seed_refusal(self.seed_edit.text()):
            self._show_seed_error(refusal)

    def _show_seed_error(self, text: str) -> None:
        self.seed_error.setText(text)
        self.seed_error.setVisible(True)

    def _say(self, text: str) -> None:
        """A note on the window's status line ("-1 means random"): under the box it would go with the text change."""
        window = self.window()
        bar = window.statusBar() if isinstance(window, QMainWindow) else None
        if bar is not None and hasattr(bar, "set_message"):
            bar.set_message(text)
        elif bar is not None:
            bar.showMessage(text)

    def _reuse_seed(self) -> None:
        if self._last_seed is not None:
            self.seed_edit.setText(str(self._last_seed))


class Img2ImgBox(QWidget):
    """The "Use canvas as input" check and the strength of the redraw, which inpainting uses as well."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = section_layout(self)
        layout.addWidget(section_label("Image to image"))
        self.use_canvas_check = QCheckBox("Use canvas as input")
        self.use_canvas_check.setToolTip("Start from the picture on the canvas instead of noise")
        layout.addWidget(self.use_canvas_check)
        strength_row = QHBoxLayout()
        self.strength_label = QLabel("Strength")
        self.strength_slider, self.strength_spin = strength_controls(
            "How much the picture may change: low keeps it close, 1 redraws it")
        strength_row.addWidget(self.strength_label)
        strength_row.addWidget(self.strength_slider, 1)
        strength_row.addWidget(self.strength_spin)
        layout.addLayout(strength_row)
        self._mask_active = False
        self.use_canvas_check.toggled.connect(self._update_enabled)
        self._update_enabled()

    def set_strength(self, strength: float) -> None:
        self.strength_spin.setValue(strength)
        self.strength_slider.setValue(round(strength * 100))

    def set_mask_active(self, active: bool) -> None:
        """Inpainting redraws with the strength too, so a mask enables it without the check."""
        self._mask_active = active
        self._update_enabled()

    def _update_enabled(self) -> None:
        on = self.use_canvas_check.isChecked() or self._mask_active
        for widget in (self.strength_label, self.strength_slider, self.strength_spin):
            widget.setEnabled(on)
