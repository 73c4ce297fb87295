"""Building menu/tool-bar actions the same way everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QWidget

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


def widget_keys(widget: QWidget, keys: tuple[str, ...], slot: Callable[[], Any]) -> None:
    """Keys that do ``slot`` while ``widget`` has focus (Enter on a list's row, Delete on its selection)."""
    for key in keys:
        shortcut = QShortcut(QKeySequence(key), widget)
        shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
        shortcut.activated.connect(slot)
