"""The main window: prompt panel, canvas with mask tools, queue, gallery and undo history, wired
to the job service, the history store, the document and its autosave.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QMessageBox, QToolBar, QWidget

from studio import __version__
from studio.core.document import Document, DocumentChange, changed_box
from studio.core.document_io import DocumentSnapshot, SavedDocument
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
    format_seconds,
)
from studio.core.held_memory import MemoryFreed
from studio.core.mask import Box
from studio.core.paths import studio_paths
from studio.core.requests import MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, GenerationRequest, PostProcessRequest
from studio.core.settings import GenerationDefaults, OrderedSaves, Settings
from studio.services.autosave import RECOVERED_FOLDER, Autosaver, discard, find_recoverable, keep_as_pictures
from studio.services.history_store import HistoryStore
from studio.services.jobs import EventStream, JobService
from studio.ui.actions import make_action
from studio.ui.canvas import CanvasView
from studio.ui.document_actions import DocumentActions
from studio.ui.focus_keys import FocusedFieldKeys
from studio.ui.history_panel import HistoryPanel
from studio.ui.mask_toolbar import MaskToolBar
from studio.ui.memory_actions import MemoryActions
from studio.ui.modal import modal
from studio.ui.model_actions import ModelActions
from studio.ui.plugin_actions import PluginActions
from studio.ui.prompt_panel import PromptPanel
from studio.ui.queue_panel import QueuePanel
from studio.ui.gallery_panel import GalleryPanel
from studio.ui.history_actions import HistoryActions
from studio.ui.status_bar import StudioStatusBar
from studio.ui.theme import icon
from studio.ui.result_landing import Landing, held_because, landed, source_of
from studio.ui.window_layout import capture_layout, restore_layout

log = logging.getLogger(__name__)
GENERATED = "Generated"  # the undo step of a generated picture
HELD_BACK = ("The new picture is in the Gallery (double-click it to use it); the canvas keeps the steps you undid, "
             "so you can still redo them.")
RecoveryChoice = Callable[[SavedDocument], bool]


class MainWindow(QMainWindow):
    first_frame = Signal()  # the window has painted once (start-up time is measured to here)

    def __init__(self, settings: Settings, service: JobService, data_dir: Path | None = None,
                 history: HistoryStore | None = None, cache_dir: Path | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.service = service
        self.data_dir = data_dir or studio_paths().data_dir
        self.cache_dir = cache_dir or studio_paths().cache_dir
        self.history = history or HistoryStore(self.data_dir / "history.db")
        self.document = Document()
        self.autosaver: Autosaver | None = None
        self._stream: EventStream | None = None
        self._events_task: asyncio.Task | None = None
        self._painted = False
        self._requests: dict[int, GenerationRequest | PostProcessRequest] = {}
        self._pending_outputs: list[Landing] = []  # results that landed mid-stroke
        # Made ahead, off this thread, for each result: (canvas picture, result, what goes on the canvas, their diff).
        self._compared: list[tuple[Image.Image, Image.Image, Image.Image, Box | None]] = []
        self._held_note = ""  # said when the job ends: a result stayed in the gallery (see _held_back)
        self.recovery: asyncio.Task | None = None  # offering back an earlier Studio's unsaved work (start)
        # Settings are written (with fsync) off the UI thread, once the person pauses.
        self._settings_timer = self._single_shot(1500, self._save_settings_in_background)
        self._saves = OrderedSaves()  # the quit save and a background one in flight: the newer wins
        # Mask state and history list are refreshed once per burst of document changes.
        self._document_timer = self._single_shot(60, self._refresh_document_views)

        self.setWindowTitle("Studio")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        self.canvas = CanvasView()
        self.canvas.set_document(self.document)
        self.setCentralWidget(self.canvas)
        self.prompt_panel = PromptPanel()
        self.prompt_panel.setMinimumWidth(320)
        self.queue_panel = QueuePanel()
        self.gallery = GalleryPanel(self.history, self.cache_dir / "thumbnails")
        self.history_panel = HistoryPanel()
        self._add_dock("Generate", self.prompt_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._add_dock("Queue", self.queue_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        gallery_dock = self._add_dock("Gallery", self.gallery, Qt.DockWidgetArea.RightDockWidgetArea)
        history_dock = self._add_dock("Undo History", self.history_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(gallery_dock, history_dock)
        gallery_dock.raise_()
        self.resizeDocks([gallery_dock], [520], Qt.Orientation.Vertical)
        self.status = StudioStatusBar()
        self.setStatusBar(self.status)
        self.actions_ = DocumentActions(self)
        self.history_actions = HistoryActions(self)
        self.mask_toolbar = MaskToolBar(self.canvas)
        self.plugin_actions = PluginActions(self)
        self.models = ModelActions(self)
        self.memory = MemoryActions(self)
        self.prompt_panel.image_sources = self.plugin_actions.image_sources

        self._build_actions()
        self._build_menus_and_toolbars()
        self.installEventFilter(FocusedFieldKeys(self, leave_to=self.canvas))
        restore_layout(self, settings.window)
        self._wire()
        self.prompt_panel.load_defaults(settings.generation)
        self.models.show_chosen_model()
        self.models.refresh()
        self._refresh_document_views()
        self.status.set_message("Ready. Write a prompt and press Generate (Ctrl+Enter).")
        if settings.load_note:  # said once: the settings saved next no longer hold what was set aside
            self.status.set_message(settings.load_note, error=True)
            settings.load_note = ""

    # -- construction --------------------------------------------------------------------------
    def _single_shot(self, ms: int, slot: Callable[[], None]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    def _add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        # Closable: the View menu's entry for a panel hides and shows it (Qt greys it out for a panel that is not).
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, icon_name: str | None, shortcut: QKeySequence | str | None,
                slot, tip: str = "") -> QAction:  # noqa: ANN001
        return make_action(self, text, icon_name, shortcut, slot, tip)

    def _build_actions(self) -> None:
        self.outputs_action = self._action("Open &Outputs Folder", "folder", None,
                                           lambda: self.actions_.open_folder(self.settings.outputs_dir))
        self.quit_action = self._action("&Quit", None, QKeySequence.StandardKey.Quit, self.close)
        self.generate_action = self._action("&Generate", "generate", None, self.generate, "Generate (Ctrl+Enter)")
        # Ctrl+Enter (main keyboard or keypad) works from anywhere, the prompt box included.
        self.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.cancel_action = self._action("&Cancel Current Job", "stop", "Esc", self.cancel_current)
        self.cancel_all_action = self._action("Cancel &All Jobs", "cancel-all", None, self.service.cancel_all)
        self.zoom_in_action = self._action("Zoom &In", "zoom-in", QKeySequence.StandardKey.ZoomIn, self.canvas.zoom_in)
        # Ctrl+= too: "+" is Shift+= on most keyboards, and people press it without the Shift.
        self.zoom_in_action.setShortcuts([*self.zoom_in_action.shortcuts(), QKeySequence("Ctrl+=")])
        self.zoom_out_action = self._action("Zoom &Out", "zoom-out", QKeySequence.StandardKey.ZoomOut,
                                            self.canvas.zoom_out)
        self.fit_action = self._action("&Fit to Window", "fit", "Ctrl+0", self.canvas.fit)
        self.actual_size_action = self._action("&Actual Size", "actual-size", "Ctrl+1", self.canvas.actual_size)
        self.about_action = self._action("&About Studio", "info", None, self._about)

    def _build_menus_and_toolbars(self) -> None:
        a = self.actions_
        menus = {
            "&File": [a.open, a.save, None, a.open_mask, a.save_mask, None, self.outputs_action, None,
                      self.quit_action],
            "&Edit": [a.undo, a.redo, None, a.copy, a.copy_masked, a.paste],
            "&Image": [a.extend, a.scale],
            "F&ilters": self.plugin_actions.menu,
            "&Mask": [self.mask_toolbar.show_mask_action, None, a.invert_mask, a.clear_mask,
                      self.mask_toolbar.grow_action, self.mask_toolbar.shrink_action],
            "&Generate": [self.generate_action, self.cancel_action, self.cancel_all_action],
            "&View": [self.zoom_in_action, self.zoom_out_action, self.fit_action, self.actual_size_action, None,
                      *(d.toggleViewAction() for d in self.findChildren(QDockWidget))],
            "&Settings": [self.models.folder_action, self.models.library_action, self.models.gpu_menu.menuAction(),
                          self.memory.models_action, self.memory.free_action, None, self.plugin_actions.manage],
            "&Help": [self.about_action],
        }
        for title, actions in menus.items():
            if isinstance(actions, QMenu):
                self.menuBar().addMenu(actions)
                continue
            menu = self.menuBar().addMenu(title)
            for action in actions:
                menu.addSeparator() if action is None else menu.addAction(action)

        toolbar = QToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for action in (a.open, a.save, None, a.undo, a.redo, None, self.generate_action, self.cancel_action,
                       self.cancel_all_action, None, a.extend, None, self.zoom_out_action, self.zoom_in_action,
                       self.fit_action, self.actual_size_action):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        self.addToolBarBreak()
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.mask_toolbar)

    def _wire(self) -> None:
        self.prompt_panel.generate_requested.connect(self.generate)
        self.prompt_panel.browse_model_requested.connect(self.models.open_library)
        self.prompt_panel.refresh_models_requested.connect(self.models.refresh)
        self.prompt_panel.use_canvas_check.toggled.connect(self._use_canvas_toggled)
        self.queue_panel.remove_requested.connect(self._remove_job)
        self.queue_panel.cancel_current_requested.connect(self.cancel_current)
        self.queue_panel.cancel_all_requested.connect(self.service.cancel_all)
        self.history_panel.position_requested.connect(self._go_to_history)
        self.canvas.zoom_changed.connect(self.status.set_zoom)
        self.canvas.stroke_finished.connect(self._apply_pending_outputs)
        self.canvas.mask_filler = self.actions_.fill_mask
        self.canvas.frame_requested.connect(lambda *amounts: self.actions_.extend_canvas(*amounts, fill=True))
        self.mask_toolbar.show_mask_action.toggled.connect(lambda _: self._document_timer.start())
        self.mask_toolbar.invert_requested.connect(self.actions_.invert)
        self.mask_toolbar.clear_requested.connect(self.actions_.clear)
        self.mask_toolbar.grow_requested.connect(self.actions_.grow)
        self.document.add_listener(self._document_changed)
        self._update_job_actions()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, recovery_choice: RecoveryChoice | None = None) -> None:
        """Begin consuming engine events and autosaving (call once the asyncio loop runs)."""
        self._stream = self.service.subscribe()
        self._events_task = asyncio.ensure_future(self._consume_events())
        self.actions_.run(self.history_actions.start())
        self.recovery = self.actions_.run(self.offer_recovery(recovery_choice or self._ask_to_restore))
        try:
            self.autosaver = Autosaver(self.data_dir / "autosave", self.snapshot,
                                       on_failure=lambda text: self.status.set_message(text, error=True))
            self.autosaver.start()
        except OSError as exc:
            self.status.set_message(f"Autosave is off: {exc}", error=True)

    async def _consume_events(self) -> None:
        assert self._stream is not None
        async for event in self._stream:
            if isinstance(event, JobOutput):
                await self._take_in_ahead(event.output.image, source_of(self._requests.get(event.job_id)))
            try:
                self.handle_event(event)
            except Exception:  # a bug in one handler must not stop the window hearing the engine
                log.exception("Handling %r failed", event)

    async def _take_in_ahead(self, result: Image.Image, source: Image.Image | None) -> None:
        """Work out what goes on the canvas, convert it for display and find where it differs from the canvas
        picture, in worker threads: at 1024x1024 the conversion took this thread 3-8 ms with the engine busy beside
        it; at 4096x4096 the comparison alone took it 20-40 ms, and carrying an inpaint's changes onto a canvas
        changed since (result_landing) 740 ms. A result that will wait behind a brush stroke is compared with the
        one before it, which the document will have by then."""
        current = self._pending_outputs[-1][0].image if self._pending_outputs else self.document.image
        try:
            shown = await asyncio.to_thread(landed, current, result, source)
        except Exception:  # the window works it out itself then
            log.exception("Placing a result on the canvas failed")
            return
        if shown is None:
            return  # it will not go on the canvas
        if current is None or (current.size, current.mode) != (shown.size, shown.mode):
            await self.canvas.convert_ahead(shown)  # a new size: nothing to compare with
            return
        try:
            box, _ = await asyncio.gather(asyncio.to_thread(changed_box, current, shown),
                                          self.canvas.convert_ahead(shown))
        except Exception:  # the document compares them itself then
            log.exception("Comparing a result with the canvas failed")
            return
        self._compared.append((current, result, shown, box))

    def event(self, event: QEvent) -> bool:
        if not self._painted and event.type() == QEvent.Type.Paint:
            self._painted = True
            QTimer.singleShot(0, self, self.first_frame.emit)
        return super().event(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.persist_settings()
        self.service.cancel_all()
        if self._stream is not None:
            self.service.unsubscribe(self._stream)
        if self.autosaver is not None:
            self.autosaver.close()  # a clean exit leaves nothing to recover
            self.autosaver = None
        for timer in self.findChildren(QTimer):  # no query or refresh may start against stores about to close
            timer.stop()
        super().closeEvent(event)

    def persist_settings(self) -> None:
        """Write settings now (on quit, and after the person changes a folder)."""
        self._settings_timer.stop()
        self.plugin_actions.store_now()
        self.settings.generation = self.generation_defaults()
        self.settings.window = capture_layout(self)
        try:
            self._saves.save(self.settings, self._saves.ticket())
        except StudioError as exc:
            self.status.set_message(str(exc), error=True)

    def save_settings_soon(self) -> None:
        """Save settings off the UI thread once the person pauses (a filter run, a chain edit)."""
        self._settings_timer.start()

    def generation_defaults(self) -> GenerationDefaults:
        """The prompt panel's values, plus the after-each-generation chain (kept by the Filters menu)."""
        return self.prompt_panel.defaults().model_copy(update={"post": self.settings.generation.post})

    def _save_settings_in_background(self) -> None:
        self.settings.generation = self.generation_defaults()
        self.settings.window = capture_layout(self)
        snapshot, ticket = self.settings.model_copy(deep=True), self._saves.ticket()

        async def save() -> None:
            try:
                await asyncio.to_thread(self._saves.save, snapshot, ticket)
            except StudioError as exc:
                self.status.set_message(str(exc), error=True)

        self.actions_.run(save())

    # -- document, autosave, recovery -----------------------------------------------------------
    def snapshot(self) -> DocumentSnapshot | None:
        doc = self.document
        if doc.image is None:
            return None
        return DocumentSnapshot(doc.image, doc.mask.copy(), doc.recipe, doc.revision)

    async def offer_recovery(self, choose: RecoveryChoice) -> bool:
        """If an earlier Studio died with unsaved work, offer it back; True when restored. The autosaves are read,
        and the picture and mask made ready for display, in worker threads: on this thread a 4096x4096 one held
        the window 0.6 s before the question came, and as long again once it was answered."""
        found = await asyncio.to_thread(find_recoverable, self.data_dir / "autosave")
        if not found:
            return False
        latest, older = found[0], found[1:]
        restored = await modal(lambda: choose(latest))
        message = ""
        if restored:
            await self.canvas.convert_ahead(latest.image, latest.mask)
            self.document.replace_all("Restore after a crash", latest.image, latest.mask, latest.recipe)
            message = "Restored the picture and mask from before Studio stopped."
        if older:  # more than one Studio stopped (a power cut): only one picture fits the canvas, none is lost
            folder = self.settings.outputs_dir / RECOVERED_FOLDER
            kept = await asyncio.to_thread(keep_as_pictures, older, folder)
            if kept:
                message += (f" {len(kept)} older unsaved picture{'s' if len(kept) > 1 else ''} from Studios that "
                            f"stopped {'were' if len(kept) > 1 else 'was'} kept in {folder}.")
        if message:
            self.status.set_message(message.strip())
        # Restored work is on disk again, in this session's autosave, before the old one goes.
        if not restored or (self.autosaver is not None and await self.autosaver.save_now()):
            await asyncio.to_thread(discard, latest)
        return restored

    def _ask_to_restore(self, saved: SavedDocument) -> bool:
        from datetime import datetime

        when = datetime.fromtimestamp(saved.saved_at).strftime("%H:%M on %d %b")
        answer = QMessageBox.question(
            self, "Restore your work?",
            f"Studio did not close properly last time. Restore the picture and mask it autosaved at {when} "
            f"({saved.image.width}×{saved.image.height})?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _document_changed(self, change: DocumentChange) -> None:
        # Cheap states follow at once (shortcuts must work right after a change); the rest batch up.
        self._update_document_actions()
        self._document_timer.start()

    def _update_document_actions(self) -> None:
        doc = self.document
        self.actions_.undo.setEnabled(doc.can_undo())
        self.actions_.redo.setEnabled(doc.can_redo())
        for action in (self.actions_.save, self.actions_.copy, self.actions_.copy_masked, self.actions_.extend,
                       self.actions_.scale, self.actions_.open_mask, self.actions_.save_mask):
            action.setEnabled(doc.image is not None)

    def _refresh_document_views(self) -> None:
        doc = self.document
        self.prompt_panel.set_canvas_size(doc.size if doc.image is not None else None)
        self.prompt_panel.control_box.follow_canvas(doc.image)  # an outpaint undone: its guides go back too
        self.prompt_panel.set_mask_active(doc.image is not None and doc.has_mask and self.canvas.mask_visible(),
                                          doc.mask)
        self.history_panel.refresh(doc)
        self._update_document_actions()

    def _go_to_history(self, position: int) -> None:
        if not self.canvas.busy:
            self.document.go_to(position)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if DocumentActions.accepts(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        if self.actions_.open_mime(event.mimeData(), "Drop"):
            event.acceptProposedAction()

    # -- generating ----------------------------------------------------------------------------
    def current_mask_image(self) -> Image.Image | None:
        doc = self.document
        if doc.image is None or not self.canvas.mask_visible() or not doc.has_mask:
            return None
        return Image.fromarray(doc.mask.copy(), "L")

    def generate(self) -> None:
        try:
            request = self.prompt_panel.build_request(self.document.image, self.current_mask_image())
            request = replace(request, post=self.plugin_actions.post_steps(), memory=self.settings.memory,
                              speed=self.settings.speed)
            self.service.submit(request)
        except StudioError as exc:
            self.prompt_panel.show_error(str(exc))
            return
        self.prompt_panel.clear_error()
        self.prompt_panel.prompt_edit.remember(request.prompt)
        self.save_settings_soon()

    def cancel_current(self) -> None:
        running = self.queue_panel.job_ids("running")
        for job_id in running:
            self.service.cancel(job_id)
        if running:
            self.status.set_message("Cancelling…")

    def _remove_job(self, job_id: int) -> None:
        state = self.queue_panel.state(job_id)
        if state == "waiting":
            self.service.cancel(job_id)
        elif state != "running":  # a running job is stopped with Cancel; its row stays until it has stopped
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
                width, height = (request.width, request.height) if isinstance(request, PostProcessRequest) \
                    else request.output_size  # a hires fix's first pass is shown over the final picture's place
                self.canvas.show_preview(event.image, width, height, event.box)
        elif isinstance(event, JobOutput):
            request = self._requests.get(event.job_id)
            label = GENERATED
            if isinstance(request, PostProcessRequest):
                label = self._filter_title(request.processor)
            else:
                self.history_actions.results_arrived()
                self.prompt_panel.remember_seed(event.output.recipe.seed)
            landing = (event.output, label, source_of(request))
            if self.canvas.busy:
                self._pending_outputs.append(landing)  # never under the person's brush
            else:
                self._show_results([landing])
        elif isinstance(event, JobFinished):
            self._job_ended(event.job_id)
            self.queue_panel.set_finished(event.job_id, f"Done in {format_seconds(event.elapsed)}")
            saved = next((o.path for o in reversed(event.outputs) if o.path), None)
            where = f" Saved to {saved.parent}." if saved else ""
            finished = f"Finished in {format_seconds(event.elapsed)}.{where} {' '.join(event.notes)} {self._held_note}"
            self._held_note = ""
            self.status.set_message(" ".join(finished.split()))
        elif isinstance(event, JobFailed):
            self._job_ended(event.job_id)
            self.history_actions.results_arrived()  # failed jobs are in the history too
            self.queue_panel.set_failed(event.job_id, event.message)
            self.status.set_message(" ".join([event.message, *event.notes]), error=True)
        elif isinstance(event, JobCancelled):
            self.history_actions.results_arrived()
            if event.was_running:
                self._job_ended(event.job_id)
                self.queue_panel.set_cancelled(event.job_id)
                self.status.set_message(" ".join(["Cancelled.", *event.notes]))
            else:
                self._requests.pop(event.job_id, None)
                self.queue_panel.remove_row(event.job_id)
        elif isinstance(event, EngineStatus):
            self._show_engine_status(event)
        elif isinstance(event, MemoryFreed):
            self.memory.show_freed(event)
        self._update_job_actions()

    def _show_engine_status(self, event: EngineStatus) -> None:
        if event.device:
            self.status.set_device(event.device)
        if event.model:
            self.status.set_model(event.model)
            self.setWindowTitle(f"{event.model} — Studio")
            if not event.message:  # loaded ahead of any job (the preload), or for the job now running
                working = " Working…" if self.queue_panel.job_ids("running") else ""
                self.status.set_message(f"{event.model} is loaded.{working}")
        if event.message:
            self.status.set_message(event.message, error=not event.device and not event.model
                                    and "fail" in event.message.lower())

    def _job_ended(self, job_id: int) -> None:
        self._requests.pop(job_id, None)
        self.canvas.clear_preview()
        self.status.job_ended()

    def _update_job_actions(self) -> None:
        running = bool(self.queue_panel.job_ids("running"))
        self.cancel_action.setEnabled(running)
        self.cancel_all_action.setEnabled(running or bool(self.queue_panel.job_ids("waiting")))

    def _show_results(self, results: list[Landing]) -> None:
        """Each result becomes a step in the undo history; the canvas redraws once, for the last one (those that
        waited behind a brush stroke are never seen, so only the last one's conversion, made ahead, is used)."""
        with self.document.changes_held():
            for output, label, source in results:
                if self._held_back(output, label):
                    continue
                ahead = self._made_ahead(output)
                if ahead is not None and ahead[0] is self.document.image:  # the canvas it was worked out for
                    image, compared = ahead[1], (ahead[0], ahead[2])
                else:
                    try:
                        image = landed(self.document.image, output.image, source)  # the canvas as it is
                    except Exception:  # never lost without a word: the person is told it was not put on the canvas
                        log.exception("Putting a result on the canvas failed")
                        image = None
                    compared = None
                if image is None:
                    self._hold(output, held_because(output.image, source, output.path is not None))
                    continue
                self.document.set_image(image, label, output.recipe, compared=compared)
        if self.autosaver is not None:
            self.actions_.run(self.autosaver.save_now())  # every generation is on disk at once

    def _held_back(self, output: GeneratedImage, label: str) -> bool:
        """A generated picture that lands while the person has undone steps stays in the gallery: putting it on
        the canvas would throw away the steps they can still redo."""
        if label != GENERATED or not self.document.can_redo() or output.path is None:
            return False
        self._hold(output, HELD_BACK)
        return True

    def _hold(self, output: GeneratedImage, why: str) -> None:
        self._made_ahead(output)  # what was made ahead for it goes too
        self._held_note = why
        self.status.set_message(why)

    def _made_ahead(self, output: GeneratedImage) -> tuple[Image.Image, Image.Image, Box | None] | None:
        """(canvas picture, what goes on it, their diff) made ahead for this result, if any; those of earlier
        results go with it."""
        for index, (picture, result, shown, box) in enumerate(self._compared):
            if result is output.image:
                del self._compared[:index + 1]
                return picture, shown, box
        return None

    def _apply_pending_outputs(self) -> None:
        pending, self._pending_outputs = self._pending_outputs, []
        if pending:
            self._show_results(pending)

    def _filter_title(self, processor: str) -> str:
        try:
            return f"Filter: {self.service.registry.get('postprocessor', processor).title}"
        except StudioError:
            return f"Filter: {processor}"

    def _use_canvas_toggled(self, on: bool) -> None:
        image = self.document.image
        if on and image is not None:
            def fit(v: int) -> int:
                return min(MAX_SIZE, max(MIN_SIZE, round(v / SIZE_MULTIPLE) * SIZE_MULTIPLE))
            self.prompt_panel.set_size(fit(image.width), fit(image.height))

    def _about(self) -> None:
        QMessageBox.about(self, "About Studio",
                          f"<b>Studio {__version__}</b><br>A local AI image studio.<br>"
                          f"Models: {self.settings.models_dir}<br>Outputs: {self.settings.outputs_dir}")
