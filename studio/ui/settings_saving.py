"""Keeping the window's settings on disk: at once on quit (and after a folder changes), otherwise in a worker
thread once the person pauses, so the write (with fsync) never holds the window; the newer of two saves wins.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from studio.core.errors import StudioError
from studio.core.settings_writing import OrderedSaves
from studio.ui.window_layout import capture_layout

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

PAUSE_MS = 1500  # how long the person pauses before a background save


class SettingsSaving(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)  # its timer is the window's child: closing the window stops it
        self.window = window
        self._saves = OrderedSaves()  # the quit save and a background one in flight: the newer wins
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PAUSE_MS)
        self._timer.timeout.connect(self._save_in_background)

    def save_now(self) -> None:
        window, settings = self.window, self.window.settings
        self._timer.stop()
        window.plugin_actions.store_now()
        settings.generation = window.generation_defaults()
        settings.window = capture_layout(window)
        try:
            self._saves.save(settings, self._saves.ticket())
        except StudioError as exc:
            window.status.set_message(str(exc), error=True)

    def save_soon(self) -> None:
        self._timer.start()

    def _save_in_background(self) -> None:
        window, settings = self.window, self.window.settings
        settings.generation = window.generation_defaults()
        settings.window = capture_layout(window)
        snapshot, ticket = settings.model_copy(deep=True), self._saves.ticket()

        async def save() -> None:
            try:
                await asyncio.to_thread(self._saves.save, snapshot, ticket)
            except StudioError as exc:
                window.status.set_message(str(exc), error=True)

        window.actions_.run(save())
