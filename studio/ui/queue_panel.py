"""The queue list: waiting, running and finished jobs, with remove / cancel / cancel all."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.requests import GenerationRequest, PostProcessRequest
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR
from studio.ui.actions import widget_keys
from studio.ui.theme import DANGER, TEXT, TEXT_DIM, WARNING, icon, plain_tooltip

# Rows of ended jobs kept, oldest cleared first (their pictures and parameters stay in the Gallery): the done and
# cancelled ones, and apart from them the failed ones, whose row holds the only word of what went wrong.
MAX_FINISHED_ROWS = 20
MAX_FAILED_ROWS = 20
JOB_ID_ROLE = Qt.ItemDataRole.UserRole
STATE_ROLE = Qt.ItemDataRole.UserRole + 1
# Each state's icon, the icon's colour (None: the icons' own light grey) and the row's text colour: a failure is
# red, louder than a finished job's amber warning; a cancelled job is neutral grey, as done as a finished one.
STATE_LOOKS: dict[str, tuple[str, str | None, str]] = {
    "waiting": ("clock", None, TEXT),
    "running": ("generate", None, TEXT),
    "finished": ("check", None, TEXT_DIM),
    "failed": ("alert", DANGER, TEXT),
    "cancelled": ("cancel-all", TEXT_DIM, TEXT_DIM),
}


def _summary(request: GenerationRequest | PostProcessRequest, title: Callable[[str, str], str]) -> str:
    """Two lines about a job; a filter or a plugin's generator named as its menu or the model picker shows it
    (``title(kind, id)``): "Filter: color" read as if the picture lost its colours."""
    if isinstance(request, PostProcessRequest):
        return f"Filter: {title(POSTPROCESSOR, request.processor)}\n{request.width}×{request.height} · on the canvas"
    prompt = " ".join(request.prompt.split()) or "(no prompt)"
    if len(prompt) > 48:
        prompt = prompt[:47] + "…"
    mode = "inpaint · " if request.is_inpaint else "img2img · " if request.is_img2img else ""
    count = f" · ×{request.batch_count}" if request.batch_count > 1 else ""
    if request.generator != "diffusers":
        return f"{prompt}\n{title(GENERATOR, request.generator)} · {request.width}×{request.height}{count}"
    size = f"{request.width}×{request.height}"
    if request.hires is not None:
        size += "→{}×{}".format(*request.output_size)
    return f"{prompt}\n{mode}{size} · {request.steps} steps · {request.scheduler}{count}"


class QueuePanel(QWidget):
    remove_requested = Signal(int)  # a waiting job, or a finished row to clear
    cancel_current_requested = Signal()
    cancel_all_requested = Signal()

    def __init__(self, parent: QWidget | None = None,
                 title: Callable[[str, str], str] = lambda kind, id: id) -> None:
        super().__init__(parent)
        self._title = title
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        self.list = QListWidget()
        self.list.setObjectName("queueList")
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        layout.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        self.remove_button = QPushButton(icon("remove"), "Remove")
        self.remove_button.setToolTip("Remove the selected waiting jobs (or clear finished rows)")
        self.cancel_button = QPushButton(icon("stop"), "Cancel")
        self.cancel_button.setToolTip("Stop the running job (Esc)")
        self.cancel_all_button = QPushButton(icon("cancel-all"), "Cancel all")
        self.cancel_all_button.setProperty("danger", True)
        self.cancel_all_button.setToolTip("Stop the running job and drop every waiting one (Shift+Esc)")
        for b in (self.remove_button, self.cancel_button, self.cancel_all_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self._items: dict[int, QListWidgetItem] = {}
        self._summaries: dict[int, str] = {}  # taken when queued: a plugin switched off later is still named
        self._batch_counts: dict[int, int] = {}  # pictures each job was asked for (a cancel says how many were kept)
        # Whether the list scrolls to each job as it starts: off while the person has scrolled the running job out
        # of view to read other rows, on again once they scroll back to it (or to the end) or new work is queued.
        self.following = True
        self._scrolled_by_hand = False
        bar = self.list.verticalScrollBar()
        bar.actionTriggered.connect(self._hand_scroll)  # the scroll bar or the wheel, never scrollToItem
        bar.valueChanged.connect(self._scrolled)
        self.remove_button.clicked.connect(self._remove_selected)
        widget_keys(self.list, ("Delete",), self._remove_selected)
        self.cancel_button.clicked.connect(self.cancel_current_requested)
        self.cancel_all_button.clicked.connect(self.cancel_all_requested)
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self._update_buttons()

    # -- rows --------------------------------------------------------------------------------
    def add_job(self, job_id: int, request: GenerationRequest | PostProcessRequest) -> None:
        if not self.job_ids("running") and not self.job_ids("waiting"):
            self.following = True  # new work after the queue ran dry: shown, wherever the list was left
        item = QListWidgetItem()
        item.setData(JOB_ID_ROLE, job_id)
        self._items[job_id] = item
        self._summaries[job_id] = _summary(request, self._title)
        self._batch_counts[job_id] = request.batch_count
        self.list.addItem(item)
        self._set_state(job_id, "waiting", "Waiting")

    def set_running(self, job_id: int, text: str = "Starting…") -> None:
        started = self.state(job_id) != "running"
        self._set_state(job_id, "running", text)
        item = self._items.get(job_id)
        if started and item is not None and self.following and not self._fully_visible(item):
            # At the top: the jobs waiting after it show below it, the finished ones above scroll away.
            self.list.scrollToItem(item, QListWidget.ScrollHint.PositionAtTop)

    def _fully_visible(self, item: QListWidgetItem) -> bool:
        return self.list.viewport().rect().contains(self.list.visualItemRect(item))

    def _hand_scroll(self, _action: int) -> None:
        self._scrolled_by_hand = True  # (emitted before the value changes: _scrolled then decides)

    def _scrolled(self, value: int) -> None:
        if not self._scrolled_by_hand:
            return
        self._scrolled_by_hand = False
        running = [self._items[i] for i in self.job_ids("running")]
        on_it = any(self.list.visualItemRect(item).intersects(self.list.viewport().rect()) for item in running)
        self.following = on_it or value == self.list.verticalScrollBar().maximum()

    def set_finished(self, job_id: int, text: str, warning: str = "") -> None:
        """``warning``: what went wrong without stopping the job; the row gets a warning sign and says it on hover."""
        self._set_state(job_id, "finished", text)
        item = self._items.get(job_id)
        if item is not None and warning:
            item.setIcon(icon("alert", WARNING))
            item.setToolTip(plain_tooltip(warning))

    def set_failed(self, job_id: int, message: str) -> None:
        self._set_state(job_id, "failed", "Failed")
        item = self._items.get(job_id)
        if item is not None:
            item.setToolTip(plain_tooltip(message))

    def set_cancelled(self, job_id: int, kept: int = 0) -> None:
        """``kept``: the pictures the job finished before it stopped (saved, in the gallery); a batch's row says
        how many of it were kept, as the status line does."""
        count = self._batch_counts.get(job_id, 1)
        if count > 1:
            status = f"Cancelled · {kept or 'none'} of {count} kept"
        else:
            status = "Cancelled · picture kept" if kept else "Cancelled"
        self._set_state(job_id, "cancelled", status)

    def state(self, job_id: int) -> str | None:
        item = self._items.get(job_id)
        return item.data(STATE_ROLE) if item else None

    def job_ids(self, state: str | None = None) -> list[int]:
        return [i for i, item in self._items.items() if state is None or item.data(STATE_ROLE) == state]

    def remove_row(self, job_id: int) -> None:
        item = self._items.pop(job_id, None)
        self._summaries.pop(job_id, None)
        self._batch_counts.pop(job_id, None)
        if item is not None:
            self.list.takeItem(self.list.row(item))
        self._update_buttons()

    def _set_state(self, job_id: int, state: str, status: str) -> None:
        item = self._items.get(job_id)
        if item is None:
            return
        item.setData(STATE_ROLE, state)
        item.setText(f"{status} · #{job_id}  {self._summaries[job_id]}")
        icon_name, icon_colour, text_colour = STATE_LOOKS[state]
        item.setIcon(icon(icon_name, icon_colour))
        item.setForeground(QColor(text_colour))
        if state in ("finished", "failed", "cancelled"):
            self._trim_finished()
        self._update_buttons()

    def _trim_finished(self) -> None:
        done = [i for i in self.job_ids() if self.state(i) in ("finished", "cancelled")]
        failed = self.job_ids("failed")
        for job_id in done[:-MAX_FINISHED_ROWS] + failed[:-MAX_FAILED_ROWS]:
            self.remove_row(job_id)

    def _remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.remove_requested.emit(item.data(JOB_ID_ROLE))

    def _update_buttons(self) -> None:
        states = [item.data(STATE_ROLE) for item in self.list.selectedItems()]
        self.remove_button.setEnabled(any(s != "running" for s in states))
        self.cancel_button.setEnabled(bool(self.job_ids("running")))
        self.cancel_all_button.setEnabled(bool(self.job_ids("running") or self.job_ids("waiting")))
