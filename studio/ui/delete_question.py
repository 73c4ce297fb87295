"""The one question asked before something is deleted for good: its confirm button says "Delete", not "Yes"."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def delete_box(parent: QWidget | None, title: str, text: str) -> QMessageBox:
    """A warning box whose buttons say what they do: "Delete" (destructive) and "Cancel", the default and what
    Escape does, so a stray Return deletes nothing."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    return box


def ask_to_delete(parent: QWidget | None, title: str, text: str) -> bool:
    """True when the person pressed "Delete"."""
    box = delete_box(parent, title, text)
    try:
        box.exec()
        clicked = box.clickedButton()
        return clicked is not None and box.buttonRole(clicked) == QMessageBox.ButtonRole.DestructiveRole
    finally:
        box.deleteLater()
