"""The window's background tasks: kept until they end, and an error nobody handled is logged, not dropped."""

from __future__ import annotations

import asyncio
import logging

from studio.ui.tasks import Tasks


def test_a_task_that_fails_unhandled_is_logged_and_let_go(qtbot, qt_loop, caplog):  # noqa: ANN001
    tasks = Tasks()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("a bug in a slot")

    async def waits() -> None:
        await asyncio.sleep(60)

    with caplog.at_level(logging.ERROR, logger="studio.ui.tasks"):
        tasks.run(fails())
        waiting = tasks.run(waits())
        qtbot.waitUntil(lambda: len(tasks) == 1, timeout=5000)
    assert "A task of the window failed" in caplog.text and "a bug in a slot" in caplog.text
    tasks.cancel_all()
    qtbot.waitUntil(lambda: len(tasks) == 0, timeout=5000)
    assert waiting.cancelled()
