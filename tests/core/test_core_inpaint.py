"""Inpainting around the model: where to work, what to start from, and blending back bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.core.images import flatten
from studio.core.inpaint import (
    INPAINT_FILLS,
    MAX_WORKING_ASPECT,
    InpaintOptions,
    blend,
    carry_changes,
    extend_canvas,
    fill_masked,
    paste_back,
    working_box,
    without_extended_border,
    working_size,
)
from studio.core.mask import bounding_box, feather, fill_rect, new_mask, stroke_segment


def random_image(width, height, mode="RGB", seed=0):
    channels = len(mode)
    values = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(values, mode)


def pixels(image):
    return np.asarray(image)


def box_mask(width, height, box):
    mask = new_mask(width, height)
    fill_rect(mask, box)
    return mask


# --- working box and size ------------------------------------------------------------------------


def test_working_box_is_the_mask_box_plus_padding():
    mask = box_mask(200, 150, (60, 40, 100, 70))
    assert working_box(mask, 0) == (60, 40, 100, 70)
    assert working_box(mask, 16) == (44, 24, 116, 86)
    assert working_box(new_mask(200, 150), 16) is None
    assert working_box(mask, -5) == (60, 40, 100, 70)  # no negative padding: the box holds the mask


def test_working_box_is_clipped_at_the_picture_edges():
    mask = box_mask(200, 150, (0, 140, 30, 150))
    assert working_box(mask, 20) == (0, 120, 50, 150)
    assert working_box(box_mask(200, 150, (0, 0, 200, 150)), 32) == (0, 0, 200, 150)


def test_working_box_is_widened_to_the_aspect():
    mask = box_mask(400, 300, (180, 140, 220, 160))  # 40 x 20
    assert working_box(mask, 0, aspect=1.0) == (180, 130, 220, 170)  # taller, centred
    assert working_box(mask, 10, aspect=1.0) == (170, 120, 230, 180)  # 60 x 40 -> 60 x 60
    assert working_box(mask, 0, aspect=4.0) == (160, 140, 240, 160)  # wider, centred
    x0, y0, x1, y1 = working_box(mask, 5, aspect=0.75)
    assert (x1 - x0) / (y1 - y0) == pytest.approx(0.75, abs=0.02)
    assert x0 <= 175 and y0 <= 135 and x1 >= 225 and y1 >= 165  # still holds the mask and padding


def test_working_box_slides_back_inside_the_picture_to_keep_its_size():
    mask = box_mask(400, 300, (0, 140, 20, 160))  # at the left edge, 20 x 20
    assert working_box(mask, 10, aspect=2.0) == (0, 130, 80, 170)  # 40x40 -> 80x40, slid right by 30
    mask = box_mask(400, 300, (380, 0, 400, 10))  # the top-right corner
    assert working_box(mask, 0, aspect=0.5) == (380, 0, 400, 40)  # 20x10 -> 20x40, slid down
    mask = box_mask(400, 300, (300, 280, 390, 300))  # the bottom edge
    assert working_box(mask, 10, aspect=1.0) == (290, 190, 400, 300)  # 110 x 110, slid up and left


def test_working_box_larger_than_the_picture_is_clipped_and_still_holds_the_mask():
    mask = box_mask(100, 60, (10, 20, 90, 40))
    assert working_box(mask, 0, aspect=0.5) == (10, 0, 90, 60)  # cannot be 160 tall: the whole height
    rng = np.random.default_rng(1)
    for _ in range(100):
        x0, y0 = rng.integers(0, 90), rng.integers(0, 50)
        mask = box_mask(100, 60, (x0, y0, x0 + rng.integers(1, 20), y0 + rng.integers(1, 20)))
        box = working_box(mask, int(rng.integers(0, 40)), aspect=float(rng.uniform(0.3, 3)))
        mx0, my0, mx1, my1 = bounding_box(mask)
        assert 0 <= box[0] <= mx0 and 0 <= box[1] <= my0 and mx1 <= box[2] <= 100 and my1 <= box[3] <= 60


@pytest.mark.parametrize(("width", "height", "native"), [
    (100, 100, 512), (300, 150, 512), (37, 211, 512), (1000, 997, 1024), (64, 48, 768), (513, 1, 512),
])
def test_working_size_is_about_native_area_keeps_the_shape_and_is_a_multiple_of_8(width, height, native):
    w, h = working_size(width, height, native)
    assert w % 8 == 0 and h % 8 == 0 and w >= 64 and h >= 64
    aspect = min(max(width / height, 1 / MAX_WORKING_ASPECT), MAX_WORKING_ASPECT)
    assert w / h == pytest.approx(aspect, rel=0.06)
    assert w * h == pytest.approx(native * native, rel=0.06)


def test_working_size_exact_values():
    assert working_size(100, 100, 512) == (512, 512)
    assert working_size(20, 20, 512) == (512, 512)  # small regions are worked on at full size
    assert working_size(3000, 3000, 1024) == (1024, 1024)
    assert working_size(300, 150, 512) == (728, 360)
    assert working_size(150, 300, 512) == (360, 728)


def test_working_size_of_a_thin_strip_stays_reasonable():
    # A long thin region is stretched to at most 8:1 rather than asking for a 10240x64 picture.
    assert working_size(4000, 10, 512) == (1448, 184)
    assert working_size(10, 4000, 512) == (184, 1448)
    for args in [(16384, 8, 512), (8, 16384, 1024), (5000, 1, 64)]:
        w, h = working_size(*args)
        assert w * h <= 1.1 * args[2] ** 2 or min(w, h) == 64
        assert max(w, h) / min(w, h) <= MAX_WORKING_ASPECT * 1.05


def test_working_size_refuses_empty_regions():
    with pytest.raises(ValueError):
        working_size(0, 10, 512)


# --- fill ----------------------------------------------------------------------------------------


def test_fill_original_is_the_picture_unchanged():
    image = random_image(40, 30)
    before = image.tobytes()
    filled = fill_masked(image, box_mask(40, 30, (10, 10, 20, 20)), "original")
    assert filled.tobytes() == before and image.tobytes() == before


def test_fill_noise_changes_only_the_masked_pixels_and_is_seeded():
    image = random_image(64, 48)
    mask = box_mask(64, 48, (10, 5, 30, 25))
    one = pixels(fill_masked(image, mask, "noise", seed=1))
    again = pixels(fill_masked(image, mask, "noise", seed=1))
    other = pixels(fill_masked(image, mask, "noise", seed=2))
    original = pixels(image)
    assert (one == again).all()
    assert (one[mask == 0] == original[mask == 0]).all()  # bit for bit outside the mask
    assert (one[mask == 255] != original[mask == 255]).mean() > 0.9  # replaced inside
    assert (one[mask == 255] != other[mask == 255]).mean() > 0.9  # another seed, other noise
    assert 100 < one[mask == 255].mean() < 155  # uniform noise over 0..255
    assert pixels(image).tobytes() == original.tobytes()


def test_fill_blurred_takes_the_surrounding_colours_not_the_masked_ones():
    picture = np.zeros((120, 160, 3), dtype=np.uint8)
    picture[...] = (220, 30, 20)  # red
    picture[40:80, 60:100] = (0, 255, 0)  # a green thing to remove
    mask = box_mask(160, 120, (55, 35, 105, 85))  # the hole covers it with some margin
    filled = pixels(fill_masked(Image.fromarray(picture), mask, "blurred"))
    assert (filled[mask == 0] == picture[mask == 0]).all()
    hole = filled[mask == 255].astype(int)
    assert (np.abs(hole - (220, 30, 20)) <= 3).all()  # reddish everywhere: no green leaks in


def test_fill_blurred_reaches_the_middle_of_a_large_hole():
    picture = Image.new("RGB", (256, 256), (200, 40, 40))
    mask = box_mask(256, 256, (20, 20, 236, 236))  # most of the picture
    filled = pixels(fill_masked(picture, mask, "blurred"))
    assert (np.abs(filled.astype(int) - (200, 40, 40)) <= 3).all()  # not black in the middle


def test_fill_blurred_blends_the_colours_on_each_side():
    picture = np.zeros((100, 200, 3), dtype=np.uint8)
    picture[:, :100] = (255, 0, 0)
    picture[:, 100:] = (0, 0, 255)
    picture[30:70, 60:140] = (0, 255, 0)
    mask = box_mask(200, 100, (60, 30, 140, 70))
    filled = pixels(fill_masked(Image.fromarray(picture), mask, "blurred")).astype(int)
    left, middle, right = filled[50, 62], filled[50, 100], filled[50, 137]
    assert left[0] > 180 and left[2] < 75  # red side stays red
    assert right[2] > 180 and right[0] < 75  # blue side stays blue
    assert 60 < middle[0] < 195 and 60 < middle[2] < 195  # a mix between them
    assert filled[30:70, 60:140, 1].max() <= 3  # no green


def test_fill_mixes_partly_masked_pixels_in_proportion():
    picture = Image.new("RGB", (60, 40), (200, 100, 0))
    picture.paste((0, 0, 250), (20, 10, 40, 30))
    full = box_mask(60, 40, (20, 10, 40, 30))
    half = full // 2 + (full > 0)  # 128 where full is 255
    filled_full = pixels(fill_masked(picture, full, "blurred")).astype(int)
    filled_half = pixels(fill_masked(picture, half, "blurred")).astype(int)
    assert (filled_half[half == 0] == pixels(picture)[half == 0]).all()
    assert (np.abs(filled_full[20, 30] - (200, 100, 0)) <= 3).all()  # fully masked: the orange around
    # Half masked: half its own blue, half the orange around (its own colour is not part of the fill).
    assert (np.abs(filled_half[12:28, 22:38] - (100, 50, 125)) <= 2).all()


def test_fill_with_everything_masked_still_gives_a_picture():
    picture = random_image(50, 40)
    filled = fill_masked(picture, np.full((40, 50), 255, np.uint8), "blurred")
    assert filled.size == (50, 40) and filled.mode == "RGB"


def test_fill_refuses_unknown_fills_and_mismatched_masks():
    picture = random_image(20, 10)
    assert set(INPAINT_FILLS) == {"original", "noise", "blurred"}
    with pytest.raises(ValueError, match="unknown fill"):
        fill_masked(picture, new_mask(20, 10), "latent")
    with pytest.raises(ValueError, match="mask"):
        fill_masked(picture, new_mask(10, 20), "noise")


def test_fill_of_an_rgba_picture_keeps_unmasked_colours():
    picture = random_image(30, 20, "RGBA")
    mask = box_mask(30, 20, (5, 5, 15, 15))
    filled = fill_masked(picture, mask, "noise", seed=3)
    assert filled.mode == "RGB"
    assert (pixels(filled)[mask == 0] == pixels(picture)[..., :3][mask == 0]).all()


# --- blend and paste back -------------------------------------------------------------------------


def graded_mask(width, height, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 256, (height, width), dtype=np.uint8)
    mask[: height // 3] = 0
    mask[height // 3: 2 * height // 3] = 255
    return mask


def test_blend_is_the_original_bit_for_bit_where_the_mask_is_zero():
    original, generated = random_image(64, 48, seed=1), random_image(64, 48, seed=2)
    mask = graded_mask(64, 48)
    out = pixels(blend(original, generated, mask))
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    assert out[mask == 0].tobytes() == pixels(original)[mask == 0].tobytes()
    assert out[mask == 255].tobytes() == pixels(generated)[mask == 255].tobytes()
    mixed = (mask > 0) & (mask < 255)
    expected = (pixels(original).astype(int) * (255 - mask[..., None].astype(int))
                + pixels(generated).astype(int) * mask[..., None] + 127) // 255
    assert (out[mixed] == expected[mixed]).all()


def test_blend_keeps_the_originals_alpha():
    original = random_image(40, 30, "RGBA", seed=4)
    generated = Image.new("RGB", (40, 30), (1, 2, 3))
    mask = graded_mask(40, 30)
    out = blend(original, generated, mask)
    assert out.mode == "RGBA"  # what was made anew shows: alpha is at least the blend mask's
    assert pixels(out)[..., 3].tobytes() == np.maximum(pixels(original)[..., 3], mask).tobytes()
    assert (pixels(out)[..., :3][mask == 0] == pixels(original)[..., :3][mask == 0]).all()
    assert (pixels(out)[..., :3][mask == 255] == (1, 2, 3)).all()


def test_blend_scales_a_generated_picture_of_another_size():
    original = random_image(40, 30)
    out = blend(original, Image.new("RGB", (80, 60), (9, 99, 199)), np.full((30, 40), 255, np.uint8))
    assert out.size == (40, 30) and (pixels(out) == (9, 99, 199)).all()
    with pytest.raises(ValueError):
        blend(original, original, new_mask(30, 40))


def test_paste_back_changes_nothing_outside_the_feathered_mask():
    original = random_image(200, 150, seed=5)
    before = original.tobytes()
    mask = new_mask(200, 150)
    stroke_segment(mask, (70.0, 50.0), (110.0, 90.0), 24)
    box = working_box(mask, 24, aspect=1.0)
    size = working_size(box[2] - box[0], box[3] - box[1], 512)
    generated = random_image(*size, seed=6)
    result = paste_back(original, generated, box, mask, 8)
    assert original.tobytes() == before  # a new picture; the original is untouched
    soft = feather(mask, 8)
    out, base = pixels(result), pixels(original)
    assert out[soft == 0].tobytes() == base[soft == 0].tobytes()  # bitwise
    assert (out[soft == 255] != base[soft == 255]).any(axis=-1).mean() > 0.9
    assert (soft > 0).sum() > (mask > 0).sum()  # the feather reached past the painted mask


def test_paste_back_puts_the_generated_region_at_the_box():
    truth = random_image(300, 200, seed=7)
    original = Image.new("RGB", (300, 200), (128, 128, 128))
    mask = box_mask(300, 200, (120, 60, 180, 110))
    box = working_box(mask, 16)
    result = pixels(paste_back(original, truth.crop(box), box, mask, 0))
    # With no feather, the masked pixels are exactly the generated ones at their own place.
    assert result[mask == 255].tobytes() == pixels(truth)[mask == 255].tobytes()
    assert (result[mask == 0] == 128).all()
    # A generated picture at the working size is scaled to the box: left half green, right half blue.
    generated = Image.new("RGB", working_size(box[2] - box[0], box[3] - box[1], 512), (0, 255, 0))
    generated.paste((0, 0, 255), (generated.width // 2, 0, generated.width, generated.height))
    result = pixels(paste_back(original, generated, box, mask, 4))
    centre_x = (box[0] + box[2]) // 2  # 150
    assert tuple(result[85, centre_x - 15]) == (0, 255, 0)
    assert tuple(result[85, centre_x + 15]) == (0, 0, 255)


def test_paste_back_keeps_alpha_and_mode():
    original = random_image(100, 80, "RGBA", seed=8)
    mask = box_mask(100, 80, (30, 30, 60, 50))
    box = working_box(mask, 8)
    result = paste_back(original, Image.new("RGB", (64, 64), (5, 6, 7)), box, mask, 4)
    assert result.mode == "RGBA" and result.size == (100, 80)
    soft = feather(mask, 4)
    assert pixels(result)[..., 3].tobytes() == np.maximum(pixels(original)[..., 3], soft).tobytes()
    assert pixels(result)[soft == 0].tobytes() == pixels(original)[soft == 0].tobytes()


def test_inpainting_pipeline_changes_no_pixel_outside_the_feathered_mask():
    """The issue's must-hold, through every core step the engine uses (the model is faked)."""
    original = random_image(333, 251, seed=9)
    mask = new_mask(333, 251)
    stroke_segment(mask, (40.0, 200.0), (150.0, 120.0), 30, hardness=0.6)
    options = InpaintOptions(padding=32, fill="blurred", feather=6)
    box = working_box(mask, options.padding, aspect=1.0)
    start = fill_masked(original.crop(box), mask[box[1]:box[3], box[0]:box[2]], options.fill)
    size = working_size(start.width, start.height, 512)
    generated = start.resize(size).transpose(Image.Transpose.ROTATE_180)  # "the model"
    result = paste_back(original, generated, box, mask, options.feather)
    soft = feather(mask, options.feather)
    assert pixels(result)[soft == 0].tobytes() == pixels(original)[soft == 0].tobytes()
    assert (pixels(result)[soft > 0] != pixels(original)[soft > 0]).any()


