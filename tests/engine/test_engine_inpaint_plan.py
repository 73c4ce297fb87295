"""Where an inpaint job works, at what size, and how it goes back: the plan, without a pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.inpaint import InpaintOptions
from studio.core.mask import bounding_box, feather
from studio.core.inpaint import MAX_ASPECT
from studio.engine.inpainting import cell_mask, plan_inpaint


def picture(width: int, height: int) -> Image.Image:
    """Smooth stripes: resampling barely changes them, a shift of a pixel or two changes them a lot."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / 3.0), 128 + 100 * np.sin(y / 3.0), 128 + 100 * np.sin((x + y) / 4.0)], -1)
    return Image.fromarray(rgb.round().astype(np.uint8), "RGB")


def mask_of(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box)
    return mask


def test_masked_only_works_on_the_mask_box_plus_padding_at_about_the_native_area():
    plan = plan_inpaint(picture(400, 300), mask_of(400, 300, (200, 100, 240, 140)),
                        InpaintOptions(masked_only=True, padding=20), native=256)
    assert plan.box == (180, 80, 260, 160)
    assert plan.work_size == (256, 256)
    assert plan.work_image.size == plan.model_mask.size == (256, 256)
    assert plan.area_name == "Only masked"


def test_a_box_at_the_edge_is_clipped_and_a_thin_one_widened_for_context():
    # A mask in the corner: padding cannot go past the picture.
    corner = plan_inpaint(picture(300, 200), mask_of(300, 200, (280, 0, 300, 12)),
                          InpaintOptions(padding=16), native=256)
    assert corner.box == (264, 0, 300, 28)
    # A thin horizontal stroke: the box grows in height to at most MAX_ASPECT, centred on the stroke.
    thin = plan_inpaint(picture(600, 400), mask_of(600, 400, (100, 200, 500, 204)),
                        InpaintOptions(padding=8), native=256)
    x0, y0, x1, y1 = thin.box
    assert (x0, x1) == (92, 508)
    assert (x1 - x0) / (y1 - y0) == pytest.approx(MAX_ASPECT, rel=0.01)
    assert y0 < 200 and y1 > 204 and abs((y0 + y1) / 2 - 202) <= 1
    w, h = thin.work_size
    assert w % 8 == 0 and h % 8 == 0 and w / h == pytest.approx(MAX_ASPECT, rel=0.05)


def test_whole_picture_works_at_the_picture_size_rounded_to_cells():
    plan = plan_inpaint(picture(150, 110), mask_of(150, 110, (10, 10, 20, 20)),
                        InpaintOptions(masked_only=False), native=512)
    assert plan.box == (0, 0, 150, 110)
    assert plan.work_size == (152, 112)
    assert plan.area_name == "Whole picture"
    small = plan_inpaint(picture(40, 20), mask_of(40, 20, (0, 0, 5, 5)), InpaintOptions(masked_only=False), 512)
    assert small.work_size == (64, 64)


def test_the_model_mask_covers_whole_latent_cells_touched_by_the_mask():
    mask = np.zeros((32, 32), np.uint8)
    mask[9, 17] = 3  # one faint pixel in cell (1, 2)
    mask[24:26, 0:2] = 255
    cells = cell_mask(mask, 8)
    assert set(np.unique(cells)) == {0, 255}
    assert bounding_box(cells[:16]) == (16, 8, 24, 16)
    assert cells[24:32, 0:8].min() == 255
    assert int(cells.sum()) == 2 * 64 * 255


def test_with_a_model_that_changes_nothing_the_picture_comes_back_in_place():
    """The crop goes to the model and comes back to the same place: an identity model returns the picture."""
    original = picture(300, 220)
    for box, options in [((250, 10, 290, 40), InpaintOptions(padding=24, feather=4)),
                         ((0, 180, 30, 220), InpaintOptions(padding=8, feather=0)),
                         ((60, 100, 260, 108), InpaintOptions(padding=4, feather=2)),
                         ((100, 50, 140, 90), InpaintOptions(masked_only=False, feather=4))]:
        plan = plan_inpaint(original, mask_of(300, 220, box), options, native=256)
        result = np.asarray(plan.finish(plan.start_picture(seed=1)), dtype=np.int16)
        x0, y0, x1, y1 = box
        error = np.abs(result - np.asarray(original, dtype=np.int16))[y0:y1, x0:x1]
        assert error.mean() < 3, (box, error.mean())
        # Control: the same crop put back one pixel off would be far from the picture.
        dx, dy = (1 if x1 < 300 else -1), (1 if y1 < 220 else -1)
        shifted = np.asarray(original, dtype=np.int16)[y0 + dy:y1 + dy, x0 + dx:x1 + dx]
        assert np.abs(shifted - np.asarray(original, dtype=np.int16)[y0:y1, x0:x1]).mean() > 10


