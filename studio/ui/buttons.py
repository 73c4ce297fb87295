"""Small button factories shared by the panels."""

from __future__ import annotations

from PySide6.QtWidgets import QToolButton

from studio.ui.theme import icon


def tool_button(icon_name: str, tip: str) -> QToolButton:
    """A flat icon button (raised only under the pointer) with a tooltip."""
    button = QToolButton()
    button.setIcon(icon(icon_name))
    button.setToolTip(tip)
    button.setAutoRaise(True)
    return button