# --- outpainting ---------------------------------------------------------------------------------


def test_extend_canvas_sizes_keeps_old_pixels_and_masks_the_border():
    image = random_image(40, 30, seed=10)
    result, mask = extend_canvas(image, None, left=10, top=5, right=0, bottom=20, overlap=4)
    assert result.size == (50, 55) and result.mode == "RGB"
    assert mask.shape == (55, 50) and mask.dtype == np.uint8
    assert pixels(result)[5:35, 10:50].tobytes() == pixels(image).tobytes()  # every old pixel, at the offset
    assert (mask[:5] == 255).all() and (mask[35:] == 255).all() and (mask[:, :10] == 255).all()
    inner = mask[5:35, 10:50]
    assert (inner[:, :4] == 255).all()  # the overlap band along the extended left edge
    assert (inner[:4] == 255).all() and (inner[-4:] == 255).all()  # top and bottom
    assert (inner[4:-4, 4:] == 0).all()  # the rest of the old picture, and the unextended right edge, kept
    assert set(np.unique(mask)) == {0, 255}


def test_extend_canvas_starts_the_new_area_from_the_edge_colours():
    image = Image.new("RGB", (40, 40), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 40))  # red on the left, blue on the right
    result, _ = extend_canvas(image, None, left=0, top=30, right=0, bottom=0)
    above = pixels(result)[:30].astype(int)
    assert above[0, 2, 0] > 200 and above[0, 2, 2] < 60  # over the red half: red
    assert above[0, 37, 2] > 200 and above[0, 37, 0] < 60  # over the blue half: blue


