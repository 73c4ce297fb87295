"""The Qt main thread never stalls while jobs run: a 2 ms timer probe on the real main window.

Two measures, both printed so they can be reported:
- wall-clock gaps between probe ticks (what the person feels: includes waiting for the GIL and for a core);
- the main thread's own CPU time between ticks (what Studio's UI code costs; other load on the machine
  does not inflate it, so it is asserted tightly).
Other load can only add to the gaps, never remove them, so the wall-clock targets are judged on the best
of a few jobs (the first one, with its first-call costs, is measured too); when even a job-free control run on
this machine misses them, it is too loaded to judge and the test says so instead of failing.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass

import pytest
from PySide6.QtCore import Qt, QTimer

WAIT_MS = 120_000
INTERVAL_MS = 2
TARGET_P99_MS = 8.0  # the target for the 99th percentile gap
TARGET_MAX_MS = 16.0  # ... and for the longest one (a frame at 60 Hz)
MAX_CPU_MS = TARGET_MAX_MS  # the main thread's own work between two ticks never drops a 60 Hz frame (under load too)
ATTEMPTS = 5  # jobs at most; it stops at the first (after the model load) that meets the targets


@dataclass(frozen=True)
class ProbeResult:
    ticks: int
    max_gap_ms: float
    p99_gap_ms: float
    median_gap_ms: float
    max_cpu_ms: float  # main-thread CPU time between two ticks, at most

    def __str__(self) -> str:
        return (f"{self.ticks} ticks: max gap {self.max_gap_ms:.1f} ms, p99 {self.p99_gap_ms:.1f} ms, median "
                f"{self.median_gap_ms:.2f} ms; main-thread work between ticks at most {self.max_cpu_ms:.1f} ms")

    def meets_targets(self) -> bool:
        return self.p99_gap_ms <= TARGET_P99_MS and self.max_gap_ms <= TARGET_MAX_MS


class MainThreadProbe:
    """A repeating precise timer on the main thread; records wall and thread-CPU time at every tick."""

    def __init__(self, interval_ms: int = INTERVAL_MS) -> None:
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._wall: list[float] = []
        self._cpu: list[float] = []

    def _tick(self) -> None:
        self._wall.append(time.perf_counter())
        self._cpu.append(time.thread_time())

    def start(self) -> None:
        self._tick()
        self._timer.start()

    def gaps_ms(self) -> list[float]:
        return [(b - a) * 1000 for a, b in zip(self._wall, self._wall[1:])]

    def stop(self) -> ProbeResult:
        self._timer.stop()
        self._tick()
        gaps = sorted(self.gaps_ms())
        cpu = max(b - a for a, b in zip(self._cpu, self._cpu[1:]))
        return ProbeResult(len(self._wall), gaps[-1], gaps[int(len(gaps) * 0.99)], statistics.median(gaps),
                           cpu * 1000)


def _run_job(qtbot, window, number: int, images: int) -> ProbeResult:  # noqa: ANN001
    """Generate with the probe running, from the click to the results on the canvas and in the gallery."""
    rows = window.gallery.model.rowCount()
    probe = MainThreadProbe()
    probe.start()
    window.generate()
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == number, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == rows + images, timeout=WAIT_MS)
    qtbot.wait(150)  # thumbnails, repaints and the autosave that follow a result
    return probe.stop()


def _control(qtbot, seconds: float = 1.5) -> ProbeResult:  # noqa: ANN001
    """The probe with no job but one busy core (a matmul loop that releases the GIL): what this machine's
    scheduler alone allows right now."""
    import threading

    import torch

    stop = threading.Event()

    def burn() -> None:
        a = torch.randn(384, 384)
        while not stop.is_set():
            a @ a

    thread = threading.Thread(target=burn, daemon=True)
    probe = MainThreadProbe()
    thread.start()
    probe.start()
    qtbot.wait(int(seconds * 1000))
    result = probe.stop()
    stop.set()
    thread.join()
    return result


def test_the_main_thread_never_stalls_while_jobs_run(qtbot, window):  # noqa: ANN001
    # The engine's start-up imports hold the GIL for long stretches (dlopen, unmarshalling); no job runs
    # then, and the probe measures jobs, so wait for the engine to be ready.
    qtbot.waitUntil(lambda: window.status.device_label.text().startswith("CPU"), timeout=WAIT_MS)
    panel = window.prompt_panel
    panel.prompt_edit.setPlainText("a lighthouse at dusk")
    panel.steps_spin.setValue(20)
    panel.batch_spin.setValue(2)
    results = []
    for number in range(1, ATTEMPTS + 1):
        results.append(_run_job(qtbot, window, number, images=2))
        if number > 1 and results[-1].meets_targets():
            break
    print("\nmain thread during a tiny-model job (2 images x 20 steps at 64x64, previews on):")
    for number, result in enumerate(results, 1):
        print(f"  job {number}{' (the first after start)' if number == 1 else ''}: {result}")
    # Studio's own work on the main thread: independent of other load on the machine, so always asserted.
    worst_cpu = max(r.max_cpu_ms for r in results)
    assert worst_cpu <= MAX_CPU_MS, f"the main thread's own work blocked it for {worst_cpu:.1f} ms"
    best = min(results, key=lambda r: (not r.meets_targets(), r.p99_gap_ms, r.max_gap_ms))
    if best.meets_targets():
        return
    control = _control(qtbot)
    print(f"  control (no job, one busy core): {control}")
    if not control.meets_targets():
        pytest.skip(f"this machine is too loaded to judge wall-clock gaps (even without a job: {control}); "
                    f"the best job measured {best}")
    # What is left between the targets and twice them is the main thread waiting for the GIL while the engine
    # thread runs Python (the tiny model's steps are almost all Python; on a GPU the fast path's replayed graph
    # leaves little), in slices of 1 ms (engine.worker.share_the_interpreter): said, not failed. A real stall
    # (a collection, a relayout, I/O on this thread) goes past it.
    within = best.p99_gap_ms <= 2 * TARGET_P99_MS and best.max_gap_ms <= 2 * TARGET_MAX_MS
    assert within, (f"the main thread stalled during every job (targets p99 <= {TARGET_P99_MS} ms, max <= "
                    f"{TARGET_MAX_MS} ms, at most twice that allowed for GIL time-slicing); the best: {best}")
    warnings.warn(f"the CPU wall-clock targets were missed by GIL time-slicing with the engine thread: {best}",
                  stacklevel=1)


def test_full_size_results_and_previews_cost_the_main_thread_less_than_a_frame(qtbot, window):  # noqa: ANN001
    """A GPU delivers SDXL-sized (1024x1024) pictures and their previews several times a second; each one is
    taken in on this thread (the document's undo step, the canvas, the preview). The tiny model makes them
    at that size here; the main thread's own work between two ticks is what is judged (the engine's
    1024x1024 decode on this CPU competes for the interpreter, which a GPU's does not)."""
    qtbot.waitUntil(lambda: window.status.device_label.text().startswith("CPU"), timeout=WAIT_MS)
    panel = window.prompt_panel
    panel.prompt_edit.setPlainText("a lighthouse at dusk")
    panel.steps_spin.setValue(4)
    panel.batch_spin.setValue(2)
    panel.set_size(1024, 1024)
    results = [_run_job(qtbot, window, number, images=2) for number in (1, 2)]
    print("\nmain thread during a tiny-model job making 1024x1024 pictures (2 images x 4 steps):")
    for number, result in enumerate(results, 1):
        print(f"  job {number}: {result}")
    worst_cpu = max(r.max_cpu_ms for r in results)
    assert worst_cpu <= MAX_CPU_MS, f"the main thread's own work blocked it for {worst_cpu:.1f} ms"
