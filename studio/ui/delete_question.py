"""The one question asked before something is deleted for good: its confirm button says "Delete", not "Yes"."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def delete_box(parent: QWidget | None, title: str, text: str, action: str = "Delete") -> QMessageBox:
    """A warning box whose buttons say what they do: ``action`` ("Delete", "Remove", "Uninstall"; destructive)
    and "Cancel", the default and what Escape does, so a stray Return deletes nothing. ``text`` shows as plain
    text: it may quote what others wrote (a plugin's name), and markup in it must not change what is read."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    return box


def ask_to_delete(parent: QWidget | None, title: str, text: str, action: str = "Delete") -> bool:
    """True when the person pressed ``action``."""
    box = delete_box(parent, title, text, action)
    try:
        box.exec()
        clicked = box.clickedButton()
        return clicked is not None and box.buttonRole(clicked) == QMessageBox.ButtonRole.DestructiveRole
    finally:
        box.deleteLater()
