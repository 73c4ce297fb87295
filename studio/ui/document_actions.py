"""Everything the person does to the document outside generating: opening files, clipboard, drag and drop,
undo/redo, mask edits and canvas size (saving is PictureSaving's). Long file work runs off the UI thread.
The parts live in picture_opening, mask_edits, canvas_resizing and clipboard_transfer; this module makes the
actions and words Undo/Redo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QProgressDialog

from studio.ui.actions import make_action
from studio.ui.canvas_resizing import CanvasResizing
from studio.ui.clipboard_transfer import ClipboardTransfer
from studio.ui.mask_edits import MaskEdits
from studio.ui.picture_saving import PictureSaving
from studio.ui.tasks import Tasks

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


# The mixins first: QObject's __init__ (the window as parent) is then the one super() reaches.
class DocumentActions(MaskEdits, CanvasResizing, ClipboardTransfer, QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.document = window.document
        self._tasks = Tasks()
        self.scaling_progress: QProgressDialog | None = None  # the busy bar of a big scale under way
        self._whole_changes = asyncio.Lock()  # one change of the whole canvas or mask at a time
        self.saving = PictureSaving(window, self.run, self._warn)
        a = self._action
        self.open = a("&Open Image…", "open", QKeySequence.StandardKey.Open, self.open_image_dialog)
        self.save = a("&Save Canvas As…", "save", QKeySequence.StandardKey.Save, self.saving.save_image_dialog,
                      "Save the canvas picture as PNG, JPEG or WebP")
        self.open_mask = a("Open &Mask…", "layers-mask", None, self.open_mask_dialog,
                           "Load a mask from a picture (white = regenerate)")
        self.save_mask = a("Save Mas&k As…", "save-as", None, self.saving.save_mask_dialog,
                           "Save the mask as a PNG")
        self.undo = a("&Undo", "undo", QKeySequence.StandardKey.Undo, self.document_undo)
        self.redo = a("&Redo", "redo", None, self.document_redo)
        self.redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self._named_revision: int | None = None  # the history_revision the words Undo/Redo were last set for
        self.document.add_listener(self._name_history_actions)
        self.copy = a("&Copy Picture", "copy", QKeySequence.StandardKey.Copy, self.copy_picture)
        self.copy_masked = a("Copy &Masked Area", "copy", "Ctrl+Shift+C", self.copy_masked_area,
                             "Copy the masked part of the picture, transparent elsewhere")
        self.paste = a("&Paste", "paste", QKeySequence.StandardKey.Paste, self.paste_from_clipboard)
        self.extend = a("&Extend Canvas…", "extend", None, self.extend_dialog,
                        "Add pixels on any side and fill them (outpainting)")
        self.scale = a("&Scale Image…", "scale", None, self.scale_dialog)
        self.invert_mask = a("&Invert Mask", "invert", "Ctrl+I", self.invert)
        self.clear_mask = a("&Clear Mask", "mask-clear", "Ctrl+Shift+A", self.clear)

    def _action(self, text: str, icon_name: str, shortcut: Any, slot: Callable[[], Any], tip: str = "") -> QAction:
        return make_action(self.window, text, icon_name, shortcut, slot, tip)

    # -- history ---------------------------------------------------------------------------------
    def document_undo(self) -> None:
        # Said, so the line no longer shows a message about the step just taken back ("... the picture is unchanged").
        doc = self.document
        if not self._busy_refusal() and doc.undo():
            self.window.status.set_message(f"Undid {doc.redo_description()}.")

    def document_redo(self) -> None:
        doc = self.document
        if not self._busy_refusal() and doc.redo():
            self.window.status.set_message(f"Redid {doc.undo_description()}.")

    def _name_history_actions(self, _change: object = None) -> None:
        """The Edit menu names the step each would take back or make again, as the status line then says it."""
        # A brush's every dab tells the document's listeners; only a step done, undone or redone renames these.
        if self._named_revision == self.document.history_revision:
            return
        self._named_revision = self.document.history_revision
        for action, word, step in ((self.undo, "Undo", self.document.undo_description()),
                                   (self.redo, "Redo", self.document.redo_description())):
            text = f"&{word} {step.replace('&', '&&')}".rstrip()
            if action.text() != text:
                action.setText(text)
                action.setToolTip(f"{word} {step}".rstrip())

    def open_folder(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
