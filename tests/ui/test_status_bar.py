"""The status bar while a job runs: step, speed (once two steps of a picture are in) and elapsed time."""

from __future__ import annotations

import re

from studio.core.events import JobProgress
from studio.ui.status_bar import StudioStatusBar


def test_the_progress_shows_the_step_speed_of_the_current_picture(qtbot) -> None:  # noqa: ANN001
    bar = StudioStatusBar()
    qtbot.addWidget(bar)
    bar.job_started()
    assert bar.progress_label.text().startswith("Preparing…")
    bar.job_progress(JobProgress(1, 1, 20, 0, 2, 4.0))  # after a 4 s model load
    assert re.fullmatch(r"Image 1/2 · Step 1/20 · \d+\.\d s", bar.progress_label.text())
    bar.job_progress(JobProgress(1, 11, 20, 0, 2, 5.25))
    assert re.fullmatch(r"Image 1/2 · Step 11/20 · 8\.0 it/s · \d+\.\d s", bar.progress_label.text())
    bar.job_progress(JobProgress(1, 1, 20, 1, 2, 7.0))  # the next picture: its speed is measured anew
    assert "it/s" in bar.progress_label.text()  # the last figure stays until the new one is known
    bar.job_progress(JobProgress(1, 3, 20, 1, 2, 11.0))
    assert re.fullmatch(r"Image 2/2 · Step 3/20 · 2\.00 s/it · \d+\.\d s", bar.progress_label.text())
    bar.job_ended()
    assert bar.progress_label.text() == ""
    bar.job_started()  # a new job starts without the last one's speed
    bar.job_progress(JobProgress(2, 1, 4, 0, 1, 0.5))
    assert "it/s" not in bar.progress_label.text() and "s/it" not in bar.progress_label.text()
