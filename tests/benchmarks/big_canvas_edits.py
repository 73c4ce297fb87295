"""Benchmark: what each whole-canvas edit costs the window's main thread on a big picture (4096x4096 by default).

Studio's real main window (offscreen unless a display is set) runs each edit as a person would, from the menu
action to the repainted canvas, with a 2 ms timer probe on the main thread; it prints the longest wall-clock gap
between two ticks (what a person feels as a freeze), the p99 gap and the main thread's own longest CPU slice.
No model is needed. Run: python tests/benchmarks/big_canvas_edits.py [--size 4096] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_window import real_window  # noqa: E402


GIVE_UP_S = 30.0  # an edit not done by then is reported as such, and the benchmark goes on


async def measure(label: str, edit: Callable[[], Any], done: Callable[[], bool]) -> bool:
    """Run one edit under the probe and print its line; False, with a line saying so, if it was not done within
    GIVE_UP_S (a wait that could never end hung the benchmark for good)."""
    from test_ui_responsiveness import MainThreadProbe

    loop = asyncio.get_running_loop()
    probe = MainThreadProbe()
    probe.start()
    await asyncio.sleep(0.05)
    started = edit()  # a task, for the edits that work in a worker thread
    deadline = loop.time() + GIVE_UP_S
    while not done() or (isinstance(started, asyncio.Future) and not started.done()):
        if loop.time() > deadline:
            probe.stop()
            print(f"  {label:<36} NOT DONE: gave up after {GIVE_UP_S:.0f} s", flush=True)
            return False
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.15)  # the repaints that follow
    print(f"  {label:<36} {probe.stop()}", flush=True)
    return True


async def jump(window: Any, label: str, position: int) -> None:
    """A click on the history panel's row for ``position``, kept to the steps the history holds (past
    HISTORY_BYTES it forgets its oldest ones); the line says where it went."""
    document = window.document
    target = max(0, min(position, len(document.history_labels())))
    await measure(f"{label} ({document.history_position}->{target})",
                  lambda: window.history_panel.position_requested.emit(target),
                  lambda: document.history_position == target)


async def edits(window: Any, size: int, rounds: int) -> None:
    import numpy as np
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    window.start()
    document, actions = window.document, window.actions_
    small = np.random.default_rng(0).integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
    picture = Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR)
    await window.canvas.convert_ahead(picture)
    document.set_image(picture, "Open")
    clipboard = QGuiApplication.clipboard()
    wide, framed = (size + 64, size), (size + 256, size + 256)
    for number in range(1, rounds + 1):
        print(f"round {number}:")
        await measure("Extend Canvas by 64 px on the right", lambda: actions.extend_canvas(0, 0, 64, 0, fill=False),
                      lambda: document.size == wide)
        await measure("Undo it", actions.undo.trigger, lambda: document.size == (size, size))
        await measure("Redo it", actions.redo.trigger, lambda: document.size == wide)
        await measure("Undo it again", actions.undo.trigger, lambda: document.size == (size, size))
        await measure("Extend by 128 px on every side", lambda: actions.extend_canvas(128, 128, 128, 128, False),
                      lambda: document.size == framed)
        await measure("Undo it", actions.undo.trigger, lambda: document.size == (size, size))
        await measure("Invert Mask (all of it)", actions.invert, lambda: True)
        await measure("Shrink Mask 8 px", lambda: actions.grow(-8), lambda: True)
        await measure("Clear Mask", actions.clear, lambda: True)
        await measure("Undo it / redo it", lambda: (actions.undo.trigger(), actions.redo.trigger()), lambda: True)
        steps = document.history_position
        await jump(window, "History: 3 steps back", steps - 3)
        await jump(window, "History: 3 steps forward", steps)
        clipboard.clear()
        await measure("Copy Picture", actions.copy_picture, lambda: not clipboard.image().isNull())
        document.set_image(Image.new("RGB", (512, 512)), "A small picture")
        await measure("Paste it back", actions.paste_from_clipboard, lambda: document.size == (size, size))
        await measure("Scale Image to half", lambda: actions.scale_image(size // 2, size // 2),
                      lambda: document.size == (size // 2, size // 2))
        await measure("Undo it", actions.undo.trigger, lambda: document.size == (size, size))
        await measure("3 results land in a stroke: let go", *await results_in_a_stroke(window, document.image))
        await jump(window, "History: back over those 3", document.history_position - 3)


async def results_in_a_stroke(window: Any, picture: Any) -> tuple[Callable[[], None], Callable[[], bool]]:
    """Press the brush, let three results (each a changed box of the picture) land as the engine's events do, and
    return the release of the brush (what is measured) with its condition of done."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    from studio.core.events import GeneratedImage, JobOutput
    from studio.core.metadata import Recipe
    from studio.ui.canvas_tools import BRUSH

    canvas, size = window.canvas, picture.width
    viewport, at = canvas.viewport(), canvas.mapFromScene(QPointF(size * 0.7, size * 0.7))
    results = []
    for k in range(3):
        result = (results[-1] if results else picture).copy()
        result.paste((250, 0, 60 * k), (size // 40 * (k + 1), size // 10, size // 4 * (k + 1), size // 3))
        results.append(result)
    recipe = Recipe("p", "", 4, "Euler", 7, 1, size, size, "tiny-sd")
    canvas.set_tool(BRUSH)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=at)
    QTest.mouseMove(viewport, at + type(at)(20, 0))
    for result in results:  # as JobEvents takes each JobOutput
        await window.results.take_in_ahead(result, None)
        window.handle_event(JobOutput(1, GeneratedImage(result, recipe), 0))
    return (lambda: QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=at + type(at)(20, 0)),
            lambda: window.document.image is results[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.size}x{args.size} picture; longest gap, p99 gap and the main thread's longest own slice:")
    with real_window() as (window, _service, run):
        run(edits(window, args.size, args.rounds))


if __name__ == "__main__":
    main()
