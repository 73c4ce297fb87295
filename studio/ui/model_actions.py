"""The window's model features: the Model Library, the model picker's contents (scanned off the UI thread),
the LoRA and VAE pickers' lists, the models folder, and Settings → GPU (memory and speed)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from studio.core.library_embeddings import library_embeddings
from studio.core.model_library import LibraryItem, checkpoints, models_folder_problem, scan_library
from studio.core.models import ModelEntry
from studio.ui.actions import make_action
from studio.ui.canvas_painting import EMPTY_CANVAS_HINT, NO_MODEL_CANVAS_HINT
from studio.ui.gpu_menu import GpuMenu
from studio.ui.modal import modal

CONTROL_PICTURES = "control-pictures"
WRITE_A_PROMPT = "Ready. Write a prompt and press Generate (Ctrl+Enter)."  # the window's greeting
# The status line's first step while the picker lists nothing to generate with: "press Generate" would be refused.
ADD_A_MODEL_FIRST = ("No models yet: add one first. Open the Model Library (Ctrl+Shift+M, or the folder button by "
                     "the model list) to import a .safetensors file or download a starter model.")

if TYPE_CHECKING:
    from studio.core.settings import Settings
    from studio.ui.main_window import MainWindow
    from studio.ui.prompt_panel import PromptPanel


class ModelActions:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self._library_scans = 0
        self._scanned = False  # until the first scan answers, an empty picker says nothing about the library
        self.folder_action = make_action(window, "&Models Folder…", "folder", None, self.choose_folder)
        self.library_action = make_action(window, "Model &Library…", "model", "Ctrl+Shift+M", self.open_library,
                                          "Import, download, link and remove models")
        self.gpu_menu = GpuMenu(window, lambda setting: getattr(self.settings, setting), self._set_gpu_setting)
        self.dialog: QDialog | None = None
        # A control guide's canvas picture is kept here, so the settings and presets can name it by its path.
        self.panel.control_box.keep_folder = window.data_dir / CONTROL_PICTURES
        # Once it is up, the engine prepares for the job the panel describes (if no job came first): it loads the
        # picked model and, on a GPU, runs a step at the panel's size. Keep it told.
        self.panel.model_picker.selection_changed.connect(self._prefer_likely_job)
        self.panel.model_picker.selection_changed.connect(self._show_first_step)
        # Nothing watches the models folders: a model deleted since the list was read is noticed as the list opens.
        self.panel.model_picker.popup_opening.connect(lambda: window.actions_.run(self._forget_deleted_models()))
        for spin in (self.panel.width_spin, self.panel.height_spin, self.panel.cfg_spin):
            spin.valueChanged.connect(self._prefer_likely_job)

    @property
    def settings(self) -> Settings:
        return self.window.settings

    @property
    def panel(self) -> PromptPanel:
        return self.window.prompt_panel

    def refresh(self) -> None:
        """Look through the model library off the UI thread (linked folders can hold hundreds of files)."""
        self._library_scans += 1
        self.window.actions_.run(self._scan_library(self._library_scans))

    def forget_gone_model(self, model: str) -> str:
        """After Generate was refused a model: if its file or folder is gone (deleted since the list was read; no
        watch on the folders), take it off the picker, look through the library again for others gone, and return
        the sentence that says so; "" if it is there. A stat, on this thread only when Generate failed already."""
        if not model or Path(model).exists():
            return ""
        name = self.panel.model_picker.forget_model(model) or Path(model).name
        self.refresh()
        return _gone_sentence([name])

    async def _forget_deleted_models(self) -> None:
        """Take the listed models whose file or folder is gone off the picker, and say which. A stat for each one
        listed, off this thread: a linked folder may be on a drive that is slow to wake."""
        picker = self.panel.model_picker
        listed = picker.listed_model_paths()
        gone = await asyncio.to_thread(lambda: [path for path in listed if not Path(path).exists()])
        names = [name for path in gone if (name := picker.forget_model(path))]  # "" if no longer listed
        if names:
            self.refresh()  # the LoRA menu, VAE and guide pickers list from the last scan: gone from them too
            self.window.status.set_message(_gone_sentence(names))

    async def _scan_library(self, scan: int) -> None:
        items = await asyncio.to_thread(scan_library, self.settings.models_dir, list(self.settings.extra_model_paths))
        if scan == self._library_scans:  # a newer scan started meanwhile: its answer wins
            self.show_library(items)

    def show_library(self, items: list[LibraryItem]) -> None:
        """Fill the model picker, the LoRA menu and the VAE picker from a scan of the library."""
        # "": keep what the picker shows (the person may have chosen since the scan began).
        self._scanned = True
        panel = self.panel
        # The picked model gone, the picker picks another: the LoRA rows and the guides follow the new model and the
        # new library at once, not each in turn.
        with panel.lora_box.marks_held(), panel.control_box.updates_held():
            panel.set_models(checkpoints(items), "", str(self.settings.models_dir))
            panel.lora_box.set_library(items)
            panel.hires_box.set_library(items)
            panel.control_box.set_library(items, self.settings.models_dir)
        # The Insert Embedding menu: the library's embeddings, which are what a job finds by name.
        found = library_embeddings(items).files.values()
        panel.styles_button.set_embeddings(sorted({path.stem for path in found}, key=str.lower))

    def _show_first_step(self) -> None:
        """With nothing to generate with, the status line and the empty canvas say to add a model first; once the
        picker lists one (imported, downloaded, or a plugin generator), they say to write a prompt again."""
        if not self._scanned:
            return
        empty = self.panel.model_combo.count() == 0
        if empty == (self.window.canvas.empty_hint == NO_MODEL_CANVAS_HINT):
            return  # said already: a rescan that still finds nothing does not replace a later message
        status = self.window.status
        self.window.canvas.set_empty_hint(NO_MODEL_CANVAS_HINT if empty else EMPTY_CANVAS_HINT)
        if empty and status.message_label.text() in ("", WRITE_A_PROMPT):  # nothing said since that it would hide
            status.set_message(ADD_A_MODEL_FIRST)
        elif status.message_label.text() == ADD_A_MODEL_FIRST:
            status.set_message(f"{self.panel.model_combo.currentText()} is in the model list: write a prompt and "
                               "press Generate (Ctrl+Enter).")

    def _prefer_likely_job(self) -> None:
        likely = self.panel.likely_request()
        if likely is not None:
            likely = replace(likely, memory=self.settings.memory, speed=self.settings.speed)
        self.window.service.prefer(likely)

    def show_chosen_model(self) -> None:
        """At start-up, before the first scan answers: the model chosen last time, so Generate works at once."""
        chosen = Path(self.settings.generation.model) if self.settings.generation.model else None
        models = [ModelEntry(chosen.stem if chosen.is_file() else chosen.name, chosen)] \
            if chosen is not None and chosen.exists() else []
        self.panel.set_models(models, self.settings.generation.model, str(self.settings.models_dir))

    def open_library(self) -> None:
        from studio.ui.models_dialog import ModelsDialog

        def links_changed() -> None:
            self.window.service.use_linked_dirs(self.settings.extra_model_paths)  # their embeddings
            self.window.persist_settings()

        def changed(items: list[LibraryItem]) -> None:
            self.show_library(items)
            links_changed()

        def caught_up(error: str = "") -> None:  # a change whose scan the closing cancelled: the window scans itself
            if error:  # a removal that failed after the library closed: nothing changed, the status line says why
                self.window.status.set_message(error, error=True)
                return
            self.refresh()
            links_changed()

        def closed() -> None:
            if dialog.change_unseen:
                caught_up()

        dialog = ModelsDialog(self.settings, self.window.cache_dir, changed, self.window, caught_up)
        self.dialog = dialog  # tests reach the open dialog here
        dialog.finished.connect(closed)
        dialog.finished.connect(dialog.deleteLater)  # a child of the window: it would stay for the whole session
        dialog.open()

    def _set_gpu_setting(self, setting: str, value: str, sentence: str) -> None:
        setattr(self.settings, setting, value)
        self.window.status.set_message(sentence)
        self.window.persist_settings()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Models Folder", str(self.settings.models_dir))
        if folder and (problem := models_folder_problem(Path(folder))):
            self.window.actions_.run(modal(lambda: QMessageBox.warning(
                self.window, "Models Folder", f"{problem}; the models folder stays {self.settings.models_dir}.")))
            return
        if folder:
            self.settings.models_dir = Path(folder)
            self.window.service.use_models_dir(self.settings.models_dir)
            self.refresh()
            self.window.persist_settings()


def _gone_sentence(names: list[str]) -> str:
    """What the status line says of listed models found gone (deleted since the list was read)."""
    return (f"The model {names[0]} is gone; removed it from the list." if len(names) == 1 else
            f"The models {', '.join(names)} are gone; removed them from the list.")
