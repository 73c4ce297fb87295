"""How long a Python thread beside the engine waits: the window's share of the interpreter while a job runs.

The Qt main thread needs the GIL for every Python slot and paint; while the engine thread runs Python (the
pipeline's loop, a graph capture) it waits. This probe is that main thread without Qt: a thread that asks to
wake every ``interval`` seconds and records the gaps it actually got, so ``studio bench`` can report them where
no display (or no PySide6) is installed, next to the seconds per image.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

INTERVAL_S = 0.002  # as the window's own probe (tests/ui/test_ui_responsiveness.py)


@dataclass(frozen=True)
class ProbeFigures:
    ticks: int
    p99_ms: float
    max_ms: float
    median_ms: float

    def as_dict(self) -> dict[str, float | int]:
        return {"ticks": self.ticks, "p99_ms": self.p99_ms, "max_ms": self.max_ms, "median_ms": self.median_ms}


class ThreadProbe:
    """Collects gaps between wake-ups while running; gaps from every start/stop span are pooled."""

    def __init__(self, interval: float = INTERVAL_S) -> None:
        self._interval = interval
        self._gaps: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ThreadProbe:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="studio-bench-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(self._interval):
            now = time.perf_counter()
            self._gaps.append(now - last)
            last = now

    def figures(self) -> ProbeFigures | None:
        """The pooled gaps in milliseconds (None before any tick)."""
        if not self._gaps:
            return None
        gaps = sorted(self._gaps)
        return ProbeFigures(len(gaps), gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] * 1000, gaps[-1] * 1000,
                            gaps[len(gaps) // 2] * 1000)
