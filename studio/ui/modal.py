"""Modal dialogs asked for in the middle of asynchronous work: a warning after a file failed to open, a question
before an install, the offer to restore unsaved work.

A modal dialog runs an event loop of its own until it is answered. Run from inside an asyncio task, under qasync
that loop left every other task unable to wake up, for good ("Cannot enter into task ... while another task is
being executed"): a warning shown while a job ran made the window stop hearing the engine. ``modal`` runs the
dialog from a Qt timer instead, outside any task, and the task waits for the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QTimer

T = TypeVar("T")


async def modal(show: Callable[[], T]) -> T:
    """What ``show`` (which opens a modal dialog and returns its answer) returns, run outside any asyncio task."""
    answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    def ask() -> None:
        try:
            result = show()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting task, which raises it
            if not answer.done():
                answer.set_exception(exc)
        else:
            if not answer.done():
                answer.set_result(result)

    QTimer.singleShot(0, ask)
    return await answer
