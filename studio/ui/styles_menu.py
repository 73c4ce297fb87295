"""Menu buttons of saved, named things: prompt styles (a {prompt} placeholder) and generation presets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from studio.core.settings_sections import PromptStyle
from studio.ui.theme import icon


class SavedItemsButton(QToolButton):
    """A tool button whose menu applies a saved item, saves the current one, or deletes one."""

    chosen = Signal(object)
    save_requested = Signal()
    delete_requested = Signal(object)

    def __init__(self, icon_name: str, text: str, tip: str, kind: str,
                 describe: Callable[[Any], str] = lambda item: "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._kind = kind  # "Style", "Preset": used in the menu's words
        self._describe = describe
        self.setIcon(icon(icon_name))
        self.setText(text)
        self.setToolTip(tip)
        self.setToolButtonStyle(self.toolButtonStyle().ToolButtonTextBesideIcon)
        self.setAutoRaise(True)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self._menu = QMenu(self)
        self._delete_menu: QMenu | None = None  # made again with each list: the old one is deleted
        self.setMenu(self._menu)
        self.set_items([])

    def set_items(self, items: Sequence[Any]) -> None:
        menu = self._menu
        menu.clear()  # its actions; a submenu stays a child of the menu until deleted
        if self._delete_menu is not None:
            self._delete_menu.deleteLater()
            self._delete_menu = None
        for item in items:
            action = menu.addAction(_literal(item.name))
            action.setToolTip(self._describe(item))
            action.triggered.connect(lambda _=False, i=item: self.chosen.emit(i))
        if not items:
            menu.addAction(f"No {self._kind.lower()}s yet").setEnabled(False)
        menu.addSeparator()
        what = "Prompt" if self._kind == "Style" else "Settings"
        menu.addAction(f"Save Current {what} as {self._kind}…").triggered.connect(self.save_requested)
        if items:
            delete_menu = self._delete_menu = menu.addMenu(f"Delete {self._kind}")
            for item in items:
                delete_menu.addAction(_literal(item.name)).triggered.connect(
                    lambda _=False, i=item: self.delete_requested.emit(i))


def _literal(name: str) -> str:
    """A name as a menu shows it: Qt reads a single "&" as a shortcut marker ("R&B" showed as "RB")."""
    return name.replace("&", "&&")


class StylesButton(SavedItemsButton):
    embedding_chosen = Signal(str)  # a textual inversion's name, to put in the prompt

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("palette", "Styles", "Prompt styles: apply a saved style ({prompt} is replaced by your "
                         "prompt); insert a textual inversion", "Style",
                         lambda s: f"{s.prompt}\nNegative: {s.negative_prompt}", parent)
        # One submenu for the whole session, added again after each rebuild (clear() does not delete submenus).
        self.embeddings_menu = QMenu("Insert Embedding", self)
        self.embeddings_menu.setToolTipsVisible(True)
        self.set_embeddings([])
        self.set_items([])

    def set_styles(self, styles: list[PromptStyle]) -> None:
        self.set_items(styles)

    def set_embeddings(self, names: list[str]) -> None:
        """The textual inversions Studio finds (the models folder's embeddings/ and linked folders')."""
        menu = self.embeddings_menu
        menu.clear()
        for name in names:
            action = menu.addAction(_literal(name))
            action.setToolTip("A textual inversion: its name in a prompt stands for its vectors")
            action.triggered.connect(lambda _=False, n=name: self.embedding_chosen.emit(n))
        if not names:
            menu.addAction("None in the models folder's embeddings/").setEnabled(False)

    def set_items(self, items: Sequence[Any]) -> None:
        super().set_items(items)
        if hasattr(self, "embeddings_menu"):  # not yet while the base class sets up
            self.menu().addMenu(self.embeddings_menu)


class PresetsButton(SavedItemsButton):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("settings", "Presets", "Generation presets: the model, size, sampling and "
                         "post-processing chain, saved under a name (your prompt is kept)", "Preset",
                         _preset_summary, parent)


def _preset_summary(preset: Any) -> str:  # noqa: ANN401 - a GenerationPreset
    g = preset.generation
    source = g.generator if g.generator != "diffusers" else (g.model.rsplit("/", 1)[-1] or "no model")
    chain = " > ".join(s.processor for s in g.post) or "none"
    return (f"{source} · {g.width}×{g.height} · {g.steps} steps, {g.scheduler}, CFG {g.cfg_scale:g}\n"
            f"Post-processing: {chain}")
