"""The Styles button: saved prompt styles with a {prompt} placeholder, applied from a menu."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from studio.core.settings import PromptStyle
from studio.ui.theme import icon


class StylesButton(QToolButton):
    style_chosen = Signal(object)  # PromptStyle
    save_requested = Signal()
    delete_requested = Signal(object)  # PromptStyle

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIcon(icon("palette"))
        self.setText("Styles")
        self.setToolTip("Prompt styles: apply a saved style ({prompt} is replaced by your prompt)")
        self.setToolButtonStyle(self.toolButtonStyle().ToolButtonTextBesideIcon)
        self.setAutoRaise(True)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self._menu = QMenu(self)
        self.setMenu(self._menu)
        self.set_styles([])

    def set_styles(self, styles: list[PromptStyle]) -> None:
        menu = self._menu
        menu.clear()
        for style in styles:
            action = menu.addAction(style.name)
            action.setToolTip(f"{style.prompt}\nNegative: {style.negative_prompt}")
            action.triggered.connect(lambda _=False, s=style: self.style_chosen.emit(s))
        if not styles:
            empty = menu.addAction("No styles yet")
            empty.setEnabled(False)
        menu.addSeparator()
        menu.addAction("Save Current Prompt as Style…").triggered.connect(self.save_requested)
        if styles:
            delete_menu = menu.addMenu("Delete Style")
            for style in styles:
                delete_menu.addAction(style.name).triggered.connect(
                    lambda _=False, s=style: self.delete_requested.emit(s))
