"""Colour transfer without weights: Reinhard's L*a*b* statistics move to the reference's (within a stated
tolerance), histogram matching follows the reference's distribution, and the blend around every filter
(strength 0 unchanged, 1 full; outside the mask untouched)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.core.color_transfer import lab_statistics, lab_to_rgb, match_histograms, rgb_to_lab, transfer_color
from studio.core.errors import InvalidRequest
from studio.core.post_blend import blend_result, check_blend

# Reinhard moves each L*a*b* channel's mean and spread exactly; what is left is 8-bit rounding and
# the clipping of colours that fall outside sRGB. For these pictures that stays under these bounds.
MEAN_TOLERANCE = 1.5  # L*a*b* units
STD_TOLERANCE = 0.08  # relative


def picture(seed: int, base: tuple[int, int, int], spread: int, size=(96, 64)) -> Image.Image:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    gradient = np.linspace(-1, 1, size[0])[None, :, None]
    pixels = np.array(base)[None, None, :] + spread * gradient + rng.normal(0, spread / 3, (size[1], size[0], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def source() -> Image.Image:
    return picture(1, (90, 140, 200), 40)  # a cool blue picture


@pytest.fixture
def reference() -> Image.Image:
    return picture(2, (200, 120, 60), 25)  # a warm orange one


def test_lab_round_trip_is_exact_to_the_byte():
    rgb = np.random.default_rng(0).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    assert np.array_equal(lab_to_rgb(rgb_to_lab(rgb)), rgb)
    white = rgb_to_lab(np.array([[255, 255, 255]], np.uint8))[0]
    assert white == pytest.approx([100, 0, 0], abs=1e-3)


def test_reinhard_moves_the_lab_statistics_to_the_reference_s(source, reference):
    result = transfer_color(source, reference, "lab")
    assert result.size == source.size and result.mode == "RGB"
    mean, std = lab_statistics(result)
    ref_mean, ref_std = lab_statistics(reference)
    before_mean, _ = lab_statistics(source)
    assert np.abs(mean - ref_mean).max() < MEAN_TOLERANCE
    assert np.abs(std / ref_std - 1).max() < STD_TOLERANCE
    assert np.abs(before_mean - ref_mean).max() > 20  # it really moved


def test_histogram_matching_follows_the_reference_distribution(source, reference):
    result = np.asarray(match_histograms(source, reference)).astype(float)
    ref = np.asarray(reference).astype(float)
    for channel in range(3):
        assert np.percentile(result[..., channel], [10, 50, 90]) == pytest.approx(
            np.percentile(ref[..., channel], [10, 50, 90]), abs=3)


def test_alpha_is_kept_and_unknown_methods_are_refused(source, reference):
    with_alpha = source.convert("RGBA")
    with_alpha.putalpha(128)
    assert transfer_color(with_alpha, reference).getchannel("A").getextrema() == (128, 128)
    with pytest.raises(InvalidRequest, match="Unknown colour transfer method 'magic'"):
        transfer_color(source, reference, "magic")


def test_strength_zero_is_unchanged_one_is_the_full_effect_between_is_between(source, reference):
    full = transfer_color(source, reference)
    assert blend_result(source, full, 0.0).tobytes() == source.tobytes()
    assert blend_result(source, full, 1.0).tobytes() == full.tobytes()
    half = np.asarray(blend_result(source, full, 0.5), dtype=float)
    expected = (np.asarray(source, dtype=float) + np.asarray(full, dtype=float)) / 2
    assert np.abs(half - expected).max() <= 0.5 + 1e-9


def test_only_under_the_mask_leaves_every_other_pixel_exactly(source, reference):
    full = transfer_color(source, reference)
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (10, 10, 50, 40))
    result = np.asarray(blend_result(source, full, 0.8, check_blend(source, 0.8, mask)))
    outside = np.asarray(mask) == 0
    assert np.array_equal(result[outside], np.asarray(source)[outside])
    assert not np.array_equal(result[~outside], np.asarray(source)[~outside])


def test_bad_strength_and_masks_are_one_sentence(source):
    with pytest.raises(InvalidRequest, match="The strength must be between 0 and 1, not 1.5."):
        check_blend(source, 1.5, None)
    with pytest.raises(InvalidRequest, match="The mask is 10x10 but the picture is 96x64"):
        check_blend(source, 1.0, Image.new("L", (10, 10), 255))
    with pytest.raises(InvalidRequest, match="The mask is empty"):
        check_blend(source, 1.0, Image.new("L", source.size, 0))
    bigger = source.resize((192, 128))
    assert blend_result(source, bigger, 0.5) is bigger  # a new size (an upscaler) cannot be blended


def test_reinhard_works_a_block_of_rows_at_a_time_in_bounded_memory():
    import tracemalloc

    rng = np.random.default_rng(3)
    big = Image.fromarray(rng.integers(0, 255, (1536, 1536, 3), dtype=np.uint8))
    small = Image.fromarray(rng.integers(0, 120, (64, 64, 3), dtype=np.uint8))
    tracemalloc.start()
    try:
        result = transfer_color(big, small)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150 * 2**20, f"{peak / 2**20:.0f} MB"  # the whole picture at once took about 450 MB
    assert np.abs(lab_statistics(result)[0] - lab_statistics(small)[0]).max() < 1.5


def test_a_filter_that_answers_in_rgb_keeps_the_pictures_transparency_at_full_strength():
    picture = Image.new("RGBA", (8, 8), (10, 20, 30, 255))
    picture.putpixel((0, 0), (10, 20, 30, 0))
    result = blend_result(picture, Image.new("RGB", (8, 8), (200, 0, 0)), 1.0)
    assert result.mode == "RGBA" and result.getpixel((0, 0)) == (200, 0, 0, 0)
    assert result.getpixel((1, 1)) == (200, 0, 0, 255)


def test_histogram_matching_stays_within_the_reference_s_levels():
    # A dark reference (0..99) once sent each source channel's brightest value to 255: the reference's
    # cumulative histogram is flat at 1.0 above 99, and interpolating over that run reached level 255.
    rng = np.random.default_rng(0)
    source = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    dark = rng.integers(0, 100, (32, 32, 3), dtype=np.uint8)
    result = np.asarray(match_histograms(source, Image.fromarray(dark)))
    for channel in range(3):
        assert result[..., channel].max() == dark[..., channel].max()
        assert result[..., channel].min() == dark[..., channel].min()
    assert np.unique(np.asarray(match_histograms(source, Image.new("RGB", (8, 8), (200, 40, 7))))).tolist() == [
        7, 40, 200]
    flat = np.asarray(match_histograms(Image.new("RGB", (8, 8), (120, 120, 120)), Image.fromarray(dark)))
    assert all(flat[0, 0, c] in dark[..., c] for c in range(3))


@pytest.mark.parametrize("method", ["lab", "histogram"])
def test_only_visible_pixels_count_in_the_reference_and_the_source(source, reference, method):
    # A red disc on a transparent reference once counted its hidden black (or white) pixels, and the transfer
    # darkened (or paled) the picture with colours nobody sees.
    rgba = np.asarray(reference.convert("RGBA")).copy()
    yy, xx = np.mgrid[:rgba.shape[0], :rgba.shape[1]]
    hidden = (yy - 32) ** 2 + (xx - 48) ** 2 >= 20 ** 2
    rgba[hidden] = (0, 0, 0, 0)
    black = Image.fromarray(rgba, "RGBA")
    rgba[hidden] = (255, 255, 255, 0)
    white = Image.fromarray(rgba, "RGBA")
    visible_only = Image.fromarray(np.asarray(reference)[~hidden][None], "RGB")  # the same shown pixels, a row
    expected = np.asarray(transfer_color(source, visible_only, method))
    assert np.array_equal(np.asarray(transfer_color(source, black, method)), expected)
    assert np.array_equal(np.asarray(transfer_color(source, white, method)), expected)
    # The source's own statistics: its hidden pixels change nothing that shows.
    src = np.asarray(source.convert("RGBA")).copy()
    src[:, :20] = (0, 0, 0, 0)
    dark = np.asarray(transfer_color(Image.fromarray(src, "RGBA"), reference, method))
    src[:, :20] = (255, 255, 255, 0)
    pale = np.asarray(transfer_color(Image.fromarray(src, "RGBA"), reference, method))
    assert np.array_equal(dark[:, 20:], pale[:, 20:])
    cropped = np.asarray(transfer_color(source.crop((20, 0, source.width, source.height)), reference, method))
    assert np.array_equal(dark[:, 20:, :3], cropped)


@pytest.mark.parametrize("method", ["lab", "histogram"])
def test_a_fully_transparent_reference_is_refused_in_one_sentence(source, method):
    with pytest.raises(InvalidRequest, match=r"^The colour reference is fully transparent, so it has no colours "
                                             r"to transfer\.$"):
        transfer_color(source, Image.new("RGBA", (8, 8), (200, 0, 0, 0)), method)
