"""The main window: prompt panel, canvas, queue and results, wired to the job service."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMessageBox, QToolBar, QWidget

from studio import __version__
from studio.core.errors import StudioError
from studio.core.events import (
    EngineStatus,
    GeneratedImage,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobQueued,
    JobStarted,
)
from studio.core.images import SAVE_FORMATS, open_image, read_recipe, save_image
from studio.core.metadata import Recipe
from studio.core.models import find_models, is_diffusers_folder
from studio.core.requests import MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, GenerationRequest
from studio.core.settings import Settings, save_settings
from studio.services.jobs import EventStream, JobService
from studio.ui.canvas import CanvasView
from studio.ui.prompt_panel import PromptPanel
from studio.ui.queue_panel import QueuePanel
from studio.ui.results_strip import ResultsStrip
from studio.ui.status_bar import StudioStatusBar
from studio.ui.theme import icon

log = logging.getLogger(__name__)
SAVE_FILTERS = "PNG image (*.png);;JPEG image (*.jpg *.jpeg);;WebP image (*.webp)"
OPEN_FILTERS = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff);;All files (*)"


class MainWindow(QMainWindow):
    first_frame = Signal()  # the window has painted once (start-up time is measured to here)

    def __init__(self, settings: Settings, service: JobService) -> None:
        super().__init__()
        self.settings = settings
        self.service = service
        self._stream: EventStream | None = None
        self._events_task: asyncio.Task | None = None
        self._painted = False
        self._requests: dict[int, GenerationRequest] = {}
        self._canvas_recipe: Recipe | None = None
        self._busy_tasks: set[asyncio.Task] = set()
        # Settings are written (with fsync) off the UI thread, once the person pauses.
        self._settings_timer = QTimer(self)
        self._settings_timer.setSingleShot(True)
        self._settings_timer.setInterval(1500)
        self._settings_timer.timeout.connect(self._save_settings_in_background)

        self.setWindowTitle("Studio")
        self.setWindowIcon(icon("app"))
        self.resize(1440, 900)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        self.canvas = CanvasView()
        self.setCentralWidget(self.canvas)
        self.prompt_panel = PromptPanel()
        self.prompt_panel.setMinimumWidth(320)
        self.queue_panel = QueuePanel()
        self.results = ResultsStrip()
        self._add_dock("Generate", self.prompt_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._add_dock("Queue", self.queue_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("Results", self.results, Qt.DockWidgetArea.RightDockWidgetArea)
        self.status = StudioStatusBar()
        self.setStatusBar(self.status)

        self._build_actions()
        self._build_menus_and_toolbar()
        self._wire()
        self.prompt_panel.load_defaults(settings.generation)
        self.refresh_models()
        self.status.set_message("Ready. Write a prompt and press Generate (Ctrl+Enter).")

    # -- construction --------------------------------------------------------------------------
    def _add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, icon_name: str | None, shortcut: QKeySequence | str | None,
                slot, tip: str = "") -> QAction:  # noqa: ANN001
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(tip or text)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("&Open Image…", "open", QKeySequence.StandardKey.Open, self.open_image_dialog)
        self.save_action = self._action("&Save Canvas As…", "save", QKeySequence.StandardKey.Save,
                                        self.save_image_dialog, "Save the canvas as PNG, JPEG or WebP")
        self.outputs_action = self._action("Open &Outputs Folder", "folder", None, self._open_outputs_folder)
        self.quit_action = self._action("&Quit", None, QKeySequence.StandardKey.Quit, self.close)
        self.generate_action = self._action("&Generate", "generate", None, self.generate,
                                            "Generate (Ctrl+Enter)")
        self.cancel_action = self._action("&Cancel Current Job", "stop", "Esc", self.cancel_current)
        self.cancel_all_action = self._action("Cancel &All Jobs", "cancel-all", None, self.service.cancel_all)
        self.zoom_in_action = self._action("Zoom &In", "zoom-in", QKeySequence.StandardKey.ZoomIn,
                                           self.canvas.zoom_in)
        self.zoom_out_action = self._action("Zoom &Out", "zoom-out", QKeySequence.StandardKey.ZoomOut,
                                            self.canvas.zoom_out)
        self.fit_action = self._action("&Fit to Window", "fit", "Ctrl+0", self.canvas.fit)
        self.actual_size_action = self._action("&Actual Size", "actual-size", "Ctrl+1", self.canvas.actual_size)
        self.models_dir_action = self._action("&Models Folder…", "folder", None, self.choose_models_folder)
        self.add_model_action = self._action("Add Model &Folder…", "model", None, self.browse_model)
        self.about_action = self._action("&About Studio", "info", None, self._about)
        # Ctrl+Enter (main keyboard or keypad) works from anywhere, the prompt box included.
        self.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.generate_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

    def _build_menus_and_toolbar(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for a in (self.open_action, self.save_action, None, self.outputs_action, None, self.quit_action):
            file_menu.addSeparator() if a is None else file_menu.addAction(a)
        gen_menu = menu.addMenu("&Generate")
        for a in (self.generate_action, self.cancel_action, self.cancel_all_action):
            gen_menu.addAction(a)
        view_menu = menu.addMenu("&View")
        for a in (self.zoom_in_action, self.zoom_out_action, self.fit_action, self.actual_size_action):
            view_menu.addAction(a)
        view_menu.addSeparator()
        for dock in self.findChildren(QDockWidget):
            view_menu.addAction(dock.toggleViewAction())
        settings_menu = menu.addMenu("&Settings")
        settings_menu.addAction(self.models_dir_action)
        settings_menu.addAction(self.add_model_action)
        menu.addMenu("&Help").addAction(self.about_action)

        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for a in (self.open_action, self.save_action, None, self.generate_action, self.cancel_action,
                  self.cancel_all_action, None, self.zoom_out_action, self.zoom_in_action, self.fit_action,
                  self.actual_size_action):
            toolbar.addSeparator() if a is None else toolbar.addAction(a)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)

    def _wire(self) -> None:
        self.prompt_panel.generate_requested.connect(self.generate)
        self.prompt_panel.browse_model_requested.connect(self.browse_model)
        self.prompt_panel.refresh_models_requested.connect(self.refresh_models)
        self.prompt_panel.use_canvas_check.toggled.connect(self._use_canvas_toggled)
        self.queue_panel.remove_requested.connect(self._remove_job)
        self.queue_panel.cancel_current_requested.connect(self.cancel_current)
        self.queue_panel.cancel_all_requested.connect(self.service.cancel_all)
        self.results.result_activated.connect(self._show_result)
        self.canvas.zoom_changed.connect(self.status.set_zoom)
        self._update_job_actions()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Begin consuming engine events (call once the asyncio loop runs)."""
        self._stream = self.service.subscribe()
        self._events_task = asyncio.ensure_future(self._consume_events())

    async def _consume_events(self) -> None:
        assert self._stream is not None
        async for event in self._stream:
            try:
                self.handle_event(event)
            except Exception:  # a bug in one handler must not stop the window hearing the engine
                log.exception("Handling %r failed", event)

    def event(self, event: QEvent) -> bool:
        if not self._painted and event.type() == QEvent.Type.Paint:
            self._painted = True
            QTimer.singleShot(0, self.first_frame.emit)
        return super().event(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.persist_settings()
        self.service.cancel_all()
        if self._stream is not None:
            self.service.unsubscribe(self._stream)
        super().closeEvent(event)

    def persist_settings(self) -> None:
        """Write settings now (on quit, and after the person changes a folder)."""
        self._settings_timer.stop()
        self.settings.generation = self.prompt_panel.defaults()
        try:
            save_settings(self.settings)
        except StudioError as exc:
            self.status.set_message(str(exc), error=True)

    def _save_settings_in_background(self) -> None:
        self.settings.generation = self.prompt_panel.defaults()
        snapshot = self.settings.model_copy(deep=True)

        async def save() -> None:
            try:
                await asyncio.to_thread(save_settings, snapshot)
            except StudioError as exc:
                self.status.set_message(str(exc), error=True)

        self._run_task(save())

    # -- generating ----------------------------------------------------------------------------
    def generate(self) -> None:
        try:
            request = self.prompt_panel.build_request(self.canvas.image())
            self.service.submit(request)
        except StudioError as exc:
            self.prompt_panel.show_error(str(exc))
            return
        self.prompt_panel.clear_error()
        self._settings_timer.start()

    def cancel_current(self) -> None:
        running = self.queue_panel.job_ids("running")
        for job_id in running:
            self.service.cancel(job_id)
        if running:
            self.status.set_message("Cancelling…")

    def _remove_job(self, job_id: int) -> None:
        if self.queue_panel.state(job_id) == "waiting":
            self.service.cancel(job_id)
        else:
            self.queue_panel.remove_row(job_id)

    def handle_event(self, event: object) -> None:
        if isinstance(event, JobQueued):
            self._requests[event.job_id] = event.request
            self.queue_panel.add_job(event.job_id, event.request)
            for note in event.notes:
                self.status.set_message(note)
        elif isinstance(event, JobStarted):
            self.queue_panel.set_running(event.job_id)
            self.status.job_started()
            self.status.set_message("Working…")
        elif isinstance(event, JobProgress):
            self.status.job_progress(event)
            self.queue_panel.set_running(event.job_id, f"Step {event.step}/{event.total}")
        elif isinstance(event, JobPreview):
            request = self._requests.get(event.job_id)
            if request is not None:
                self.canvas.show_preview(event.image, request.width, request.height)
        elif isinstance(event, JobOutput):
            self.results.add_result(event.output)
            self._show_result(event.output)
            self.prompt_panel.remember_seed(event.output.recipe.seed)
        elif isinstance(event, JobFinished):
            self._job_ended(event.job_id)
            self.queue_panel.set_finished(event.job_id, f"Done in {event.elapsed:.1f} s")
            saved = next((o.path for o in reversed(event.outputs) if o.path), None)
            where = f" Saved to {saved.parent}." if saved else ""
            notes = " ".join(event.notes)
            self.status.set_message(f"Finished in {event.elapsed:.1f} s.{where} {notes}".strip())
        elif isinstance(event, JobFailed):
            self._job_ended(event.job_id)
            self.queue_panel.set_failed(event.job_id, event.message)
            self.status.set_message(event.message, error=True)
        elif isinstance(event, JobCancelled):
            if event.was_running:
                self._job_ended(event.job_id)
                self.queue_panel.set_cancelled(event.job_id)
                self.status.set_message("Cancelled.")
            else:
                self._requests.pop(event.job_id, None)
                self.queue_panel.remove_row(event.job_id)
        elif isinstance(event, EngineStatus):
            if event.device:
                self.status.set_device(event.device)
            if event.model:
                self.status.set_model(event.model)
                self.setWindowTitle(f"{event.model} — Studio")
                if not event.message:
                    self.status.set_message(f"{event.model} is loaded. Working…")
            if event.message:
                self.status.set_message(event.message, error=not event.device and not event.model
                                        and "fail" in event.message.lower())
        self._update_job_actions()

    def _job_ended(self, job_id: int) -> None:
        self._requests.pop(job_id, None)
        self.canvas.clear_preview()
        self.status.job_ended()

    def _update_job_actions(self) -> None:
        running = bool(self.queue_panel.job_ids("running"))
        self.cancel_action.setEnabled(running)
        self.cancel_all_action.setEnabled(running or bool(self.queue_panel.job_ids("waiting")))

    def _show_result(self, output: GeneratedImage) -> None:
        self.canvas.set_image(output.image)
        self._canvas_recipe = output.recipe

    # -- models ---------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        models = find_models(self.settings.models_dir, self.settings.extra_model_paths)
        self.prompt_panel.set_models(models, self.settings.generation.model, str(self.settings.models_dir))

    def browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a diffusers model folder",
                                                  str(self.settings.models_dir))
        if folder:
            self.add_model_folder(Path(folder))

    def add_model_folder(self, folder: Path) -> None:
        if not is_diffusers_folder(folder):
            self.prompt_panel.show_error(f"{folder} is not a diffusers model folder (it has no model_index.json).")
            return
        if folder.resolve() not in [p.resolve() for p in self.settings.extra_model_paths]:
            self.settings.extra_model_paths.append(folder.resolve())
        self.settings.generation.model = str(folder.resolve())
        self.refresh_models()
        self.persist_settings()

    def choose_models_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder", str(self.settings.models_dir))
        if folder:
            self.settings.models_dir = Path(folder)
            self.refresh_models()
            self.persist_settings()

    # -- files ----------------------------------------------------------------------------------
    def _run_task(self, coro) -> None:  # noqa: ANN001
        task = asyncio.ensure_future(coro)
        self._busy_tasks.add(task)
        task.add_done_callback(self._busy_tasks.discard)

    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", OPEN_FILTERS)
        if path:
            self._run_task(self.open_image(Path(path)))

    async def open_image(self, path: Path) -> None:
        try:
            image = await asyncio.to_thread(open_image, path)
            recipe = await asyncio.to_thread(_recipe_or_none, path)
        except StudioError as exc:
            QMessageBox.warning(self, "Open image", str(exc))
            return
        self.canvas.set_image(image)
        self._canvas_recipe = recipe
        self.status.set_message(f"Opened {path.name} ({image.width}×{image.height}).")

    def save_image_dialog(self) -> None:
        if self.canvas.image() is None:
            self.status.set_message("The canvas is empty; there is nothing to save yet.", error=True)
            return
        path, chosen = QFileDialog.getSaveFileName(self, "Save canvas", str(self.settings.outputs_dir),
                                                   SAVE_FILTERS)
        if path:
            target = Path(path)
            if target.suffix.lower() not in SAVE_FORMATS:
                target = target.with_suffix(".jpg" if "JPEG" in chosen else ".webp" if "WebP" in chosen else ".png")
            self._run_task(self.save_canvas(target))

    async def save_canvas(self, path: Path) -> None:
        image = self.canvas.image()
        if image is None:
            return
        try:
            await asyncio.to_thread(save_image, image, path, self._canvas_recipe)
        except StudioError as exc:
            QMessageBox.warning(self, "Save canvas", str(exc))
            return
        except OSError as exc:
            QMessageBox.warning(self, "Save canvas", f"{path.name} could not be written: {exc.strerror or exc}.")
            return
        self.status.set_message(f"Saved {path}.")

    def _open_outputs_folder(self) -> None:
        self.settings.outputs_dir.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.settings.outputs_dir)))

    def _use_canvas_toggled(self, on: bool) -> None:
        image = self.canvas.image()
        if on and image is not None:
            def fit(v: int) -> int:
                return min(MAX_SIZE, max(MIN_SIZE, round(v / SIZE_MULTIPLE) * SIZE_MULTIPLE))
            self.prompt_panel.set_size(fit(image.width), fit(image.height))

    def _about(self) -> None:
        QMessageBox.about(self, "About Studio",
                          f"<b>Studio {__version__}</b><br>A local AI image studio.<br>"
                          f"Models: {self.settings.models_dir}<br>Outputs: {self.settings.outputs_dir}")


def _recipe_or_none(path: Path) -> Recipe | None:
    try:
        return read_recipe(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None  # a picture without a readable recipe is still a picture
