"""A form built from a plugin's declared parameters: one labelled editor per parameter."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from studio.core.errors import InvalidRequest
from studio.core.images import open_image
from studio.core.parameters import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    MAX_SEED,
    SOURCE_KEY,
    ImageParam,
    IntParam,
    Param,
    SeedParam,
    TextParam,
)
from studio.ui.theme import WARNING, icon

# ("Canvas picture", a function giving it): a picture in memory, the file to read it from (read later, off the window's
# thread: a 4096² PNG took it 0.7 s to decode), or None when the source has none now.
ImageSource = tuple[str, Callable[[], Image.Image | Path | None]]
Picture = Image.Image | Path | None  # a picture parameter as chosen: read_pictures turns a Path into the picture
SOURCE = "source:"
KEPT = "kept:"  # the picture a step was set up with, offered again when it is edited
MISSING = "missing:"  # a file a step was set up with that is gone: shown, so it is replaced, never swapped silently


class _SeedValidator(QValidator):
    """Digits up to MAX_SEED (ten digits let 9999999999 in, which no job takes), or nothing for a random seed."""

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:  # noqa: D102
        # By length first: int() of over 4300 digits raises, and an exception here aborts the process.
        fits = text == "" or (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_SEED))
                              and int(text) <= MAX_SEED)
        return (QValidator.State.Acceptable if fits else QValidator.State.Invalid), text, pos


class _ImagePicker(QWidget):
    """A picture from one of the window's sources (the canvas, the gallery's selection), or a file."""

    def __init__(self, optional: bool, sources: Sequence[ImageSource]) -> None:
        super().__init__()
        self._sources = dict(sources)
        self._path: Path | None = None
        self._kept: Image.Image | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        if optional:
            self.combo.addItem("None", None)
        for label, _ in sources:
            self.combo.addItem(label, SOURCE + label)
        self.browse = QToolButton()
        self.browse.setIcon(icon("folder"))
        self.browse.setToolTip("Use a picture file…")
        self.browse.setAutoRaise(True)
        self.browse.clicked.connect(self._choose)
        row.addWidget(self.combo, 1)
        row.addWidget(self.browse)

    def _choose(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Choose a Picture", "", "Pictures (*.png *.jpg *.jpeg *.webp)")
        if name:
            self.set_path(Path(name))

    def set_path(self, path: Path) -> None:
        self._path = path
        index = self.combo.findData(str(path))
        if index < 0:
            self.combo.addItem(path.name, str(path))
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)

    def set_missing(self, path: str) -> None:
        """Show (and select) a file the step was set up with that is gone: the person must choose another; the
        picker never falls back on the canvas picture without a word."""
        index = self.combo.findData(MISSING + path)
        if index < 0:
            self.combo.addItem(icon("alert", WARNING), f"Missing: {Path(path).name} (choose another)", MISSING + path)
            index = self.combo.count() - 1
        self.combo.setItemData(index, f"{path} is gone; choose another picture.", Qt.ItemDataRole.ToolTipRole)
        self.combo.setCurrentIndex(index)

    def problem(self) -> str | None:
        """What is wrong with the choice as it stands, if anything (a file that is gone)."""
        choice = self.combo.currentData()
        if isinstance(choice, str) and choice.startswith(MISSING):
            return f"The picture {choice[len(MISSING):]} is gone; choose another."
        return None

    def set_picture(self, picture: Image.Image) -> None:
        """Offer (and select) a picture chosen before, as it was: editing a chain step keeps its reference."""
        self._kept = picture
        index = self.combo.findData(KEPT)
        if index < 0:
            self.combo.addItem(f"The picture chosen before ({picture.width}×{picture.height})", KEPT)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)

    def choice(self) -> Picture:
        """The picture chosen, without reading a file: InvalidRequest (a sentence) when there is none to take."""
        choice = self.combo.currentData()
        if choice is None:
            return None
        if choice == KEPT:
            return self._kept
        if (problem := self.problem()) is not None:
            raise InvalidRequest(problem)
        picture = self._sources[choice[len(SOURCE):]]() if choice.startswith(SOURCE) else Path(choice)
        if picture is None:
            raise InvalidRequest(f"There is no {choice[len(SOURCE):].lower()} to use; pick another picture.")
        if isinstance(picture, Path) and not picture.is_file():  # said now, as reading it would have
            raise InvalidRequest(f"The image {picture} does not exist.")
        return picture


class _TextChoice(QComboBox):
    """A text parameter chosen from what is installed (an upscaler file), never typed: a name typed wrong, or none,
    let a chain step in that failed after every generation."""

    def __init__(self, title: str, choices: Sequence[tuple[str, str]], missing: str) -> None:
        super().__init__()
        self.title = title
        self.missing = missing  # the sentence when there is nothing to choose
        for label, value in choices:
            self.addItem(label, value)
            self.setItemData(self.count() - 1, value, Qt.ItemDataRole.ToolTipRole)
        if not choices:
            self.addItem("None installed", "")
        self.setEnabled(bool(choices))

    def select(self, value: str) -> None:
        index = self.findData(value)
        if index < 0 and value:  # chosen before and gone since: shown, so it is replaced, never swapped silently
            self.addItem(icon("alert", WARNING), f"Missing: {Path(value).name}", value)
            index = self.count() - 1
            self.setEnabled(True)
        if index >= 0:
            self.setCurrentIndex(index)

    def problem(self) -> str | None:
        value = self.currentData()
        if not value:
            return self.missing
        if self.itemText(self.currentIndex()).startswith("Missing: "):
            return f"{self.title}: {value} is no longer installed; choose another."
        return None


class ParameterForm(QWidget):
    """Editors for a schema; ``values()`` gives what the person set, ``set_values`` restores it."""

    changed = Signal()

    def __init__(self, params: Sequence[Param], image_sources: Sequence[ImageSource] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.params = tuple(params)
        self._editors: dict[str, QWidget] = {}
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for param in self.params:
            editor = self._editor(param, image_sources)
            editor.setObjectName(f"param-{param.name}")
            if param.help:
                editor.setToolTip(param.help)
            self._editors[param.name] = editor
            if isinstance(param, BoolParam):
                layout.addRow(editor)
            else:
                label = QLabel(param.title)
                label.setToolTip(param.help)
                layout.addRow(label, editor)
        if not self.params:
            layout.addRow(QLabel("No settings."))

    def _editor(self, param: Param, image_sources: Sequence[ImageSource]) -> QWidget:
        if isinstance(param, IntParam | FloatParam):
            spin = QSpinBox() if isinstance(param, IntParam) else QDoubleSpinBox()
            if isinstance(param, FloatParam):
                # Before the range, which it rounds: enough places for the bounds, default and step too
                # (min = 0.001 with 2 places showed 0.00, and Generate was refused for it).
                spin.setDecimals(max(param.decimals, *(_places(v) for v in (param.min, param.max, param.default,
                                                                          param.step))))
            spin.setRange(param.min, param.max)
            spin.setSingleStep(param.step)
            spin.setValue(param.default)
            spin.valueChanged.connect(self.changed)
            return spin
        if isinstance(param, ChoiceParam):
            combo = QComboBox()
            combo.addItems(list(param.choices))
            combo.setCurrentText(param.default_value)
            combo.currentIndexChanged.connect(self.changed)
            return combo
        if isinstance(param, BoolParam):
            check = QCheckBox(param.title)
            check.setChecked(param.default)
            check.toggled.connect(self.changed)
            return check
        if isinstance(param, SeedParam):
            edit = QLineEdit("" if param.default < 0 else str(param.default))
            edit.setPlaceholderText("Random")
            edit.setValidator(_SeedValidator(edit))
            edit.textChanged.connect(self.changed)
            return edit
        if isinstance(param, ImageParam):
            return _ImagePicker(param.optional, image_sources)
        assert isinstance(param, TextParam)
        if param.multiline:
            text = QPlainTextEdit(param.default)
            text.setFixedHeight(64)
            text.textChanged.connect(self.changed)
            return text
        line = QLineEdit(param.default)
        line.setMaxLength(param.max_length)
        line.textChanged.connect(self.changed)
        return line

    def values(self) -> dict[str, Any]:
        """What the person set, pictures read; InvalidRequest (one sentence) if a picture file cannot be read."""
        return read_pictures(self.params, self.choices())

    def choices(self) -> dict[str, Any]:
        """What the person set, with a picture file as its Path, unread (read_pictures reads it, off this thread);
        InvalidRequest (one sentence) if a picture parameter has none to take (no canvas picture, a file gone)."""
        return {param.name: self._value(param) for param in self.params}

    def storable_values(self) -> dict[str, Any]:
        """The values worth remembering in settings (pictures are not)."""
        return {p.name: self._value(p) for p in self.params if not isinstance(p, ImageParam)}

    def _value(self, param: Param) -> Any:
        editor = self._editors[param.name]
        if isinstance(editor, QSpinBox | QDoubleSpinBox):
            return editor.value()
        if isinstance(editor, _TextChoice):
            if (problem := editor.problem()) is not None:
                raise InvalidRequest(problem)
            return editor.currentData()
        if isinstance(editor, QComboBox):
            return editor.currentText()
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, _ImagePicker):
            try:
                return editor.choice()
            except Exception as exc:  # noqa: BLE001 - a picture file that went away or is broken
                raise InvalidRequest(f"{param.title}: {exc}") from None
        if isinstance(editor, QPlainTextEdit):
            return editor.toPlainText()
        if isinstance(param, SeedParam):
            text = editor.text().strip()
            return int(text) if text else -1
        return editor.text()

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Restore remembered values; ones that no longer fit the schema are skipped."""
        for param in self.params:
            if param.name not in values:
                continue
            if isinstance(param, ImageParam):
                picker, value = self._editors[param.name], values[param.name]
                if isinstance(value, Path):  # chosen in a form before, not read yet
                    value = str(value)
                if isinstance(value, Image.Image):
                    picker.set_picture(value)
                elif isinstance(value, str) and value and Path(value).is_file():
                    picker.set_path(Path(value))
                elif isinstance(value, str) and value:  # a reference deleted since: shown as such
                    picker.set_missing(value)
                continue
            try:
                value = param.check(values[param.name], "saved value")
            except InvalidRequest:
                continue
            editor = self._editors[param.name]
            if isinstance(editor, QSpinBox | QDoubleSpinBox):
                editor.setValue(value)
            elif isinstance(editor, _TextChoice):
                editor.select(value)
            elif isinstance(editor, QComboBox):
                editor.setCurrentText(value)
            elif isinstance(editor, QCheckBox):
                editor.setChecked(value)
            elif isinstance(editor, QPlainTextEdit):
                editor.setPlainText(value)
            elif isinstance(param, SeedParam):
                editor.setText("" if value < 0 else str(value))
            elif isinstance(editor, QLineEdit):
                editor.setText(value)

    def problems(self) -> list[str]:
        """Sentences for the settings that must be changed before the form can be taken (a picture gone)."""
        pickers = [(p, e) for p in self.params if isinstance(e := self._editors[p.name], _ImagePicker)]
        choices = [e for p in self.params if isinstance(e := self._editors[p.name], _TextChoice)]
        return [f"{p.title}: {problem}" for p, picker in pickers if (problem := picker.problem()) is not None] + [
            problem for choice in choices if (problem := choice.problem()) is not None]

    def editor(self, name: str) -> QWidget:
        return self._editors[name]

    def offer_choices(self, name: str, choices: Sequence[tuple[str, str]], missing: str) -> None:
        """Make a text parameter a pick from ``choices`` ((label, value) pairs; the first is taken when the value was
        empty); ``missing`` is the sentence the form refuses with when there is none."""
        param = next(p for p in self.params if p.name == name)
        old = self._editors[name]
        current = old.text() if isinstance(old, QLineEdit) else ""
        combo = _TextChoice(param.title, choices, missing)
        combo.setObjectName(old.objectName())
        combo.setToolTip(old.toolTip())
        combo.select(current)
        combo.currentIndexChanged.connect(self.changed)
        self.layout().replaceWidget(old, combo)
        old.deleteLater()
        self._editors[name] = combo

    def describe_value(self, name: str, text: str) -> None:
        """Show ``text`` in a number's box at its minimum, where the minimum means something of its own (an
        upscaler's "Final scale" of 0 keeps the model's scale; "0.00" read as "nothing")."""
        spin = self._editors[name]
        assert isinstance(spin, QSpinBox | QDoubleSpinBox)
        spin.setSpecialValueText(text)


def read_pictures(params: Sequence[Param], choices: Mapping[str, Any]) -> dict[str, Any]:
    """ParameterForm.choices with every picture file read; InvalidRequest names the parameter of one that cannot be.
    Touches no widget, so it may run in a worker thread."""
    titles = {p.name: p.title for p in params if isinstance(p, ImageParam)}
    values = dict(choices)
    for name, value in values.items():
        if name in titles and isinstance(value, Path):
            try:
                values[name] = open_image(value)
            except Exception as exc:  # noqa: BLE001 - a picture file that went away or is broken
                raise InvalidRequest(f"{titles[name]}: {exc}") from None
            # Where it was read from: a copy the history kept (Load parameters) is named again, not kept again.
            values[name].info[SOURCE_KEY] = str(value.expanduser().resolve())
    return values


def _places(value: float) -> int:
    """Decimal places a number needs to be shown exactly (at most 6)."""
    text = f"{value:.6f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0
