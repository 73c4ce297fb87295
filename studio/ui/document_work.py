"""What every kind of document change shares: the window and document it works on, running work as tasks,
warnings, waiting for the brush to be let go and refusing pictures too large to open again (DocumentActions
and its parts: picture_opening, mask_edits, canvas_resizing, clipboard_transfer)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QMessageBox

from studio.core import images
from studio.ui.modal import modal
from studio.ui.tasks import Tasks

if TYPE_CHECKING:
    from studio.core.document import Document
    from studio.ui.main_window import MainWindow


class DocumentWork:
    """Set up by DocumentActions.__init__; its parts use these."""

    window: MainWindow
    document: Document
    _tasks: Tasks
    _whole_changes: asyncio.Lock  # one change of the whole canvas or mask at a time

    def run(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        return self._tasks.run(coro)

    async def _warn(self, title: str, text: str) -> None:
        await modal(lambda: QMessageBox.warning(self.window, title, text))

    def _busy_refusal(self) -> bool:
        """Undo and whole-document changes wait until the brush is let go."""
        return self.window.canvas.busy

    async def _brush_let_go(self) -> None:
        while self._busy_refusal():  # a stroke under way: the mask changes once it is let go
            await asyncio.sleep(0.02)

    def _refused_as_too_large(self, width: int, height: int, done: str) -> bool:
        if not images.too_large(width, height):
            return False
        self.window.status.set_message(f"A {width}×{height} picture would be too large for Studio to open again "
                                       f"(over {images.MAX_PIXELS:,} pixels), so it was not {done}; the picture is "
                                       "unchanged.", error=True)
        return True
