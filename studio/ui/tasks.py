"""Coroutines a widget starts on the window's loop (store work off the window's thread, imports, dialogs' jobs)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger(__name__)


def loop_can_run_tasks() -> bool:
    """Whether a task started now would run: the window's loop is there and not closed (a script that closes the
    window after its loop has ended leaves nothing to ask from)."""
    try:
        return not asyncio.get_event_loop().is_closed()
    except RuntimeError:  # no loop at all
        return False


class Tasks:
    """Keeps each task until it ends (asyncio holds tasks only weakly, so one could be collected mid-way), and logs
    one that ended with an error nobody handled instead of dropping it."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task] = set()

    def run(self, coro: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._running.add(task)
        task.add_done_callback(self._ended)
        return task

    def __len__(self) -> int:
        """How many are still running."""
        return len(self._running)

    def cancel_all(self) -> None:
        """Every task still running is cancelled (a dialog closing)."""
        for task in list(self._running):
            task.cancel()

    def _ended(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("A task of the window failed", exc_info=error)
