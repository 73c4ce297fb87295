"""A control guide's picture: a thumbnail of it as the ControlNet will see it, the buttons that choose it (a file,
the canvas) and a line that says what it is or what went wrong. Pictures are read, preprocessed and kept in worker
threads: a 4096² photo never holds the window."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QPixmap
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from studio.core.control import CANNY, INVERT, Annotate, ControlGuide
from studio.core.errors import StudioError
from studio.core.images import keep_png, open_image
from studio.ui.qt_images import pil_to_pixmap_ready_qimage
from studio.ui.tasks import Tasks
from studio.ui.theme import icon, repolish

log = logging.getLogger(__name__)
THUMB = 96  # the thumbnail's longer side: enough to judge edges, small enough for a 320 px panel
PICTURE_FILES = "Pictures (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*)"
EMPTY, LOADING, READY, MISSING, FAILED = "empty", "loading", "ready", "missing", "failed"
THUMB_TEXT = {EMPTY: "No picture", LOADING: "Reading…", MISSING: "Picture missing", FAILED: "Unreadable"}
CanvasSource = Callable[[], Image.Image | None]


class ControlPicture(QWidget):
    """``guide`` gives the guide as its card now describes it (for the preview's preprocessor and thresholds);
    ``canvas`` the function that reads the canvas picture (None: no canvas); ``keep_folder`` where a canvas picture
    is kept, so the settings can name it by path (None: not kept); ``models_dir`` the models folder, whose depth
    model makes a depth guide's thumbnail."""

    changed = Signal()
    preview_failed = Signal(str, int)  # why the preprocessor failed, in a sentence; which preview it was

    def __init__(self, tasks: Tasks, guide: Callable[[], ControlGuide], canvas: Callable[[], CanvasSource | None],
                 keep_folder: Callable[[], Path | None], annotator: Callable[[], Annotate],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._tasks, self._guide, self._canvas, self._keep_folder = tasks, guide, canvas, keep_folder
        self._annotator = annotator  # the model preprocessors to run in a worker thread (DepthModel.annotator)
        self.image: Image.Image | None = None
        self.path = ""  # the picture's file ("" for a canvas picture not kept yet)
        self.state, self._note = EMPTY, ""
        self._loads = self._previews = 0  # the newest picture (and preview) asked for wins over older ones
        self.job_size = (512, 512)
        self.start_size: tuple[int, int] | None = None  # the picture the job starts from (None: a new picture)
        self.area_box: tuple[int, int, int, int] | None = None  # the part of that picture the job works on (None: all)
        self.preview: Image.Image | None = None  # the thumbnail's picture, as last made
        self.other_problem: str | None = None  # a sentence about the card's other fields, said in the status line
        self.preview_problem: str | None = None  # why the preprocessor could not make the thumbnail (a broken model)
        self.thumb = QLabel()
        self.thumb.setObjectName("controlThumb")
        self.thumb.setFixedSize(THUMB + 4, THUMB + 4)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setWordWrap(True)
        self.thumb.setToolTip("The control picture as the ControlNet will see it: after the preprocessor, fitted "
                              "to the job: cropped to the new picture's size, or fitted to the canvas picture it "
                              "starts from. Drop a picture file here to use it.")
        self.file_button = _button("open", "File…", "Use a picture file…")
        self.canvas_button = _button("image", "Canvas", "Use the picture on the canvas, as it is now")
        self.status = QLabel()
        self.status.setObjectName("hintLabel")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # file names as written
        self.extra = QVBoxLayout()  # the card puts its preprocessor here, beside the thumbnail
        self.extra.setSpacing(4)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(self.thumb, 0, Qt.AlignmentFlag.AlignTop)
        side = QVBoxLayout()
        side.setSpacing(4)
        side.addLayout(self.extra)
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        buttons.addWidget(self.file_button, 1)
        buttons.addWidget(self.canvas_button, 1)
        side.addLayout(buttons)
        side.addWidget(self.status)
        side.addStretch(1)
        layout.addLayout(side, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)  # once the person pauses on a threshold
        self._timer.timeout.connect(lambda: self._tasks.run(self._make_preview()))
        self.file_button.clicked.connect(self.choose_file)
        self.canvas_button.clicked.connect(lambda: self._tasks.run(self.take_canvas()))
        self.show_state()

    def problem(self, label: str) -> str | None:
        """Why a job cannot take the picture as it stands, in a sentence; None when it can."""
        if self.state == MISSING:
            return f"{label}'s picture {self.path} is missing; choose another picture or remove the guide."
        if self.state == LOADING:
            return f"{label}'s picture is still being read; press Generate again in a moment."
        if self.state == FAILED:
            return f"{label}'s picture could not be used: {self._note}"
        if self.image is None:
            return f"{label} has no control picture; choose a picture file or take the canvas picture."
        return None

    def choose_file(self) -> None:
        start = str(Path(self.path).parent) if self.path else ""
        name, _ = QFileDialog.getOpenFileName(self, "Choose a Control Picture", start, PICTURE_FILES)
        if name:
            self.use_file(Path(name))

    def use_file(self, path: Path) -> None:
        """Start reading a picture file (the card shows it once it is read)."""
        self._tasks.run(self.load_file(path))

    async def load_file(self, path: Path) -> None:
        """Read a picture file in a worker thread (a large photo takes a while to decode)."""
        self._loads += 1
        load = self._loads
        self.path = str(path)
        self._set_state(LOADING, f"Reading {path.name}…")
        try:
            image = await asyncio.to_thread(open_image, path)
        except StudioError as exc:
            if load == self._loads:
                exists = await asyncio.to_thread(path.exists)
                self._set_state(FAILED if exists else MISSING, str(exc) if exists else f"Picture missing: {path}")
            return
        if load == self._loads:
            self._set_picture(image, str(path), f"{path.name} · {image.width}×{image.height}")

    async def take_canvas(self) -> None:
        """The canvas picture as it is now (read in a worker thread; the document never changes a picture in place)."""
        source = self._canvas()
        self._loads += 1
        load = self._loads
        image = await asyncio.to_thread(source) if source is not None else None
        if load != self._loads:
            return
        if image is None:
            if self.state == LOADING:  # the file being read was given up for the canvas
                self._set_state(EMPTY, "")
            self.status.setText("There is no picture on the canvas yet; open or generate one first.")
            self.status.setProperty("error", True)
            repolish(self.status)
            return
        self._set_picture(image, "", f"Canvas picture · {image.width}×{image.height}")
        await self._keep(image)

    def use_made_picture(self, image: Image.Image, note: str) -> None:
        """A picture made in the window (a guide's, extended with the canvas): shown at once, then kept."""
        self._loads += 1  # a file or canvas picture still being read is given up for it
        self._set_picture(image, "", note)
        self._tasks.run(self._keep(image))

    def show_picture(self, image: Image.Image, path: str, note: str) -> None:
        """A picture this card showed before (its file ``path``, or "" for one not kept: it is kept again)."""
        if not path:
            self.use_made_picture(image, note)
            return
        self._loads += 1
        self._set_picture(image, path, note)

    @property
    def note(self) -> str:
        """What the card says of its picture (its file's name and size, or where it came from)."""
        return self._note

    async def _keep(self, image: Image.Image) -> None:
        """A picture with no file saved in the keep folder, so the settings can name it by its path."""
        folder = self._keep_folder()
        if folder is not None:
            try:
                path = str(await asyncio.to_thread(keep_png, image, folder, 3))
            except OSError as exc:  # the guide still works; only the settings will not name its picture
                log.warning("The picture of a control guide could not be kept: %s", exc)
                return
            if self.image is image:
                self.path = path
                self.changed.emit()

    def refresh_preview(self, now: bool = False) -> None:
        """After a setting that changes what the ControlNet sees (the preprocessor, the size)."""
        if self.image is not None:
            self._timer.start(0 if now else self._timer.interval())

    def _set_picture(self, image: Image.Image, path: str, note: str) -> None:
        self.image, self.path = image, path
        self._set_state(READY, note)
        self._timer.start(0)
        self.changed.emit()

    def _set_state(self, state: str, note: str) -> None:
        self.state, self._note, self.preview_problem = state, note, None
        if state != READY:
            self.image, self.preview = None, None
            self.thumb.setPixmap(QPixmap())
        self.show_state()

    def show_state(self) -> None:
        """The picture's state on the card (a problem with the card's other fields goes first)."""
        problem = self.other_problem or self.preview_problem if self.state in (EMPTY, READY) else None
        bad = self.state in (MISSING, FAILED) or problem is not None
        self.status.setText(problem or self._note or "A photo or painting to take edges from, or a line, depth "
                                                     "or pose picture.")
        self.status.setProperty("error", bad)
        repolish(self.status)
        if self.state != READY:
            self.thumb.setText(THUMB_TEXT[self.state])
        self.thumb.setProperty("error", self.state in (MISSING, FAILED))
        repolish(self.thumb)

    async def _make_preview(self) -> None:
        if self.image is None:
            return
        self._previews += 1
        made = self._previews
        guide = self._guide()
        try:
            picture, qimage = await asyncio.to_thread(preview, guide, *self.job_size, self.start_size,
                                                     self.area_box, self._annotator())
        except StudioError as exc:  # a depth model deleted or broken: the card looks again, and offers it or says why
            if made == self._previews:
                self.thumb.setText("No preview")
                self.preview_failed.emit(str(exc), made)
            return
        except Exception as exc:  # noqa: BLE001 - a preprocessor's failure is said on the card, never raised
            log.warning("A control picture's preview failed", exc_info=exc)
            if made == self._previews:
                self.thumb.setText("No preview")
            return
        if made == self._previews and guide.image is self.image:
            self.preview = picture
            self.thumb.setPixmap(QPixmap.fromImage(qimage))
            if self.preview_problem is not None:
                self.preview_problem = None
                self.show_state()

    def show_preview_problem(self, sentence: str | None, made: int) -> None:
        """Why preview ``made`` failed, in the status line (unless a newer one has been asked for since)."""
        if made == self._previews:
            self.preview_problem = sentence
            self.show_state()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if _dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        path = _dropped_file(event)
        if path is not None:
            self.use_file(path)
            event.acceptProposedAction()


def preview(guide: ControlGuide, width: int, height: int, start: tuple[int, int] | None = None,
            box: tuple[int, int, int, int] | None = None, annotate: Annotate | None = None
            ) -> tuple[Image.Image, QImage]:
    """What the ControlNet will see, as a thumbnail (made in a worker thread: QImage is safe there, QPixmap not):
    the engine's own fitting, for a job of ``width`` x ``height`` from a picture of the size ``start`` (if any),
    working on its ``box`` (None: all of it). ``annotate``: the engine's depth maps (``DepthModel.annotator``)."""
    # Fitted to the box both ways: a small job's control picture (64x64) is enlarged, so its edges can be judged.
    seen = guide.control_picture(width, height, start, box, annotate)
    if guide.preprocessor in (CANNY, INVERT):
        seen = _lines_kept(seen)
    picture = ImageOps.contain(seen, (THUMB, THUMB), Image.Resampling.BILINEAR)
    return picture, pil_to_pixmap_ready_qimage(picture)


def _lines_kept(picture: Image.Image) -> Image.Image:
    """Shrunk by the brightest pixel of each block: the one-pixel lines of Canny edges or an inverted sketch stay
    visible in a thumbnail (averaged down, a 1024 px picture's edges fade to a faint grey, as if few were found)."""
    factor = max(picture.width, picture.height) // THUMB
    if factor < 2:
        return picture
    pixels = np.asarray(picture.convert("RGB"))
    height, width = pixels.shape[0] // factor * factor, pixels.shape[1] // factor * factor
    blocks = pixels[:height, :width].reshape(height // factor, factor, width // factor, factor, 3)
    return Image.fromarray(np.ascontiguousarray(blocks.max(axis=(1, 3))), "RGB")


def _dropped_file(event: QDragEnterEvent | QDropEvent) -> Path | None:
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    return Path(urls[0].toLocalFile()) if urls and urls[0].isLocalFile() else None


def _button(icon_name: str, text: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setIcon(icon(icon_name))
    button.setText(text)
    button.setToolTip(tip)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    # Sharing the width beside the thumbnail (a tool button keeps its own width, which left the column short).
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return button
