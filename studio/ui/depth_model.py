"""The depth model on the guide cards: whether it is in the models folder (looked for in a worker thread, after each
scan of the library), and its one-click download (huggingface_hub's resumable transfer, ``model_downloads``) offered
on a card whose preprocessor is Depth while it is missing. One ``DepthModel`` for the Control section: every card
shows the same download."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from studio.core.annotators import (
    DEPTH_REPO,
    DEPTH_SIZE,
    DEPTH_TITLE,
    depth_model_missing,
    find_depth_model,
    put_its_files,
)
from studio.core.control import Annotate
from studio.core.errors import JobCancelledError, StudioError
from studio.core.units import format_size
from studio.ui.tasks import Tasks
from studio.ui.theme import repolish

if TYPE_CHECKING:
    from studio.services.model_downloads import DownloadPlan, DownloadProgress

DOWNLOAD = f"Download it ({DEPTH_SIZE})"  # the note above names the model: a narrow panel fits the button
ON_THE_CARD = "download it with the button on the guide's card"


class DepthModel(QObject):
    """``folder``: the depth model's, None while it is missing (or not looked for yet: ``known``)."""

    changed = Signal()
    progress = Signal(int, int)  # bytes done, of the whole
    # Its copies in memory changed: a thumbnail loaded the CPU's (emitted from the worker thread that loaded it).
    held_changed = Signal()

    def __init__(self, tasks: Tasks, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self.models_dir: Path | None = None
        self.folder: Path | None = None
        self.known = False
        self.downloading = False
        self.error = ""  # what the last download said went wrong
        self._cancel = False
        self._looks = 0

    def set_models_dir(self, models_dir: Path | None) -> None:
        """The models folder, after a scan of the library: the depth model is looked for again."""
        self.models_dir = models_dir
        self._tasks.run(self.look())

    async def look(self) -> None:
        await self._look(always=True)

    async def recheck(self) -> None:
        """Look again after the model failed to make a map (deleted, or broken, since the last look). The cards hear
        of it only when where it is changed: told of a broken model found again, they would remake their previews,
        which would fail again, and again."""
        await self._look(always=False)

    async def _look(self, always: bool) -> None:
        self._looks += 1
        look = self._looks
        found = await asyncio.to_thread(find_depth_model, self.models_dir)
        if look == self._looks and (always or not self.known or found != self.folder):
            self.folder, self.known = found, True
            self.changed.emit()

    def annotator(self) -> Annotate:
        """The engine's model preprocessors (depth, with the models folder's depth model, on the CPU), imported when
        first run: only ever run in a worker thread (torch must not load on the window's). Says ``held_changed``
        when running them loaded a copy of the model (or let one go): Models in Memory lists it."""
        models_dir, held_changed = self.models_dir, self.held_changed

        def annotate(preprocessor: str, image: Image.Image) -> Image.Image:
            from studio.engine.libraries import open_torch_libraries_off_the_gil

            open_torch_libraries_off_the_gil()  # the window paints on while torch's libraries open
            from studio.engine.depth_maps import annotator, held_models

            before = held_models()
            try:
                return annotator(models_dir)(preprocessor, image)
            finally:
                if held_models() != before:
                    with suppress(RuntimeError):  # the window closed meanwhile: there is no list to tell
                        held_changed.emit()

        return annotate

    def missing(self, label: str) -> str:
        """The sentence for a job with the depth guide ``label`` while the model is missing."""
        return depth_model_missing(self.models_dir, ON_THE_CARD, label)

    def start_or_cancel(self) -> None:
        if self.downloading:
            self._cancel = True
        else:
            self._tasks.run(self.download())

    async def download(self) -> None:
        models_dir = self.models_dir
        if models_dir is None or self.downloading:
            return
        self.downloading, self._cancel, self.error = True, False, ""
        self.changed.emit()
        loop = asyncio.get_running_loop()
        try:
            plan = await asyncio.to_thread(_plan, models_dir)
            self.progress.emit(plan.already_bytes, plan.total_bytes)
            await asyncio.to_thread(_download, plan, lambda: self._cancel, lambda event: (
                loop.call_soon_threadsafe(self.progress.emit, event.done_bytes, event.total_bytes)))
        except JobCancelledError:
            self.error = "The download stopped; download it again to resume where it stopped."
        except StudioError as exc:  # offline, say: the other way to get it follows what went wrong
            self.error = f"{exc} Or {put_its_files(models_dir)}."
        finally:
            self.downloading = False
        await self.look()


def _plan(models_dir: Path) -> DownloadPlan:
    # Imported here, in the worker: huggingface_hub takes a quarter of a second to import, which held the window.
    from studio.services.model_downloads import plan_download

    return plan_download(DEPTH_REPO, models_dir)


def _download(plan: DownloadPlan, cancelled: Callable[[], bool], progress: Callable[[DownloadProgress], None]) -> None:
    from studio.services.model_downloads import download_model

    download_model(plan, cancelled=cancelled, progress=progress)


class DepthOffer(QWidget):
    """On a guide card whose preprocessor is Depth while the depth model is missing: what is missing, the download
    button (Cancel while it runs) and its progress."""

    def __init__(self, depth: DepthModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._depth = depth
        self.wanted = False  # the card's preprocessor is Depth
        self.note = QLabel()
        self.note.setObjectName("hintLabel")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.button = QPushButton(DOWNLOAD)
        # As narrow as the card: a button as wide as its text widened the whole panel, which then scrolled sideways.
        self.button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.button.setToolTip(f"Fetch {DEPTH_REPO} from the Hugging Face hub into the models folder's annotators/ "
                               "(an interrupted download resumes)")
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(6)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        for widget in (self.note, self.button, self.bar):
            layout.addWidget(widget)
        self.button.clicked.connect(depth.start_or_cancel)
        depth.changed.connect(self.show_state)
        depth.progress.connect(self._show_progress)
        self.show_state()

    def set_wanted(self, wanted: bool) -> None:
        self.wanted = wanted
        self.show_state()

    def show_state(self) -> None:
        depth = self._depth
        self.setVisible(self.wanted and depth.known and (depth.folder is None or depth.downloading))
        self.button.setText("Cancel download" if depth.downloading else DOWNLOAD)
        self.button.setEnabled(depth.models_dir is not None)
        self.bar.setVisible(depth.downloading)
        self.note.setText(depth.error or f"Depth maps are made by {DEPTH_TITLE}, which is not in the models folder "
                                         "yet.")
        self.note.setProperty("error", bool(depth.error))
        repolish(self.note)

    def _show_progress(self, done: int, total: int) -> None:
        self.bar.setRange(0, 1000)
        self.bar.setValue(done * 1000 // max(total, 1))
        self.bar.setToolTip(f"{format_size(done)} of {format_size(total)}")