def test_outside_the_feathered_mask_the_result_is_the_picture_bit_for_bit():
    rng = np.random.default_rng(3)
    original = Image.fromarray(rng.integers(0, 256, (90, 130, 3), dtype=np.uint8), "RGB")
    mask = mask_of(130, 90, (100, 5, 120, 25))
    for masked_only in (True, False):
        plan = plan_inpaint(original, mask, InpaintOptions(masked_only=masked_only, feather=5), native=256)
        generated = Image.new("RGB", plan.work_size, (255, 0, 255))
        result = np.asarray(plan.finish(generated))
        feathered = feather(np.asarray(mask), 5)
        keep = feathered == 0
        assert keep.sum() > 0.9 * keep.size
        assert np.array_equal(result[keep], np.asarray(original)[keep])
        assert (feathered == 255).sum() >= 25
        assert (result[feathered == 255] == (255, 0, 255)).all()


def test_fills_start_the_masked_area_from_noise_or_blur_and_noise_follows_the_seed():
    original = picture(128, 128)
    mask = mask_of(128, 128, (40, 40, 80, 80))
    for fill in ("noise", "blurred"):
        plan = plan_inpaint(original, mask, InpaintOptions(fill=fill, padding=8), native=128)
        start = np.asarray(plan.start_picture(seed=1), dtype=np.int16)
        plain = np.asarray(plan.work_image, dtype=np.int16)
        inside = plan.work_mask == 255
        assert np.abs(start - plain)[inside].mean() > 10, fill
        assert np.array_equal(start[plan.work_mask == 0], plain[plan.work_mask == 0]), fill
    noisy = plan_inpaint(original, mask, InpaintOptions(fill="noise"), native=128)
    assert np.array_equal(np.asarray(noisy.start_picture(1)), np.asarray(noisy.start_picture(1)))
    assert not np.array_equal(np.asarray(noisy.start_picture(1)), np.asarray(noisy.start_picture(2)))


def test_previews_cover_the_working_box_and_show_only_where_the_mask_lets_the_result_show():
    original = Image.new("RGB", (400, 200), (0, 0, 255))
    plan = plan_inpaint(original, mask_of(400, 200, (300, 20, 340, 60)), InpaintOptions(padding=20, feather=0),
                        native=256)
    previewer = plan.previewer()
    assert previewer.box == plan.box == (280, 0, 360, 80)
    latent = (plan.work_size[0] // 8, plan.work_size[1] // 8)
    preview = previewer(Image.new("RGB", latent, (255, 0, 0)))
    assert preview.mode == "RGBA" and preview.size == latent
    assert preview.getpixel((0, latent[1] - 1)) == (255, 0, 0, 0)  # padding: transparent, the picture shows
    assert preview.getpixel((latent[0] // 2, latent[1] // 2)) == (255, 0, 0, 255)  # under the mask
    opaque = np.asarray(preview.getchannel("A")) > 128
    x0, y0, x1, y1 = bounding_box(opaque.astype(np.uint8))
    scale = latent[0] / 80
    assert (x0, y0) == (round(20 * scale), round(20 * scale)) and (x1, y1) == (round(60 * scale), round(60 * scale))


def test_an_empty_or_mismatched_mask_is_refused_with_one_sentence():
    with pytest.raises(InvalidRequest, match="The mask is empty"):
        plan_inpaint(picture(64, 64), Image.new("L", (64, 64), 0), InpaintOptions(), 256)
    with pytest.raises(InvalidRequest, match="The mask is empty"):
        plan_inpaint(picture(64, 64), Image.new("L", (64, 64), 0), InpaintOptions(masked_only=False), 256)
    with pytest.raises(InvalidRequest, match="The mask is 32x32 but the picture is 64x64"):
        plan_inpaint(picture(64, 64), Image.new("L", (32, 32), 255), InpaintOptions(), 256)


def test_a_picture_with_alpha_is_seen_on_white_and_keeps_its_transparency_outside_the_mask():
    rgba = Image.new("RGBA", (64, 64), (10, 20, 30, 0))
    plan = plan_inpaint(rgba, mask_of(64, 64, (0, 0, 8, 8)), InpaintOptions(feather=0), 256)
    assert plan.work_image.mode == "RGB" and plan.work_image.getpixel((40, 40)) == (255, 255, 255)  # the model's
    result = plan.finish(Image.new("RGB", plan.work_size, (0, 0, 0)))
    assert result.mode == "RGBA"
    assert result.getpixel((40, 40)) == (10, 20, 30, 0)  # untouched: still see-through (it became opaque white)
    assert result.getpixel((2, 2)) == (0, 0, 0, 255)  # made anew: shows