@pytest.mark.parametrize(("width", "height", "amounts"), [
    (120, 90, (0, 0, 64, 0)), (40, 200, (300, 0, 0, 17)), (90, 60, (13, 150, 40, 250)), (9, 11, (1, 1, 1, 1)),
    (64, 64, (5, 0, 0, 0))])
def test_extend_canvas_blurs_only_the_new_strips_yet_exactly_as_a_whole_picture_blur(width, height, amounts):
    """The border is blurred strip by strip (a 4096x4096 picture's whole-picture blur took 0.7 s); each new
    pixel must still be exactly what blurring the whole edge-padded picture gives."""
    from PIL import ImageFilter

    image = random_image(width, height, seed=width + height)
    left, top, right, bottom = amounts
    result, _ = extend_canvas(image, None, *amounts)
    padded = np.pad(pixels(image), ((top, bottom), (left, right), (0, 0)), mode="edge")
    whole = pixels(Image.fromarray(padded).filter(ImageFilter.GaussianBlur(max(4, max(amounts) // 4)))).copy()
    whole[top:top + height, left:left + width] = pixels(image)
    assert pixels(result).tobytes() == whole.tobytes()


def test_extend_canvas_carries_an_existing_mask_over():
    image = random_image(40, 30, seed=11)
    existing = box_mask(40, 30, (20, 10, 25, 15))
    result, mask = extend_canvas(image, existing, left=0, top=0, right=16, bottom=0, overlap=3)
    assert result.size == (56, 30)
    assert (mask[:, 40:] == 255).all()  # the new right strip
    assert (mask[:, 37:40] == 255).all()  # the overlap band inside the old right edge
    assert (mask[10:15, 20:25] == 255).all()  # the mask that was there, in place
    assert mask[:, :37].sum() == 255 * 25
    assert existing.sum() == 255 * 25  # not changed


def test_the_extended_border_mask_goes_once_filled_keeping_the_persons_mask_and_new_strokes():
    image = random_image(40, 30, seed=11)
    existing = box_mask(40, 30, (20, 10, 25, 15))
    existing[0, 0] = 100  # a soft pixel of theirs in the overlap band Extend masks fully
    _, extended = extend_canvas(image, existing, left=8, top=4, right=0, bottom=0, overlap=3)
    current = extended.copy()
    current[20:22, 30:32] = 255  # a stroke painted since, away from the border
    current[1, 1] = 0  # and one pixel of the border erased by the person
    cleared = without_extended_border(current, extended, existing, left=8, top=4)
    expected = np.zeros_like(extended)
    expected[4:, 8:] = existing
    expected[20:22, 30:32] = 255
    np.testing.assert_array_equal(cleared, expected)
    # No mask before Extend: only the strokes painted since are left.
    _, extended = extend_canvas(image, None, left=0, top=0, right=16, bottom=0)
    current = extended.copy()
    current[5, 5] = 255
    cleared = without_extended_border(current, extended, None, left=0, top=0)
    assert cleared.sum() == 255 and cleared[5, 5] == 255


def test_extend_canvas_by_nothing_keeps_picture_and_mask():
    image = random_image(20, 10, seed=12)
    existing = box_mask(20, 10, (2, 2, 5, 5))
    result, mask = extend_canvas(image, existing, 0, 0, 0, 0)
    assert result.tobytes() == image.tobytes() and (mask == existing).all()
    result, mask = extend_canvas(image, None, 0, 0, 0, 0)
    assert result.tobytes() == image.tobytes() and not mask.any()


def test_extend_canvas_handles_rgba():
    image = random_image(30, 20, "RGBA", seed=13)
    result, mask = extend_canvas(image, None, left=4, top=0, right=6, bottom=2)
    assert result.mode == "RGBA" and result.size == (40, 22) and mask.shape == (22, 40)
    out = pixels(result)
    assert out[0:20, 4:34].tobytes() == pixels(image).tobytes()  # colour and alpha kept
    assert (out[:, :4, 3] == 255).all() and (out[:, 34:, 3] == 255).all() and (out[20:, :, 3] == 255).all()


def test_extend_canvas_of_a_transparent_picture_starts_the_border_from_what_the_model_sees():
    # A sticker (red disc, transparent around it, hidden black) once got a black border to outpaint from:
    # the hidden colours were stretched out, though the model sees the transparency as white.
    pixels = np.zeros((32, 32, 4), np.uint8)
    yy, xx = np.mgrid[:32, :32]
    pixels[(yy - 16) ** 2 + (xx - 16) ** 2 < 8 ** 2] = (220, 40, 40, 255)
    pixels[:, -2:] = (0, 0, 200, 128)  # a half-transparent blue edge on the right
    sticker = Image.fromarray(pixels, "RGBA")
    result, _ = extend_canvas(sticker, None, left=0, top=8, right=16, bottom=0)
    rgb = np.asarray(result.convert("RGB")).astype(int)
    assert (rgb[:4, :20] >= 250).all()  # above the transparent top edge: white, as flattened
    flat_edge = np.asarray(flatten(sticker))[:, -1].astype(int)  # the right edge on white: a light blue
    assert np.abs(rgb[8 + 4:8 + 28, -4] - flat_edge[4:28]).max() <= 3
    np.testing.assert_array_equal(np.asarray(result)[8:, :32], pixels)  # the picture itself: its own pixels
    alpha = np.asarray(result.getchannel("A"))
    assert (alpha[:8] == 255).all() and (alpha[:, 32:] == 255).all()  # the new border is opaque, as before


def test_extend_canvas_refuses_bad_input():
    image = random_image(20, 10)
    with pytest.raises(ValueError, match="negative"):
        extend_canvas(image, None, -1, 0, 0, 0)
    with pytest.raises(ValueError, match="mask"):
        extend_canvas(image, new_mask(10, 20), 1, 0, 0, 0)
    _, mask = extend_canvas(image, None, 5, 0, 0, 0, overlap=-3)  # a negative overlap is no overlap
    assert (mask[:, :5] == 255).all() and not mask[:, 5:].any()
    _, mask = extend_canvas(image, None, 0, 0, 4, 0, overlap=50)  # wider than the picture: all of it
    assert (mask == 255).all()


def test_inpaint_options_defaults():
    options = InpaintOptions()
    assert (options.masked_only, options.padding, options.fill, options.feather) == (True, 32, "original", 8.0)
    assert options.fill in INPAINT_FILLS


def test_carry_changes_puts_only_what_the_job_changed_on_the_later_picture():
    source = random_image(20, 10, seed=1)
    later = random_image(20, 10, seed=2)  # the canvas after another job landed
    result = pixels(source).copy()
    result[2:5, 3:7] = (9, 8, 7)  # what this job changed
    out = pixels(carry_changes(source, Image.fromarray(result), later))
    assert (out[2:5, 3:7] == (9, 8, 7)).all()
    outside = np.ones((10, 20), bool)
    outside[2:5, 3:7] = False
    assert (out[outside] == pixels(later)[outside]).all()
