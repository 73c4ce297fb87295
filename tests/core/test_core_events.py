"""Job progress for people: step speed within a picture, rates and durations as text."""

from __future__ import annotations

import pytest

from studio.core.events import JobProgress, StepRate, format_rate, format_seconds


def progress(step: int, elapsed: float, image: int = 0, job: int = 1, total: int = 20) -> JobProgress:
    return JobProgress(job, step, total, image, 2, elapsed)


def test_the_rate_counts_steps_from_the_pictures_first_step_not_from_the_model_load() -> None:
    rate = StepRate()
    assert rate.update(progress(1, 5.0)) is None  # 5 s of loading before the first step
    assert rate.update(progress(2, 5.5)) == pytest.approx(2.0)
    assert rate.update(progress(5, 6.0)) == pytest.approx(4.0)  # 4 steps in the last second


def test_the_rate_starts_again_for_the_next_picture_and_the_next_job() -> None:
    rate = StepRate()
    rate.update(progress(1, 1.0))
    rate.update(progress(20, 2.0))
    assert rate.update(progress(1, 3.0, image=1)) is None  # the decode between pictures is not a step
    assert rate.update(progress(3, 3.5, image=1)) == pytest.approx(4.0)
    assert rate.update(progress(4, 0.2, job=2)) is None
    assert rate.update(progress(4, 0.3, job=2)) is None  # the same step again: no time has passed for a step


@pytest.mark.parametrize(("per_second", "text"), [(7.43, "7.4 it/s"), (1.0, "1.0 it/s"), (0.4, "2.50 s/it"),
                                                   (85.0, "85.0 it/s")])
def test_rates_read_as_tqdm_and_a1111_show_them(per_second: float, text: str) -> None:
    assert format_rate(per_second) == text


@pytest.mark.parametrize(("seconds", "text"), [(0.2734, "0.27 s"), (9.994, "9.99 s"), (12.34, "12.3 s"),
                                               (125.4, "2 min 05 s"), (3600.0, "60 min 00 s")])
def test_a_fast_gpus_picture_keeps_its_hundredths_and_long_jobs_read_in_minutes(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
