"""Models in Memory: what the engine holds loaded (the model in use, those kept for switching back, cached parts: the
fast path's too), and buttons to free it, for the GPU or the memory another program needs.

The list is asked of the engine thread between jobs (``JobService.held_models``): while a job runs it comes when the
job ends, and it is asked again whenever a job ends, memory is freed or models are loaded outside the jobs
(``HeldModelsChanged``). Nothing here waits on this thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.events import TERMINAL_EVENTS, EngineStatus
from studio.core.held_memory import CACHED, HeldModel, HeldModelsChanged, MemoryFreed, total_size
from studio.core.units import format_size
from studio.services.jobs import JobService
from studio.ui.dialog_room import keep_rows_in_sight, keep_wrapped_text_whole
from studio.ui.task_dialog import TaskDialog
from studio.ui.theme import icon

COLUMNS = ("Model", "Held as", "Device", "Precision", "Size")
DEVICE_WORDS = {"cuda": "GPU (CUDA)", "mps": "GPU (Apple)", "cpu": "System memory"}
AFTER_THE_JOB = "A job is running: the memory is freed when it ends."
# (the model in use too) -> the window's task freeing it, answering what went (None: it failed, and said why)
Free = Callable[[bool], asyncio.Future[MemoryFreed | None]]


class MemoryDialog(TaskDialog):
    def __init__(self, service: JobService, free: Free, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self._free = free  # the window's: its answer lands in the status bar even after this dialog closes
        self.held: tuple[HeldModel, ...] | None = None  # the last list the engine gave (None: not yet)
        self._asking = False
        self._ask_again = False
        self.setWindowTitle("Models in Memory")
        self.resize(720, 340)
        layout = QVBoxLayout(self)
        intro = QLabel("Studio keeps the model in use loaded, and the last few you switched away from, so that "
                       "switching back is instant; on a GPU, the Fast speed also keeps each size's prepared "
                       "denoising step and, for SDXL, a faster copy of the part that turns the result into a "
                       "picture. Free them to give the memory to another program; the next job loads (or makes) "
                       "them again.")
        intro.setToolTip("The prepared steps are CUDA graphs of the model's UNet step; the faster copy is a "
                         "bfloat16 copy of its VAE.")
        intro.setWordWrap(True)
        intro.setObjectName("hintLabel")
        layout.addWidget(intro)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        self.summary = QLabel()
        layout.addWidget(self.summary)
        layout.addWidget(self.message)
        layout.addLayout(self._buttons())
        self._stream = service.subscribe()
        self.start(self._follow_engine())
        self.finished.connect(self._stop)
        self.refresh()
        keep_rows_in_sight(self.table)
        keep_wrapped_text_whole(self, intro, self.message, chars=60)

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.free_kept_button = QPushButton(icon("remove"), "Free Kept Models")
        self.free_kept_button.setToolTip("Let go the models kept for switching back and the cached parts (the "
                                         "Fast speed's prepared steps and faster copies too); the model in use "
                                         "stays loaded")
        self.free_kept_button.clicked.connect(lambda: self.free(in_use=False))
        self.free_all_button = QPushButton(icon("remove"), "Free All")
        self.free_all_button.setToolTip("Let every model go, the one in use too: the next job loads it again")
        self.free_all_button.clicked.connect(lambda: self.free(in_use=True))
        self.action_buttons = [self.free_kept_button, self.free_all_button]
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        for widget in (self.free_kept_button, self.free_all_button):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(close)
        return row

    def job_running(self) -> bool:
        return self.service.running() is not None

    def free(self, in_use: bool) -> None:
        self._busy(AFTER_THE_JOB if self.job_running() else "Freeing…")
        self.start(self._freed(self._free(in_use)))

    async def _freed(self, freeing: asyncio.Future[MemoryFreed | None]) -> None:
        # Shielded: closing the dialog stops this task, never the freeing the window waits for.
        freed = await asyncio.shield(freeing)
        if freed is None:
            self._report("The memory could not be freed; the status bar says why.", error=True)
        else:
            self._report(freed.summary())

    def refresh(self) -> None:
        """Ask the engine what it holds (once at a time: a request made meanwhile is asked after it)."""
        if self._asking:
            self._ask_again = True
            return
        self._asking = True
        if self.job_running():
            self.summary.setText("A job is running: the list fills in when it ends.")
        elif self.held is None:
            self.summary.setText("Asking the engine…")
        self.start(self._ask())

    async def _ask(self) -> None:
        try:
            self.show_held(await self.service.held_models())
        finally:
            self._asking = False
        if self._ask_again:
            self._ask_again = False
            self.refresh()

    def show_held(self, held: tuple[HeldModel, ...]) -> None:
        self.held = held
        self.table.setRowCount(len(held))
        for row, model in enumerate(held):
            cells = (model.name, model.role_words, DEVICE_WORDS.get(model.device, model.device),
                     model.precision or "—", format_size(model.size))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 0 and model.path is not None:
                    item.setToolTip(str(model.path))
                if column == len(COLUMNS) - 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.summary.setText(summary_words(held))

    async def _follow_engine(self) -> None:
        """Ask again when a job ends, a model is loaded ahead of any job, memory was freed, or models were loaded or
        let go outside the jobs (a guide's thumbnail loading the depth model)."""
        async for event in self._stream:
            if isinstance(event, (*TERMINAL_EVENTS, MemoryFreed, HeldModelsChanged)) or (
                    isinstance(event, EngineStatus) and event.model and not self.job_running()):
                self.refresh()

    def _stop(self) -> None:
        self.service.unsubscribe(self._stream)
        self._tasks.cancel_all()  # a list still asked for is not wanted (the engine skips it)


def summary_words(held: tuple[HeldModel, ...]) -> str:
    """"1 model loaded and 2 cached parts, 7.1 GB in all.": cached parts (a VAE, the fast path's graphs) are not
    models of their own."""
    if not held:
        return "No model is loaded."
    models = sum(model.role != CACHED for model in held)
    parts = len(held) - models
    said = [f"{models} model{'s' * (models != 1)} loaded"] if models else []
    said += [f"{parts} cached part{'s' * (parts != 1)}"] if parts else []
    return f"{' and '.join(said)}, {format_size(total_size(held))} in all."
