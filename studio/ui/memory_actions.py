"""Settings → Models in Memory… and Free Memory: seeing what the engine holds loaded and letting it go, as
ComfyUI's "Unload models" and A1111's "Unload SD checkpoint" do (the dialog: memory_dialog)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from studio.core.errors import first_line
from studio.core.held_memory import MemoryFreed
from studio.ui.actions import make_action

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow
    from studio.ui.memory_dialog import MemoryDialog

log = logging.getLogger(__name__)
FREE_MEMORY_KEYS = "Ctrl+Shift+F"
KEEP_SAID_SECONDS = 10.0


class MemoryActions:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.dialog: MemoryDialog | None = None  # the open one (tests reach it here)
        self._freed_at = -KEEP_SAID_SECONDS  # when memory was last freed
        self.models_action = make_action(window, "Models &in Memory…", "cpu", None, self.open_dialog,
                                         "See which models are loaded, and free their memory")
        self.free_action = make_action(window, "&Free Memory", "remove", FREE_MEMORY_KEYS, lambda: self.free(True),
                                       "Let every loaded model go, to give the memory to another program (the "
                                       f"next job loads its model again) ({FREE_MEMORY_KEYS})")
        # The guides' thumbnails load the depth model outside the engine's jobs: Models in Memory hears of it.
        window.prompt_panel.control_box.depth.held_changed.connect(window.service.held_models_changed)

    def open_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.raise_()
            self.dialog.activateWindow()
            return
        from studio.ui.memory_dialog import MemoryDialog  # when first opened: nothing of it on the start-up path

        dialog = MemoryDialog(self.window.service, self.free, self.window)
        self.dialog = dialog
        dialog.finished.connect(self._dialog_closed)
        dialog.show()  # not modal: it can stay open, following the jobs, while the person works

    def _dialog_closed(self) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()  # a child of the window: it would stay for the whole session
            self.dialog = None

    def free(self, in_use: bool) -> asyncio.Task:
        """Ask the engine to let its kept models go (with ``in_use``, every model): at once between jobs, else when
        the running job ends. The status bar says what went when it has (``show_freed``)."""
        if self.window.service.running() is not None:
            from studio.ui.memory_dialog import AFTER_THE_JOB

            self.window.status.set_message(AFTER_THE_JOB)
        return self.window.actions_.run(self._free(in_use))

    async def _free(self, in_use: bool) -> MemoryFreed | None:
        try:
            return await self.window.service.release_memory(in_use)
        except Exception as exc:  # noqa: BLE001 - said in the status bar; the window goes on
            log.error("Freeing memory failed", exc_info=True)
            self.window.status.set_message(f"The memory could not be freed: {first_line(exc)}", error=True)
            return None

    def show_freed(self, freed: MemoryFreed) -> None:
        """The engine's answer, in order with the jobs' events: a job queued after it says Loading… after this. A
        second free that found nothing (the key pressed twice) leaves the first one's words in place."""
        if freed.models or freed.size or time.monotonic() - self._freed_at > KEEP_SAID_SECONDS:
            self.window.status.set_message(freed.summary())
        if freed.models or freed.size:
            self._freed_at = time.monotonic()
        if freed.in_use_freed:
            self.window.status.set_model("")
            self.window.setWindowTitle("Studio")
