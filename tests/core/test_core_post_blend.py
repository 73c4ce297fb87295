"""Blending a post-processor's result by strength and mask in bounded memory (a plugin may return 16384²)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from studio.core import post_blend
from studio.core.errors import InvalidRequest
from studio.core.post_blend import blend_result, check_blend_memory


def _random(size: tuple[int, int], seed: int, mode: str = "RGB") -> Image.Image:
    channels = len(mode)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def test_a_big_blend_makes_no_full_size_float_arrays():
    original, processed = _random((2048, 2048), 1), _random((2048, 2048), 2)
    mask = Image.fromarray(np.random.default_rng(3).integers(0, 256, (2048, 2048), dtype=np.uint8), "L")
    tracemalloc.start()
    try:
        result = blend_result(original, processed, 0.5, mask)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one_float_picture = 2048 * 2048 * 3 * 4  # 48 MB; whole-picture float arrays took several (a 16384² one: ~19 GB)
    assert peak < one_float_picture / 2, f"{peak / 2**20:.0f} MB"
    assert result.size == (2048, 2048) and result.mode == "RGB"


@pytest.mark.parametrize("band", [1000, 64 * 7])  # bands that do not divide the rows, one row and less
def test_blending_in_bands_gives_the_whole_picture_formula(monkeypatch, band):
    original, processed = _random((64, 37), 4, "RGBA"), _random((64, 37), 5)
    mask = Image.fromarray(np.random.default_rng(6).integers(0, 256, (37, 64), dtype=np.uint8), "L")
    monkeypatch.setattr(post_blend, "BAND_PIXELS", band)
    result = blend_result(original, processed, 0.3, mask)
    base = np.asarray(original.convert("RGB"), dtype=np.float32)
    weight = np.full(base.shape[:2], 0.3, np.float32) * (np.asarray(mask, dtype=np.float32) / 255.0)
    top = np.asarray(processed, dtype=np.float32)
    expected = np.clip(np.round(base + (top - base) * weight[..., None]), 0, 255).astype(np.uint8)
    assert np.array_equal(np.asarray(result)[..., :3], expected)
    assert result.getchannel("A").tobytes() == original.getchannel("A").tobytes()


def test_a_blend_that_needs_more_memory_than_is_free_is_refused_with_a_sentence():
    check_blend_memory((16384, 16384), scaled=False, available=8 * 2**30)  # 1 GB needed: fine
    with pytest.raises(InvalidRequest, match=r"Blending the 16384x16384 result by the strength needs about 2.3 GB "
                                             r"of memory but only 2.0 GB is free; use strength 1"):
        check_blend_memory((16384, 16384), scaled=True, available=2 * 2**30)
