"""Building menu/tool-bar actions the same way everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence

from studio.ui.theme import icon


def make_action(parent: QObject, text: str, icon_name: str | None, shortcut: Any, slot: Callable[[], Any],
                tip: str = "") -> QAction:
    """An action with an optional icon and shortcut; its tooltip defaults to the text without & and …."""
    action = QAction(text, parent)
    if icon_name:
        action.setIcon(icon(icon_name))
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    action.setToolTip(tip or text.replace("&", "").rstrip("…"))
    action.triggered.connect(slot)
    return action
