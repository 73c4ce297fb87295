"""The guard around a plugin's code: what a plugin reports reaches the job only in amounts the window can take."""

from __future__ import annotations

from PIL import Image

from studio.plugin_host.guard import GuardedContext

PREVIEW_MAX_SIDE = 512  # what the window is sent at most


class Recorder:
    """An inner JobContext that keeps every report passed on to it."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, int, int, Image.Image | None]] = []
        self.wants_previews = True

    def report_progress(self, step, total, image_index=0, preview=None, preview_box=None):  # noqa: ANN001, ANN201
        self.reports.append((step, total, image_index, preview))

    def is_cancelled(self) -> bool:
        return False


def guarded_with_clock(tmp_path) -> tuple[GuardedContext, Recorder, list[float]]:  # noqa: ANN001
    inner, now = Recorder(), [100.0]
    guarded = GuardedContext(inner, "cpu", tmp_path)
    guarded._clock = lambda: now[0]
    guarded._refilled = guarded._preview_at = now[0] - 10  # as if the job began a while ago
    return guarded, inner, now


def test_a_flood_of_previews_is_throttled_shrunk_and_the_newest_wins(tmp_path):
    guarded, inner, now = guarded_with_clock(tmp_path)
    big = Image.new("RGB", (2048, 1024), (1, 2, 3))
    for step in range(1000):  # a plugin reporting in a tight loop: all at the same moment
        guarded.report_progress(step, 1000, preview=big)
    assert len(inner.reports) == 10  # a short burst of progress, then nothing until time passes
    previews = [r[3] for r in inner.reports if r[3] is not None]
    assert len(previews) == 1 and previews[0].size == (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE // 2)
    assert previews[0] is not big
    newest = Image.new("RGB", (64, 64), (9, 9, 9))
    now[0] += 0.05
    guarded.report_progress(1, 2, preview=newest)  # too soon for another preview: held back
    assert inner.reports[-1][3] is None
    now[0] += 0.06
    guarded.report_progress(2, 2)  # the next report let through carries the newest preview
    assert inner.reports[-1][3].getpixel((0, 0)) == (9, 9, 9) and inner.reports[-1][3] is not newest
    # One second of reports every millisecond: at most 30 progress reports and 10 previews more.
    before = len(inner.reports)
    for _ in range(1000):
        now[0] += 0.001
        guarded.report_progress(1, 2, preview=big)
    later = inner.reports[before:]
    assert len(later) <= 31 and sum(r[3] is not None for r in later) <= 10
    assert all(max(r[3].size) <= PREVIEW_MAX_SIDE for r in later if r[3] is not None)


def test_the_last_step_of_a_flood_always_reaches_the_window(tmp_path):
    """The bar stalled at 10 of 100 until the job ended: the throttle dropped the final report."""
    guarded, inner, _ = guarded_with_clock(tmp_path)
    for step in range(1, 101):
        guarded.report_progress(step, 100)
    assert len(inner.reports) == 11 and inner.reports[-1][:2] == (100, 100)


def test_the_guard_says_whether_previews_are_wanted_and_yes_for_a_context_that_does_not_say(tmp_path):
    """A plugin's own test context written before wants_previews (as the plugin README's was) made the guard raise
    AttributeError when the plugin asked."""
    inner = Recorder()
    inner.wants_previews = False
    assert GuardedContext(inner, "cpu", tmp_path).wants_previews is False
    del inner.wants_previews
    assert GuardedContext(inner, "cpu", tmp_path).wants_previews is True
