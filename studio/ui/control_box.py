"""The prompt panel's Control section: up to MAX_GUIDES ControlNet guides (control_guide_row), each a picture that
steers the composition of the next pictures, as AUTOMATIC1111's ControlNet units and krita-ai-diffusion's control
layers do."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from studio.core.control import MAX_GUIDES, ControlGuide, extend_guide, guide_label
from studio.core.errors import InvalidRequest
from studio.core.inpaint import InpaintOptions, inpaint_area
from studio.core.model_kind import NATIVE_SIDES
from studio.core.model_library import LibraryItem
from studio.ui.control_guide_row import GuideRow
from studio.ui.control_picture import CanvasSource
from studio.ui.depth_model import DepthModel
from studio.ui.guide_extensions import GuideExtensions
from studio.ui.generation_controls import section_layout
from studio.ui.parameter_pictures import ImageSource
from studio.ui.tasks import Tasks
from studio.ui.theme import icon, section_label

Inpainting = tuple[np.ndarray, InpaintOptions]  # an inpainting job's mask (as the canvas has it) and options
Fitting = tuple[tuple[int, int], tuple[int, int] | None, tuple[int, int, int, int] | None]
CANVAS = "Canvas picture"  # the image source "From canvas" takes (see PluginActions.image_sources)
NO_CONTROLNETS = "No ControlNets in the library yet (Settings → Model Library…)"
ABOUT = "Steer the composition with a picture: its edges, a sketch, a depth map or a pose."
ADD_TIP = (f"Add a guide: a picture whose edges, lines, depth or pose the new picture follows (at most {MAX_GUIDES}; "
           "each one slows every step down)")


class ControlBox(QWidget):
    changed = Signal()

    def __init__(self, image_sources: Callable[[], list[ImageSource]] = list, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks = Tasks()
        self.depth = DepthModel(self._tasks, self)  # the depth model, shared by the guides' cards
        self._controlnets: list[LibraryItem] = []
        self._families: dict[str, str] = {}  # checkpoint path -> family, from the library
        self._model = ""  # the chosen checkpoint
        self._job: tuple[int, int, tuple[int, int] | None, Inpainting | None] = (512, 512, None, None)  # set_size's
        self._fitting: Fitting = ((512, 512), None, None)  # the rows' job size, start size and box
        self._generator = ""  # a plugin generator's title while one is chosen: the guides do not apply
        self.rows: list[GuideRow] = []
        self._held: set[str] | None = None  # within updates_held(): what to do at its end ("models", "fit")
        self.extensions = GuideExtensions(self._tasks, self._canvas_now, self._extend_guide)
        self._image_sources = image_sources  # the window's: "Canvas" takes the picture from its "Canvas picture"
        self.keep_folder: Path | None = None  # where canvas pictures are kept (set by the window)
        layout = section_layout(self)
        header = QHBoxLayout()
        header.addWidget(section_label("Control"))
        header.addStretch(1)
        self.add_button = QToolButton()
        self.add_button.setIcon(icon("add"))
        self.add_button.setText("Add control guide")
        self.add_button.setToolButtonStyle(self.add_button.toolButtonStyle().ToolButtonTextBesideIcon)
        self.add_button.clicked.connect(self._add_clicked)
        header.addWidget(self.add_button)
        layout.addLayout(header)
        self.hint = QLabel()
        self.hint.setObjectName("hintLabel")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self.guides_widget = QWidget()  # greyed as a whole while a plugin generator is chosen
        self.rows_layout = QVBoxLayout(self.guides_widget)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(8)
        layout.addWidget(self.guides_widget)
        self._update()

    # -- what it applies to -------------------------------------------------------------------------
    def set_library(self, items: list[LibraryItem], models_dir: Path | None = None) -> None:
        """The library's ControlNets to pick from, and its checkpoints' families (to list fitting ones first); the
        models folder's depth model is looked for again."""
        if models_dir is not None:
            self.depth.set_models_dir(models_dir)
        self._controlnets = [i for i in items if i.kind == "controlnet" and i.usable]
        self._families = {str(i.path): i.family for i in items if i.kind == "checkpoint"}
        if self._held is not None:
            self._held.add("models")
            return
        self._update_models()

    def set_model(self, model: str) -> None:
        """The chosen checkpoint (its path): ControlNets for its family are the ones that can be picked."""
        if model == self._model:  # the picker refilled (each scan refills it) with the same model picked:
            return  # the rows' lists are made again by set_library, once
        self._model = model
        if self._held is not None:
            self._held.update(("models", "fit"))
            return
        self._update_models()
        self._fit_rows()  # a masked-area job works at the model's native size

    @contextmanager
    def updates_held(self) -> Iterator[None]:
        """Within the block, a new model and a new library (a scan that took the picked model away) make the guides'
        ControlNet lists once, at its end, for both."""
        self._held = set()
        try:
            yield
        finally:
            held, self._held = self._held, None
            if "models" in held:
                self._update_models()
            if "fit" in held:
                self._fit_rows()

    def set_size(self, width: int, height: int, start: tuple[int, int] | None = None,
                 inpainting: Inpainting | None = None) -> None:
        """The job's size, and the size of the picture it starts from (None: a new picture): the thumbnails show the
        control pictures fitted as the job fits them (``ControlGuide.control_picture``). ``inpainting``: the job
        inpaints the picture of size ``start`` under this mask, with these options: a masked-area job works on the
        part of it around the mask (``inpaint_area``), and so the thumbnails show that part."""
        self._job = (width, height, start, inpainting)
        self._fit_rows()

    def _fit_rows(self) -> None:
        width, height, start, inpainting = self._job
        box = None
        if inpainting is not None and self.rows:  # the mask's box is looked for only with guides to show
            mask, options = inpainting
            # The checkpoint's family gives the model's native side; unknown, SD 1.x's (only the crop's scale
            # in the thumbnail depends on it, not which part of the picture it shows).
            area = inpaint_area(mask, options, NATIVE_SIDES.get(self._family(), NATIVE_SIDES["sd1"]))
            if area is not None:
                box, (width, height) = area
        fitting: Fitting = ((width, height), start, box)
        if fitting == self._fitting:
            return  # the window says it after every stroke on the canvas: nothing to preprocess again
        self._fitting = fitting
        for row in self.rows:
            row.picture.job_size, row.picture.start_size, row.picture.area_box = fitting
            row.picture.refresh_preview()

    def set_generator(self, title: str | None) -> None:
        """A plugin generator (by its title) takes no guides: they are greyed, and kept for when a model is back."""
        self._generator = title or ""
        self._update()

    def applies(self) -> bool:
        return not self._generator

    # -- guides -------------------------------------------------------------------------------------
    def add(self, record: Mapping[str, Any] | None = None) -> GuideRow | None:
        """A new guide, empty (with the first fitting ControlNet) or as recorded; None at MAX_GUIDES."""
        if len(self.rows) >= MAX_GUIDES:
            return None
        row = GuideRow(self._tasks, self._canvas_source, lambda: self.keep_folder, self.depth)
        row.picture.job_size, row.picture.start_size, row.picture.area_box = self._fitting
        row.set_models(self._controlnets, self._family())
        if record is None:
            row.choose_first_model()
        else:
            row.set_record(dict(record))
        row.remove_requested.connect(lambda: self.remove(row))
        row.changed.connect(self.changed)
        self.rows.append(row)
        self.rows_layout.addWidget(row)
        self._update()
        self.changed.emit()
        return row

    def remove(self, row: GuideRow) -> None:
        if row in self.rows:
            self.rows.remove(row)
            self.extensions.forget(row)
            row.hide()
            row.deleteLater()
            self._update()
            self.changed.emit()

    def guides(self) -> tuple[ControlGuide, ...]:
        """The guides a job takes, in order (those switched off left out); InvalidRequest, in a sentence, for one
        that cannot be used as it stands (no picture, a missing file, no model, a model of another family)."""
        if not self.applies():
            return ()
        for index, row in enumerate(self.rows):
            if row.enabled() and (problem := row.problem(guide_label(index + 1, len(self.rows)))) is not None:
                raise InvalidRequest(problem)
        return tuple(row.guide() for row in self.rows if row.enabled())

    def records(self) -> list[dict[str, Any]]:
        """Every guide as the settings and presets keep it (the picture by its file's path)."""
        return [row.record() for row in self.rows]

    def set_records(self, records: list[Mapping[str, Any]] | tuple[Mapping[str, Any], ...]) -> None:
        """The guides of saved settings or a picture's recipe, in place of the ones shown (the same ones are left
        as they are: a canvas picture not kept yet would be lost, and the others read again for nothing)."""
        if [dict(r) for r in records] == self.records():
            return
        for row in list(self.rows):
            self.remove(row)
        for record in records:
            if ControlGuide.from_record(record, unchosen_model=True) is not None:
                self.add(record)

    async def follow_extend(self, before: Image.Image, after: Image.Image,
                            amounts: tuple[int, int, int, int]) -> list[str]:
        """The canvas picture ``before`` was extended by ``amounts`` (left, top, right, bottom: outpainting) into
        ``after``: the guides made for it are extended alike (``GuideExtensions``). Returns a sentence for each guide
        that could not be."""
        return await self.extensions.follow_extend(self.rows, before, after, amounts)

    def follow_canvas(self, picture: Image.Image | None) -> None:
        """The canvas shows ``picture`` (an undo, a redo, a history jump): guides extended with it follow."""
        self.extensions.follow_canvas(picture)

    # -- inside -------------------------------------------------------------------------------------
    def _add_clicked(self) -> None:
        self.add()

    def _canvas_source(self) -> CanvasSource | None:
        return dict(self._image_sources()).get(CANVAS)

    def _canvas_now(self) -> Image.Image | None:
        source = self._canvas_source()
        return source() if source is not None else None

    def _extend_guide(self, guide: ControlGuide, size: tuple[int, int],
                      amounts: tuple[int, int, int, int]) -> ControlGuide:
        """``extend_guide`` with the window's preprocessors (depth's model run on the CPU): in a worker thread."""
        return extend_guide(guide, size, amounts, self.depth.annotator())

    def _family(self) -> str:
        return self._families.get(self._model, "")

    def _update_models(self) -> None:
        for row in self.rows:
            row.set_models(self._controlnets, self._family())
        self._update()

    def _update(self) -> None:
        full = len(self.rows) >= MAX_GUIDES
        self.add_button.setEnabled(self.applies() and bool(self._controlnets) and not full)
        self.add_button.setToolTip(NO_CONTROLNETS if not self._controlnets else
                                   f"At most {MAX_GUIDES} control guides at once: each one slows every step down"
                                   if full else ADD_TIP)
        self.guides_widget.setEnabled(self.applies())
        off = (f"Control guides steer Studio's own Stable Diffusion models; {self._generator} does not use them "
               "(they are kept for when you pick a model again).")
        self.setToolTip(off if self._generator else "")
        hint = off if self._generator else "" if self.rows else ABOUT if self._controlnets else NO_CONTROLNETS
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))
