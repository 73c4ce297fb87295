"""What closing the window asks: whether to quit and cancel the jobs left, and whether to keep unsaved canvas work
for the next start or discard it; and what it says: history entries kept while another program held the history's
lock that could not be added before the window went."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox, QWidget

from studio.core.errors import StudioError
from studio.services.history_pending import entries_phrase

if TYPE_CHECKING:
    from studio.services.history_store import HistoryStore

log = logging.getLogger(__name__)

KEEP_WORK, DISCARD_WORK = "keep", "discard"


def ask_to_quit(parent: QWidget, question: str) -> bool:
    """The person's answer to ``question``: Quit (True) or Cancel."""
    box = QMessageBox(QMessageBox.Icon.Question, "Quit Studio?", question, QMessageBox.StandardButton.NoButton,
                      parent)
    quit_button = box.addButton("Quit", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
    try:
        box.exec()
        return box.clickedButton() is quit_button
    finally:
        box.deleteLater()


def ask_about_unsaved_work(parent: QWidget) -> str | None:
    """KEEP_WORK (offered back at the next start), DISCARD_WORK, or None to stay open."""
    box = QMessageBox(QMessageBox.Icon.Question, "Close Studio?",
                      "The canvas has work that is not saved (a painted mask, edits since the picture was made "
                      "or opened). Keep it to be offered back when Studio starts next, or discard it?",
                      QMessageBox.StandardButton.NoButton, parent)
    keep = box.addButton("Keep for Next Time", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(box.addButton(QMessageBox.StandardButton.Cancel))
    try:
        box.exec()
        return {keep: KEEP_WORK, discard: DISCARD_WORK}.get(box.clickedButton())
    finally:
        box.deleteLater()


def quit_question(running: int, waiting: int) -> str:
    """E.g. "1 job is running and 2 are waiting; quit and cancel them?"."""
    said = [f"{running} job{'s are' if running > 1 else ' is'} running"] if running else []
    if waiting:
        noun = "" if running else f" job{'s' if waiting > 1 else ''}"
        said.append(f"{waiting}{noun} {'are' if waiting > 1 else 'is'} waiting")
    return f"{' and '.join(said)}; quit and cancel {'them' if running + waiting > 1 else 'it'}?"


async def add_kept_entries(history: HistoryStore, say: Callable[[str], None]) -> str | None:
    """Add the history entries kept while another program held the database's lock, waiting for it (off the UI
    thread, up to the store's busy_timeout) with ``say`` told why. None once added; else the sentence saying why
    not and what becomes of them (journaled: added the next time Studio opens the history)."""
    say(f"Adding {entries_phrase(history.pending_count())} kept while another program held the history "
        "database's lock, before Studio closes…")
    try:
        if added := await asyncio.to_thread(history.add_pending):
            log.info("%s", added)
    except StudioError as exc:  # still locked (HistoryLocked), or the database could not be written
        said = history.not_added_sentence(exc)
        log.warning("%s", said)
        return said
    return None


def tell_entries_not_added(parent: QWidget, sentence: str) -> None:
    """Tell the person, before the window goes, what became of the history entries that could not be added."""
    box = QMessageBox(QMessageBox.Icon.Information, "History Entries Not Added Yet", sentence,
                      QMessageBox.StandardButton.Ok, parent)
    try:
        box.exec()
    finally:
        box.deleteLater()
