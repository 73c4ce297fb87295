"""The gallery: every picture Studio made, newest first, searchable as you type, with reuse actions."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from PySide6.QtCore import QDate, QPoint, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.services.history_query import HistoryQuery, fold
from studio.services.history_store import HistoryEntry, HistoryStore
from studio.ui.actions import widget_keys
from studio.ui.gallery_delegate import CELL, STAR, GalleryDelegate
from studio.ui.gallery_model import ENTRY_ROLE, GalleryModel, count_text
from studio.ui.gallery_view import GalleryView
from studio.ui.gallery_writes import READ_ONLY, GalleryWrites
from studio.ui.tasks import Tasks
from studio.ui.theme import icon

log = logging.getLogger(__name__)
DATE_RANGES = [("Any time", None), ("Today", 0), ("Last 7 days", 7), ("Last 30 days", 30),
               ("Last 365 days", 365), ("Custom range…", -1)]


class GalleryPanel(GalleryWrites, QWidget):
    load_parameters_requested = Signal(object)  # HistoryEntry
    run_again_requested = Signal(object)
    use_as_input_requested = Signal(object)
    failed = Signal(str)  # a sentence for the status bar: a search, star or delete the history could not do
    said = Signal(str)  # a sentence for the status bar: locked-out entries were added, a filtered model is gone
    notice = Signal(str)  # a sentence for the status bar: what happened to the history's file meanwhile

    def __init__(self, store: HistoryStore, thumbnail_cache: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.model = GalleryModel(store, thumbnail_cache)
        self._selected_id: int | None = None
        self._tasks = Tasks()
        self._query_timer = QTimer(self)
        self._query_timer.setSingleShot(True)
        self._query_timer.setInterval(120)  # search as you type, once the typing pauses
        self._query_timer.timeout.connect(self.apply_query)
        self._start_pending_retries()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)

        row = QHBoxLayout()
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search prompts…")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.addAction(icon("zoom-in"), QLineEdit.ActionPosition.LeadingPosition)
        self.starred_button = QToolButton()
        self.starred_button.setCheckable(True)
        self.starred_button.setIcon(icon("star", STAR))
        self.starred_button.setToolTip("Only starred pictures")
        self.starred_button.setAutoRaise(True)
        row.addWidget(self.search_edit, 1)
        row.addWidget(self.starred_button)
        layout.addLayout(row)

        filters = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Only pictures made with this model")
        self.model_combo.addItem("All models", None)  # until the history's models are read (reload)
        self.date_combo = QComboBox()
        for label, days in DATE_RANGES:
            self.date_combo.addItem(label, days)
        filters.addWidget(self.model_combo, 1)
        filters.addWidget(self.date_combo)
        layout.addLayout(filters)
        custom = QHBoxLayout()
        self.from_date, self.to_date = QDateEdit(), QDateEdit()
        for edit, label in ((self.from_date, "From"), (self.to_date, "to")):
            edit.setCalendarPopup(True)
            edit.setDate(QDate.currentDate())
            edit.dateChanged.connect(self._schedule_query)
            custom.addWidget(QLabel(label))
            custom.addWidget(edit, 1)
        self.from_date.setDate(QDate.currentDate().addDays(-30))
        self.custom_range = QWidget()
        self.custom_range.setLayout(custom)
        custom.setContentsMargins(0, 0, 0, 0)
        self.custom_range.hide()
        layout.addWidget(self.custom_range)

        self.view = GalleryView()
        self.view.setObjectName("galleryView")
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)  # layout of 100,000 rows without asking each for its size
        # Lay rows out a batch per event-loop turn: the first page shows at once, the rest follows.
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(400)
        self.view.setGridSize(QSize(CELL, CELL))
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.view.setItemDelegate(GalleryDelegate(self.view))
        self.view.setModel(self.model)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        layout.addWidget(self.view, 1)

        actions = QHBoxLayout()
        self.load_button = self._button("reuse", "Load parameters into the prompt panel")
        self.rerun_button = self._button("generate", "Run again exactly (same seed and settings)")
        self.use_button = self._button("to-canvas", "Put this picture on the canvas")
        self.star_button = self._button("star", "Star or unstar")
        self.reveal_button = self._button("folder", "Show the file in its folder")
        self.delete_button = self._button("remove", "Delete the entry and its files")
        if store.read_only:  # opened only to read (app.open_history): a star or a deletion would fail
            self.star_button.setToolTip(f"Star or unstar: not possible, {READ_ONLY}.")
            self.delete_button.setToolTip(f"Delete the entry and its files: not possible, {READ_ONLY}.")
        for button in (self.load_button, self.rerun_button, self.use_button, self.star_button, self.reveal_button):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.delete_button)
        layout.addLayout(actions)
        self.count_label = QLabel()
        self.count_label.setObjectName("hintLabel")
        self.count_label.setWordWrap(True)  # a failed search says why
        layout.addWidget(self.count_label)

        self._wire()
        self._update_buttons()

    def _button(self, icon_name: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(icon_name))
        button.setToolTip(tip)
        button.setAutoRaise(True)
        return button

    def _wire(self) -> None:
        self.search_edit.textChanged.connect(self._schedule_query)
        self.starred_button.toggled.connect(self._schedule_query)
        self.model_combo.currentIndexChanged.connect(self._schedule_query)
        self.date_combo.currentIndexChanged.connect(self._date_range_changed)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelAboutToBeReset.connect(self._remember_selection)
        self.model.modelReset.connect(self._model_reset)
        self.model.counted.connect(self._show_count)
        # Thumbnail requests for rows scrolled away (or gone with a new query) are dropped before loading.
        self.view.verticalScrollBar().valueChanged.connect(self._drop_unseen_thumbnails)
        self.model.modelReset.connect(self._drop_unseen_thumbnails)
        self.view.doubleClicked.connect(lambda index: self._emit(self.use_as_input_requested))
        widget_keys(self.view, ("Return", "Enter"), lambda: self._emit(self.use_as_input_requested))
        widget_keys(self.view, ("Delete",), lambda: self.delete_selected())
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.load_button.clicked.connect(lambda: self._emit(self.load_parameters_requested))
        self.rerun_button.clicked.connect(lambda: self._emit(self.run_again_requested))
        self.use_button.clicked.connect(lambda: self._emit(self.use_as_input_requested))
        self.star_button.clicked.connect(self.toggle_star)
        self.reveal_button.clicked.connect(self.reveal)
        self.delete_button.clicked.connect(lambda: self.delete_selected())

    # -- queries -----------------------------------------------------------------------------------
    def current_query(self) -> HistoryQuery:
        days = self.date_combo.currentData()
        since = until = None
        if days == -1:
            since = _epoch(self.from_date.date())
            until = _epoch(self.to_date.date().addDays(1))
        elif days is not None:
            since = _epoch(QDate.currentDate().addDays(-days))
        return HistoryQuery(text=self.search_edit.text().strip(), model=self.model_combo.currentData(),
                            since=since, until=until, starred_only=self.starred_button.isChecked())

    def _schedule_query(self) -> None:
        self._query_timer.start()

    def apply_query(self) -> asyncio.Task:
        return asyncio.ensure_future(self.model.set_query(self.current_query()))

    async def reload(self) -> None:
        """New pictures arrived, or the panel opens: refresh models and rows."""
        await self._refresh_models()
        await self.model.set_query(self.current_query())
        for news in self.store.take_news():  # the database file was removed or damaged, and a new one started
            self.notice.emit(news)

    async def _refresh_models(self) -> bool:
        """The model filter's list read again; whether the model it was on is gone (it is on All models then,
        and says so)."""
        try:
            models = await asyncio.to_thread(self.store.models)
        except StudioError as exc:  # the search below says it too, in the count line; the status bar says it now
            log.warning("The gallery's models could not be listed: %s", exc)
            self.failed.emit(str(exc))
            return False  # the list and the filter stay as they were
        current, shown = self.model_combo.currentData(), self.model_combo.currentText()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItem("All models", None)
        for name in models:
            self.model_combo.addItem(name, name)
        # The filter folds case, so DreamShaper stays chosen when only dreamshaper's pictures are left.
        kept = next((i for i, name in enumerate(models, start=1)
                     if current is not None and fold(name) == fold(current)), 0)
        self.model_combo.setCurrentIndex(kept)
        self.model_combo.blockSignals(False)
        if current is None or kept:
            return False
        self.said.emit(f"No pictures made with {shown} are left: the gallery shows all models.")
        return True

    def _date_range_changed(self) -> None:
        self.custom_range.setVisible(self.date_combo.currentData() == -1)
        self._schedule_query()

    def _remember_selection(self) -> None:
        entry = self.selected_entry()
        self._selected_id = entry.id if entry is not None else None

    def _model_reset(self) -> None:
        # New pictures arriving (or a refresh) must not lose what the person had selected.
        row = self.model.row_of(self._selected_id) if self._selected_id else None
        if row is not None:
            self.select_row(row)
        self._show_count()
        self._update_buttons()
        if self.model.error:
            self.failed.emit(self.model.error)

    def _show_count(self) -> None:
        pictureless = self.model.pictureless
        if self.model.error:
            self.count_label.setText(f"Search failed: {self.model.error}")
        elif pictureless is None:
            return  # until the rows are counted (GalleryModel.counted): the last count stays, not a wrong one
        else:
            self.count_label.setText(count_text(self.model.picture_count, pictureless))
        jobs = bool(pictureless) and not self.model.error
        self.count_label.setToolTip("Failed and cancelled jobs are listed with the pictures, marked, so their "
                                    "parameters can be loaded or run again; they have no picture." if jobs else "")

    def visible_rows(self) -> range:
        """The rows on screen (an empty range when none)."""
        count = self.model.rowCount()
        first = self.view.indexAt(QPoint(CELL // 2, CELL // 2)).row()
        if count == 0 or first < 0 or not self.view.isVisible():
            return range(0)
        area = self.view.viewport().rect()
        last = first
        while last + 1 < count and self.view.visualRect(self.model.index(last + 1)).intersects(area):
            last += 1
        return range(first, last + 1)

    def _drop_unseen_thumbnails(self) -> None:
        rows = self.visible_rows()
        margin = len(rows)  # a screenful either side stays wanted (scrolling back a little)
        low, high = rows.start - margin, rows.stop + margin

        def near(entry_id: int) -> bool:
            row = self.model.row_of(entry_id)
            return row is not None and low <= row < high

        self.model.thumbnails.forget_unless(near)

    # -- actions -----------------------------------------------------------------------------------
    def selected_entry(self) -> HistoryEntry | None:
        indexes = self.view.selectionModel().selectedIndexes()
        return indexes[0].data(ENTRY_ROLE) if indexes else None

    def select_row(self, row: int) -> None:
        index = self.model.index(row)
        self.view.setCurrentIndex(index)

    def _emit(self, signal: Signal) -> None:
        entry = self.selected_entry()
        if entry is not None:
            signal.emit(entry)

    def _update_buttons(self) -> None:
        entry = self.selected_entry()
        has_file = entry is not None and bool(entry.image_path) and entry.outcome == "ok"
        for button in (self.use_button, self.reveal_button):
            button.setEnabled(has_file)
        for button in (self.load_button, self.rerun_button):
            button.setEnabled(entry is not None)
        for button in (self.star_button, self.delete_button):
            button.setEnabled(entry is not None and not self.store.read_only)

    def reveal(self) -> None:
        entry = self.selected_entry()
        if entry is not None and entry.image_path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(entry.image_path).parent)))

    def _context_menu(self, pos) -> None:  # noqa: ANN001
        if self.selected_entry() is None:
            return
        menu = self.context_menu()
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu:
        """The selected picture's menu: each entry as its button is (off, with the button's tooltip, where it is)."""
        menu = QMenu(self)
        menu.setToolTipsVisible(True)  # why an entry is off
        for text, button in (("Load Parameters", self.load_button), ("Run Again", self.rerun_button),
                             ("Use as Input", self.use_button), ("Star / Unstar", self.star_button),
                             ("Show File", self.reveal_button), (None, None), ("Delete…", self.delete_button)):
            if text is None:
                menu.addSeparator()
                continue
            action = menu.addAction(text)
            action.setEnabled(button.isEnabled())
            action.setToolTip(button.toolTip())
            action.triggered.connect(button.click)
        return menu


def _epoch(date: QDate) -> float:
    return time.mktime((date.year(), date.month(), date.day(), 0, 0, 0, 0, 0, -1))
