"""What closing the window asks: whether to quit and cancel the jobs left, and whether to keep unsaved canvas work
for the next start or discard it."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

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
