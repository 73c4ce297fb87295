"""How the bench compares the two sides' pictures of the same seeds."""

from __future__ import annotations

import pytest
from PIL import Image

from studio.engine.bench_measures import TOLERANCE, same_seed_difference


def test_the_difference_is_measured_per_pixel_and_judged_only_between_sides_of_one_precision() -> None:
    picture = Image.new("RGB", (4, 4), (10, 10, 10))
    changed = picture.copy()
    changed.putpixel((0, 0), (10 + int(TOLERANCE[1]) + 1, 10, 10))  # one value just past the largest accepted
    assert same_seed_difference([picture], [picture.copy()]) == {
        "identical": True, "mean": 0.0, "max": 0, "within_tolerance": True}
    apart = same_seed_difference([picture], [changed])
    assert not apart["identical"] and apart["max"] == TOLERANCE[1] + 1 and apart["within_tolerance"] is False
    assert apart["mean"] == pytest.approx((TOLERANCE[1] + 1) / 48)  # one of 4x4x3 values
    assert same_seed_difference([picture], [changed], same_precision=False)["within_tolerance"] is None
