"""Prompt styles and generation presets, from the prompt panel's Styles and Presets buttons: saved under a name
asked for (one of the same name, in any case, replaced only if agreed), applied, and deleted after asking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QInputDialog, QMessageBox

from studio.core.settings_sections import GenerationPreset, PromptStyle
from studio.ui import delete_question
from studio.ui.modal import modal

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow
    from studio.ui.prompt_panel import PromptPanel


class StylePresetActions:
    """The styles and presets part of HistoryActions, which sets these up."""

    window: MainWindow
    panel: PromptPanel

    def _connect_styles_and_presets(self) -> None:
        window = self.window
        self.panel.styles_button.save_requested.connect(lambda: window.actions_.run(self.save_style()))
        self.panel.styles_button.delete_requested.connect(lambda s: window.actions_.run(self.ask_delete_style(s)))
        self.panel.styles_button.set_styles(window.settings.styles)
        self.panel.presets_button.chosen.connect(self.apply_preset)
        self.panel.presets_button.save_requested.connect(lambda: window.actions_.run(self.save_preset()))
        self.panel.presets_button.delete_requested.connect(lambda p: window.actions_.run(self.ask_delete_preset(p)))
        self.panel.presets_button.set_items(window.settings.presets)

    # -- styles ------------------------------------------------------------------------------------
    async def save_style(self) -> None:
        """The prompt boxes saved as a style under a name asked for; one of that name is replaced only if agreed."""
        prompt, negative = self.panel.prompt_edit.toPlainText(), self.panel.negative_edit.toPlainText()
        name = await self._new_name("style", [s.name for s in self.window.settings.styles])
        if name:
            self.add_style(name, prompt, negative)

    def add_style(self, name: str, prompt: str, negative: str) -> None:
        styles = [s for s in self.window.settings.styles if not _same_name(s.name, name)]
        template = prompt if "{prompt}" in prompt else f"{{prompt}}, {prompt}" if prompt.strip() else "{prompt}"
        styles.append(PromptStyle(name=name, prompt=template, negative_prompt=negative))
        self.window.settings.styles = sorted(styles, key=lambda s: s.name.lower())
        self.panel.styles_button.set_styles(self.window.settings.styles)
        self.window.persist_settings()
        self.window.status.set_message(f"Saved the style {name!r}.")

    async def ask_delete_style(self, style: PromptStyle) -> None:
        if await modal(lambda: delete_question.ask_to_delete(
                self.window, "Delete Style", f"Delete the style {style.name!r}? This cannot be undone.")):
            self.delete_style(style)

    def delete_style(self, style: PromptStyle) -> None:
        self.window.settings.styles = [s for s in self.window.settings.styles if s.name != style.name]
        self.panel.styles_button.set_styles(self.window.settings.styles)
        self.window.persist_settings()

    # -- presets -----------------------------------------------------------------------------------
    async def save_preset(self) -> None:
        """The current settings saved as a preset under a name asked for; one of that name is replaced only if
        agreed."""
        name = await self._new_name("preset", [p.name for p in self.window.settings.presets])
        if name:
            self.add_preset(name)

    def add_preset(self, name: str) -> None:
        """The current settings (not the prompt, negative prompt, seed or control guides: like the prompt, the guides
        belong to the picture being made, not to a way of working) saved as ``name``, replacing one."""
        current = self.window.generation_defaults()
        kept = current.model_copy(update={"prompt": "", "negative_prompt": "", "seed": -1, "controls": []}, deep=True)
        presets = [p for p in self.window.settings.presets if not _same_name(p.name, name)]
        presets.append(GenerationPreset(name=name, generation=kept))
        self.window.settings.presets = sorted(presets, key=lambda p: p.name.lower())
        self.panel.presets_button.set_items(self.window.settings.presets)
        self.window.persist_settings()
        self.window.status.set_message(f"Saved the preset {name!r}.")

    def apply_preset(self, preset: GenerationPreset) -> None:
        """The preset's settings, keeping the prompt, negative prompt, seed and control guides as they are."""
        current = self.panel.defaults()
        chosen = preset.generation.model_copy(update={
            "prompt": current.prompt, "negative_prompt": current.negative_prompt, "seed": current.seed,
            "controls": current.controls}, deep=True)
        notes = []
        if chosen.generator != "diffusers" and not self.panel.model_picker.lists_generator(chosen.generator):
            # Its plugin is gone or off: the rest of the preset applies, the current model or generator stays.
            notes.append(f"The generator {chosen.generator!r} is not installed and enabled; kept the current one.")
            chosen = chosen.model_copy(update={"generator": current.generator, "model": current.model})
        self.panel.load_defaults(chosen)
        if chosen.generator == "diffusers":
            notes += self.panel.fill(model_path=chosen.model or None)
        self.window.settings.generation.post = list(chosen.post)
        self.window.plugin_actions.refresh()
        self.window.persist_settings()
        self.window.status.set_message(" ".join([f"Applied the preset {preset.name!r}.", *notes]))

    async def ask_delete_preset(self, preset: GenerationPreset) -> None:
        if await modal(lambda: delete_question.ask_to_delete(
                self.window, "Delete Preset", f"Delete the preset {preset.name!r}? This cannot be undone.")):
            self.delete_preset(preset)

    def delete_preset(self, preset: GenerationPreset) -> None:
        self.window.settings.presets = [p for p in self.window.settings.presets if p.name != preset.name]
        self.panel.presets_button.set_items(self.window.settings.presets)
        self.window.persist_settings()

    async def _new_name(self, kind: str, taken: list[str]) -> str:
        """A name asked for, stripped; "" when none was given or replacing the one of that name was declined."""
        name, ok = await modal(lambda: QInputDialog.getText(self.window, f"Save {kind.title()}",
                                                            f"Name of the {kind}:"))
        name = name.strip()
        if not ok:
            return ""
        if not name:
            self.window.status.set_message(f"A {kind} needs a name; nothing was saved.", error=True)
            return ""
        # "Second" and "second" were kept as two: a menu of names that differ only in case is a trap.
        existing = next((t for t in taken if _same_name(t, name)), None)
        if existing is not None and not await self._agreed(
                f"Replace {kind.title()}", f"A {kind} named {existing!r} exists; replace it?"):
            return ""
        return name

    async def _agreed(self, title: str, question: str) -> bool:
        answer = await modal(lambda: QMessageBox.question(
            self.window, title, question, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No))
        return answer == QMessageBox.StandardButton.Yes


def _same_name(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()
