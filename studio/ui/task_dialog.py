"""A dialog whose actions run off the UI thread: one message line, and its buttons off while one runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox, QWidget

from studio.core.errors import first_line
from studio.ui import delete_question
from studio.ui.modal import modal
from studio.ui.tasks import Tasks

log = logging.getLogger(__name__)

ERROR_STYLE = "color: #ff8a80;"


# (title, text, action) -> the person said yes. ``action``: None asks Yes/No; a word ("Remove", "Unlink") asks with a
# button named for what it does, Cancel the default (see delete_question).
Confirm = Callable[[str, str, str | None], bool]


def question_box(parent: QWidget, title: str, text: str) -> QMessageBox:
    """A yes/no box showing ``text`` as plain text: it quotes what others wrote (a plugin's manifest), and markup
    in it must not change what the person reads."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    return box


def ask(parent: QWidget | None, title: str, text: str, action: str | None = None) -> bool:
    """Yes/No; with ``action`` ("Remove", "Unlink"), that button and Cancel. Named by the caller, not read off the
    title: "Remove Model" asked to unlink a folder with a destructive "Remove" button."""
    if action is not None:
        return delete_question.ask_to_delete(parent, title, text, action)
    box = question_box(parent, title, text)
    try:
        return box.exec() == QMessageBox.StandardButton.Yes
    finally:
        box.deleteLater()


class TaskDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks = Tasks()
        self.action_buttons: list[QWidget] = []  # disabled while a task runs
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.confirm: Confirm = lambda title, text, action=None: ask(self, title, text, action)  # tests answer

    def start(self, coro: Awaitable[Any]) -> None:
        self._tasks.run(coro).add_done_callback(self._ended)

    def done(self, result: int) -> None:
        """Closing the dialog cancels its tasks: one left running (a pip dry run) went on to ask, install and write
        into the dialog after it was deleted ("Internal C++ object already deleted")."""
        self._tasks.cancel_all()
        super().done(result)

    def _ended(self, task: asyncio.Task) -> None:
        """A task that failed in a way nobody planned for still ends with a sentence and the buttons back on;
        before, the dialog stayed at "Checking…" with every button off."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()  # (logged by Tasks)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)
        self._report(f"That did not work: {reason}. Details are in studio.log.", error=True)

    async def confirmed(self, title: str, text: str, action: str | None = None) -> bool:
        """The person's yes or no (``self.confirm``, which tests answer), asked from a task (see ``modal``); with
        ``action``, the word on the button that says yes ("Remove", "Unlink")."""
        return await modal(lambda: self.confirm(title, text, action))

    def _busy(self, text: str) -> None:
        """Say what is running (or, with "", that nothing is) and turn the action buttons off meanwhile."""
        self.message.setStyleSheet("")
        self.message.setText(text)
        for widget in self.action_buttons:
            widget.setEnabled(not text)

    def _report(self, text: str, error: bool = False) -> None:
        self._busy("")
        self.message.setStyleSheet(ERROR_STYLE if error else "")
        self.message.setText(text)
        self._show_details()

    def _settle_selection(self) -> None:
        """After the list is filled: keep the selection, or select the first row; then show its details."""
        tree = getattr(self, "tree", None)
        if tree is not None and tree.currentItem() is None and tree.topLevelItemCount():
            tree.setCurrentItem(tree.topLevelItem(0))
        self._show_details()

    def _show_details(self) -> None:
        """Refresh whatever depends on the selection (buttons' states, the details pane)."""


def brush(colour: str) -> QBrush:
    return QBrush(QColor(colour))
