"""The bench's main-thread probe sees the interpreter being held, and only that."""

from __future__ import annotations

import time

from studio.engine.thread_probe import ThreadProbe


def test_no_figures_before_the_probe_has_run() -> None:
    assert ThreadProbe().figures() is None


def test_a_call_that_holds_the_interpreter_shows_as_one_long_gap() -> None:
    probe = ThreadProbe()
    with probe:
        time.sleep(0.05)  # waiting releases the interpreter: regular ticks
        started = time.perf_counter()
        sum(range(20_000_000))  # one C loop that never lets another Python thread run
        held_ms = (time.perf_counter() - started) * 1000
        time.sleep(0.02)
    figures = probe.figures()
    assert figures is not None and figures.ticks >= 10
    assert figures.max_ms >= 0.8 * held_ms >= 40, (figures, held_ms)
    assert figures.median_ms < 0.5 * figures.max_ms


def test_spans_are_pooled_across_starts() -> None:
    probe = ThreadProbe(interval=0.002)
    for _ in range(2):
        with probe:
            time.sleep(0.03)
    figures = probe.figures()
    assert figures is not None and figures.ticks >= 10
    assert figures.as_dict().keys() == {"ticks", "p99_ms", "max_ms", "median_ms"}
