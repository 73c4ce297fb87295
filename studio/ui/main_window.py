"""The main window: prompt panel, canvas with mask tools, queue, gallery and undo history, wired
to the job service, the history store, the document and its autosave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QWidget

from studio import __version__
from studio.core.document import Document
from studio.core.document_changes import DocumentChange
from studio.core.document_io import DocumentSnapshot
from studio.core.errors import StudioError
from studio.core.paths import studio_paths
from studio.core.settings import Settings
from studio.core.settings_sections import GenerationDefaults
from studio.services.autosave import Autosaver
from studio.services.history_store import HistoryStore
from studio.services.jobs import JobService
from studio.ui.actions import make_action
from studio.ui.canvas import CanvasView
from studio.ui.close_questions import ask_about_unsaved_work, ask_to_quit, tell_entries_not_added
from studio.ui.crash_recovery import RecoveryChoice, SwitchOffChoice
from studio.ui.document_actions import DocumentActions
from studio.ui.focus_keys import FocusedFieldKeys
from studio.ui.history_panel import HistoryPanel
from studio.ui.job_events import JobEvents
from studio.ui.job_submission import JobSubmission
from studio.ui.mask_toolbar import MaskToolBar
from studio.ui.memory_actions import MemoryActions
from studio.ui.model_actions import WRITE_A_PROMPT, ModelActions
from studio.ui.plugin_actions import PluginActions
from studio.ui.prompt_panel import PromptPanel
from studio.ui.queue_panel import QueuePanel
from studio.ui.result_landing import rounded_to_model
from studio.ui.gallery_panel import GalleryPanel
from studio.ui.history_actions import HistoryActions
from studio.ui.result_arrival import ResultArrival
from studio.ui.settings_saving import SettingsSaving
from studio.ui.status_bar import StudioStatusBar
from studio.ui.theme import icon
from studio.ui.window_layout import restore_layout
from studio.ui.window_lifecycle import WindowLifecycle
from studio.ui.window_menus import build_menus_and_toolbars, explain_title_bar_buttons

SNAPSHOT_TRIES = 3  # copies of the mask made in a worker before one is made here (the person painted meanwhile)
QUEUE_SHARE = 340  # the Queue panel's first height beside the Gallery's 520: about three rows at 1280×720


class MainWindow(QMainWindow):
    first_frame = Signal()  # the window has painted once (start-up time is measured to here)
    # Whether closing asks about jobs and unsaved work (and first adds history entries kept meanwhile, or says why not);
    # tests that do not answer turn it off (closing then quits and discards at once, as answering Quit and Discard
    # would).
    asks_before_closing = True

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
        self._painted = False
        self.closing: asyncio.Task | None = None  # asking before the window closes (closeEvent)
        self.recovery: asyncio.Task | None = None  # offering back an earlier Studio's unsaved work (start)
        self.lifecycle = WindowLifecycle(self)
        self.settings_saving = SettingsSaving(self)
        # Mask state and history list are refreshed once per burst of document changes.
        self._document_timer = self._single_shot(60, self._refresh_document_views)
        self._actions_state: tuple[bool, bool, bool] | None = None  # what _update_document_actions last set

        self.setWindowTitle("Studio")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        self.canvas = CanvasView()
        self.canvas.set_document(self.document)
        self.setCentralWidget(self.canvas)
        self.prompt_panel = PromptPanel()
        self.queue_panel = QueuePanel(title=self.service.registry.title)
        self.gallery = GalleryPanel(self.history, self.cache_dir / "thumbnails")
        self.history_panel = HistoryPanel()
        self._add_dock("Generate", self.prompt_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        queue_dock = self._add_dock("Queue", self.queue_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        gallery_dock = self._add_dock("Gallery", self.gallery, Qt.DockWidgetArea.RightDockWidgetArea)
        history_dock = self._add_dock("Undo History", self.history_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(gallery_dock, history_dock)
        gallery_dock.raise_()
        # A third of the column for the queue (three rows at 1280×720), the rest for the gallery.
        self.resizeDocks([queue_dock, gallery_dock], [QUEUE_SHARE, 520], Qt.Orientation.Vertical)
        self.status = StudioStatusBar()
        self.setStatusBar(self.status)
        self.jobs = JobEvents(self)
        self.results = ResultArrival(self)
        self.submission = JobSubmission(self)
        self.actions_ = DocumentActions(self)
        self.history_actions = HistoryActions(self)
        self.mask_toolbar = MaskToolBar(self.canvas)
        self.plugin_actions = PluginActions(self)
        self.models = ModelActions(self)
        self.memory = MemoryActions(self)
        self.prompt_panel.image_sources = self.plugin_actions.image_sources

        self._build_actions()
        build_menus_and_toolbars(self)
        self.installEventFilter(FocusedFieldKeys(self, leave_to=self.canvas))
        restore_layout(self, settings.window)
        self._wire()
        self.prompt_panel.load_defaults(settings.generation)
        self.models.show_chosen_model()
        self.models.refresh()
        self._refresh_document_views()
        self.status.set_message(WRITE_A_PROMPT)
        if settings.load_note:  # said once: the settings saved next no longer hold what was set aside
            self.status.add_notice(settings.load_note)
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
        explain_title_bar_buttons(dock)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, icon_name: str | None, shortcut: QKeySequence | str | None,
                slot, tip: str = "") -> QAction:  # noqa: ANN001
        return make_action(self, text, icon_name, shortcut, slot, tip)

    def _build_actions(self) -> None:
        self.outputs_action = self._action("Open Outputs &Folder", "folder", None,
                                           lambda: self.actions_.open_folder(self.settings.outputs_dir))
        self.quit_action = self._action("&Quit", None, QKeySequence.StandardKey.Quit, self.close)
        self.generate_action = self._action("&Generate", "generate", None, self.generate, "Generate (Ctrl+Enter)")
        # Ctrl+Enter (main keyboard or keypad) works from anywhere, the prompt box included.
        self.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.cancel_action = self._action("&Cancel Current Job", "stop", "Esc", self.jobs.cancel_current)
        self.cancel_all_action = self._action("Cancel &All Jobs", "cancel-all", "Shift+Esc", self.service.cancel_all,
                                              "Stop the running job and drop every waiting one (Shift+Esc)")
        self.find_action = self._action("&Find in Gallery", "zoom-in", QKeySequence.StandardKey.Find,
                                        self.find_in_gallery, "Search the Gallery's prompts (Ctrl+F)")
        self.zoom_in_action = self._action("Zoom &In", "zoom-in", QKeySequence.StandardKey.ZoomIn, self.canvas.zoom_in)
        # Ctrl+= too: "+" is Shift+= on most keyboards, and people press it without the Shift.
        self.zoom_in_action.setShortcuts([*self.zoom_in_action.shortcuts(), QKeySequence("Ctrl+=")])
        self.zoom_out_action = self._action("Zoom &Out", "zoom-out", QKeySequence.StandardKey.ZoomOut,
                                            self.canvas.zoom_out)
        self.fit_action = self._action("&Fit to Window", "fit", "Ctrl+0", self.canvas.fit)
        self.actual_size_action = self._action("&Actual Size", "actual-size", "Ctrl+1", self.canvas.actual_size)
        self.about_action = self._action("&About Studio", "info", None, self._about)

    def _wire(self) -> None:
        self.prompt_panel.generate_requested.connect(self.generate)
        self.prompt_panel.browse_model_requested.connect(self.models.open_library)
        self.prompt_panel.refresh_models_requested.connect(self.models.refresh)
        self.prompt_panel.use_canvas_check.toggled.connect(self._use_canvas_toggled)
        for edit in (self.prompt_panel.prompt_edit, self.prompt_panel.negative_edit):
            edit.hint.connect(self.status.set_message)
        self.queue_panel.remove_requested.connect(self.jobs.remove_job)
        self.queue_panel.cancel_current_requested.connect(self.jobs.cancel_current)
        self.queue_panel.cancel_all_requested.connect(self.service.cancel_all)
        self.history_panel.position_requested.connect(self._go_to_history)
        self.canvas.zoom_changed.connect(self.status.set_zoom)
        self.canvas.stroke_finished.connect(self.results.apply_pending)
        self.canvas.mask_filler = self.actions_.fill_mask
        self.canvas.frame_requested.connect(lambda *amounts: self.actions_.extend_canvas(*amounts, fill=True))
        self.mask_toolbar.show_mask_action.toggled.connect(lambda _: self._document_timer.start())
        self.mask_toolbar.invert_requested.connect(self.actions_.invert)
        self.mask_toolbar.clear_requested.connect(self.actions_.clear)
        self.mask_toolbar.grow_requested.connect(self.actions_.grow)
        self.document.add_listener(self._document_changed)
        self.jobs.update_actions()

    def find_in_gallery(self) -> None:
        """Ctrl+F: the Gallery's search box, its panel shown (and brought to the front of its tabs) if it was not."""
        dock = self.gallery.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is not None:
            dock.show()
            dock.raise_()
        self.gallery.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.gallery.search_edit.selectAll()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, recovery_choice: RecoveryChoice | None = None,
              switch_off_choice: SwitchOffChoice | None = None) -> None:
        """Begin consuming engine events and autosaving (call once the asyncio loop runs)."""
        self.lifecycle.start(recovery_choice, switch_off_choice)

    def event(self, event: QEvent) -> bool:
        if not self._painted and event.type() == QEvent.Type.Paint:
            self._painted = True
            QTimer.singleShot(0, self, self.first_frame.emit)
        return super().event(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.lifecycle.close_now(event):
            super().closeEvent(event)

    def tell_entries_not_added(self, sentence: str) -> None:
        """Say what became of the history entries not added before closing; tests set their own to read it."""
        tell_entries_not_added(self, sentence)

    def confirm_quit(self, question: str) -> bool:
        """The person's answer to ``question`` (Quit or Cancel); tests set their own ``confirm_quit`` to answer."""
        return ask_to_quit(self, question)

    def confirm_unsaved_work(self) -> str | None:
        """KEEP_WORK (offered back at the next start), DISCARD_WORK, or None to stay open."""
        return ask_about_unsaved_work(self)

    def persist_settings(self) -> None:
        """Write settings now (on quit, and after the person changes a folder)."""
        self.settings_saving.save_now()

    def save_settings_soon(self) -> None:
        """Save settings off the UI thread once the person pauses (a filter run, a chain edit)."""
        self.settings_saving.save_soon()

    def generation_defaults(self) -> GenerationDefaults:
        """The prompt panel's values, plus the after-each-generation chain (kept by the Filters menu)."""
        return self.prompt_panel.defaults().model_copy(update={"post": self.settings.generation.post})

    # -- document and autosave -----------------------------------------------------------------
    async def snapshot(self) -> DocumentSnapshot | None:
        """The document as it is now, for the autosave. Its mask, edited in place, is copied in a worker thread
        (16 MB at 4096x4096 held this thread 5-6 ms), and again if the document changed meanwhile: every edit of the
        mask moves the revision on at once, so a copy made while the revision stayed is of one moment."""
        doc = self.document
        for _ in range(SNAPSHOT_TRIES):
            if doc.image is None:
                return None
            image, mask, recipe, revision = doc.image, doc.mask, doc.recipe, doc.revision
            copied = await asyncio.to_thread(mask.copy)
            if doc.revision == revision and doc.mask is mask:
                return DocumentSnapshot(image, copied, recipe, revision)
        # Painted on all the while: copied here, where no edit comes between.
        return None if doc.image is None else DocumentSnapshot(doc.image, doc.mask.copy(), doc.recipe, doc.revision)

    def _document_changed(self, change: DocumentChange) -> None:
        # Cheap states follow at once (shortcuts must work right after a change); the rest batch up.
        self._update_document_actions()
        self._document_timer.start()

    def _update_document_actions(self) -> None:
        # Every brush dab comes here: the nine actions are set only when what they follow changed.
        doc = self.document
        state = (doc.can_undo(), doc.can_redo(), doc.image is not None)
        if state == self._actions_state:
            return
        self._actions_state = state
        can_undo, can_redo, has_picture = state
        self.actions_.undo.setEnabled(can_undo)
        self.actions_.redo.setEnabled(can_redo)
        for action in (self.actions_.save, self.actions_.copy, self.actions_.copy_masked, self.actions_.extend,
                       self.actions_.scale, self.actions_.open_mask, self.actions_.save_mask):
            action.setEnabled(has_picture)

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
        picked = self.prompt_panel.selected_generator()
        if self.plugin_actions.catch_up() and picked is not None and \
                getattr(self.prompt_panel.selected_generator(), "id", None) != picked.id:
            return  # its plugin was switched off outside the window, as the status bar says: not run with another
        try:
            request = self.prompt_panel.build_request(self.document.image, self.current_mask_image())
            request = replace(request, post=self.plugin_actions.post_steps(), memory=self.settings.memory,
                              speed=self.settings.speed)
        except StudioError as exc:
            self.prompt_panel.show_error(str(exc))
            return
        self.submission.submit(request)

    def handle_event(self, event: object) -> None:
        """One engine event, as the window hears it (tests and benchmarks hand events in here)."""
        self.jobs.handle(event)

    def _use_canvas_toggled(self, on: bool) -> None:
        image = self.document.image
        if on and image is not None:
            self.prompt_panel.set_size(*rounded_to_model(image.size))

    def _about(self) -> None:
        QMessageBox.about(self, "About Studio",
                          f"<b>Studio {__version__}</b><br>A local AI image studio.<br>"
                          f"Models: {self.settings.models_dir}<br>Outputs: {self.settings.outputs_dir}")
