"""Picture parameters in a plugin's form: where a picture can come from (the window's sources, a file, the picture
a step was set up with), the picker that chooses one, and reading the chosen files off the window's thread."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QToolButton, QWidget

from studio.core.errors import InvalidRequest
from studio.core.images import open_image
from studio.core.parameters import SOURCE_KEY, ImageParam, Param
from studio.ui.theme import WARNING, icon

# ("Canvas picture", a function giving it): a picture in memory, the file to read it from (read later, off the window's
# thread: a 4096² PNG took it 0.7 s to decode), or None when the source has none now.
ImageSource = tuple[str, Callable[[], Image.Image | Path | None]]
Picture = Image.Image | Path | None  # a picture parameter as chosen: read_pictures turns a Path into the picture
SOURCE = "source:"
KEPT = "kept:"  # the picture a step was set up with, offered again when it is edited
MISSING = "missing:"  # a file a step was set up with that is gone: shown, so it is replaced, never swapped silently


class ImagePicker(QWidget):
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
