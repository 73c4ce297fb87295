"""Mask editing in core: brush strokes, fills, lasso, grow/shrink, feather, masks read from pictures.

Pixel (i, j) covers [i, i+1) x [j, j+1) in image coordinates; its centre is (i + 0.5, j + 0.5).
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import pytest
from PIL import Image

from studio.core.mask import (
    bounding_box,
    clip_box,
    feather,
    fill_polygon,
    fill_rect,
    grow,
    invert,
    is_empty,
    mask_from_image,
    mask_to_image,
    new_mask,
    stroke_segment,
    union_box,
)


def reference_coverage(shape, p0, p1, size, hardness=1.0):
    """The brush's definition, in float64 over the whole mask: what stroke_segment must paint."""
    height, width = shape
    radius = max(0.5, size / 2)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    length_sq = dx * dx + dy * dy
    if length_sq > 0:
        t = np.clip(((xs - p0[0]) * dx + (ys - p0[1]) * dy) / length_sq, 0, 1)
        dist = np.hypot(xs - (p0[0] + t * dx), ys - (p0[1] + t * dy))
    else:
        dist = np.hypot(xs - p0[0], ys - p0[1])
    hard_radius = radius * min(1.0, max(0.0, hardness))
    if hard_radius >= radius - 0.5:
        coverage = np.clip(radius + 0.5 - dist, 0, 1)
    else:
        fade = np.clip((radius - dist) / (radius - hard_radius), 0, 1)
        coverage = fade * fade * (3 - 2 * fade)
    return np.floor(coverage * 255 + 0.5).astype(np.uint8), dist


def segment_distance(shape, p0, p1):
    return reference_coverage(shape, p0, p1, 1.0)[1]


# --- brush -----------------------------------------------------------------------------------------


def test_hard_brush_of_size_10_paints_a_disc_of_radius_5():
    mask = new_mask(100, 100)
    box = stroke_segment(mask, (50.5, 50.5), (50.5, 50.5), 10)  # centred on pixel (50, 50)
    row, col = mask[50], mask[:, 50]
    assert row[50] == 255
    assert row[50 + 4] == row[50 - 4] == col[50 + 4] == col[50 - 4] == 255  # just inside: full
    assert row[50 + 5] == row[50 - 5] == col[50 + 5] == col[50 - 5] == 128  # on the rim: half (anti-aliased)
    assert row[50 + 6] == row[50 - 6] == col[50 + 6] == col[50 - 6] == 0  # just outside: nothing
    assert mask[53, 54] == 128 and mask[54, 54] == 0  # (3, 4) is 5 away; (4, 4) is 5.66 away
    assert mask[52, 53] == 255  # (2, 3) is 3.6 away
    assert box == (45, 45, 56, 56) == bounding_box(mask)
    assert mask.sum() / 255 == pytest.approx(math.pi * 25, abs=1.0)  # the disc's area
    disc = mask[45:56, 45:56]
    assert (disc == disc[::-1, ::-1]).all() and (disc == disc.T).all()  # round, centred on the pixel


def test_tiny_and_zero_sizes_still_paint_the_pixel_under_the_pointer():
    for size in (0, 0.2, 1):
        mask = new_mask(20, 20)
        assert stroke_segment(mask, (7.5, 9.5), (7.5, 9.5), size) == (7, 9, 8, 10)
        assert mask[9, 7] == 255 and mask.sum() == 255


@pytest.mark.parametrize(("p0", "p1", "size"), [
    ((20.5, 50.5), (180.5, 50.5), 4),  # horizontal, thin
    ((10.0, 10.0), (190.0, 130.0), 3),  # long diagonal: a fast mouse move between two events
    ((30.2, 140.7), (31.1, 20.3), 12.5),
    ((100.0, 100.0), (100.4, 100.3), 9),  # shorter than a pixel
])
def test_a_segment_paints_a_capsule_without_gaps(p0, p1, size):
    mask = new_mask(200, 150)
    stroke_segment(mask, p0, p1, size)
    dist = segment_distance(mask.shape, p0, p1)
    radius = size / 2
    assert (mask[dist <= radius - 0.5 - 1e-3] == 255).all()  # everything near the segment: full
    assert (mask[dist >= radius + 0.5 + 1e-3] == 0).all()  # nothing farther than the rim
    rim = (dist > radius - 0.5 + 1e-3) & (dist < radius + 0.5 - 1e-3)
    assert rim.any() and (mask[rim] > 0).all() and (mask[rim] < 255).all()
    # Along the segment itself there is no gap: sample it densely.
    for t in np.linspace(0, 1, 400):
        x, y = p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1])
        assert mask[int(y), int(x)] == 255


@pytest.mark.parametrize("hardness", [1.0, 0.9, 0.5, 0.0])
@pytest.mark.parametrize("size", [1, 3, 10, 33.3, 64])
def test_strokes_match_the_brush_definition(size, hardness):
    rng = np.random.default_rng(int(size * 10 + hardness * 100))
    for _ in range(5):
        p0 = tuple(rng.uniform(-10, 90, 2))
        p1 = tuple(np.add(p0, rng.normal(0, 25, 2)))
        mask = new_mask(80, 70)
        stroke_segment(mask, p0, p1, size, hardness)
        expected, _ = reference_coverage(mask.shape, p0, p1, size, hardness)
        diff = np.abs(mask.astype(int) - expected)
        assert diff.max() <= 1  # float32 rounding only
        assert (diff > 0).sum() <= 3


def test_soft_brush_fades_outward_through_intermediate_values():
    mask = new_mask(100, 100)
    stroke_segment(mask, (50.5, 50.5), (50.5, 50.5), 40, hardness=0.5)  # radius 20, full up to 10
    row = mask[50, 50:75].astype(int)  # distances 0..24 from the centre
    assert (row[:11] == 255).all()  # the hard core
    assert (row[20:] == 0).all()  # nothing from the radius on
    assert (np.diff(row[10:21]) < 0).all()  # strictly decreasing across the fade
    assert 0 < row[19] < 20 and 235 < row[11] < 255
    assert row[15] == 128  # halfway through the fade: smoothstep(0.5) = 0.5
    assert len(set(row[11:20])) == 9  # every fade pixel is its own intermediate value
    # Hardness 0: a soft dab that is full only at the very centre.
    soft = new_mask(100, 100)
    stroke_segment(soft, (50.5, 50.5), (50.5, 50.5), 40, hardness=0.0)
    assert soft[50, 50] == 255 and 0 < soft[50, 60] < 255 and soft[50, 70] == 0
    assert (soft <= mask).all()


def test_erasing_lowers_values_to_the_brush_shape():
    mask = np.full((60, 60), 255, dtype=np.uint8)
    box = stroke_segment(mask, (30.5, 30.5), (30.5, 30.5), 10, erase=True)
    assert box == (25, 25, 36, 36)
    assert mask[30, 30] == 0 and mask[30, 34] == 0
    assert mask[30, 35] == 127  # the rim: 255 - 128
    assert mask[30, 36] == 255 and mask[0, 0] == 255
    painted = new_mask(60, 60)
    stroke_segment(painted, (30.5, 30.5), (30.5, 30.5), 10)
    assert (mask == 255 - painted).all()  # erasing a full mask leaves the negative of painting
    # Erasing where nothing is painted changes nothing.
    empty = new_mask(60, 60)
    stroke_segment(empty, (30.5, 30.5), (10.0, 5.0), 10, erase=True)
    assert is_empty(empty)


def test_paint_never_lowers_and_erase_never_raises():
    rng = np.random.default_rng(7)
    mask = rng.integers(0, 256, (120, 140), dtype=np.uint8)
    for i in range(60):
        p0 = tuple(rng.uniform(-20, 160, 2))
        p1 = tuple(np.add(p0, rng.normal(0, 20, 2)))
        size, hardness, erase = float(rng.uniform(1, 40)), float(rng.uniform(0, 1)), bool(i % 2)
        before = mask.copy()
        box = stroke_segment(mask, p0, p1, size, hardness, erase=erase)
        changed = mask != before
        if erase:
            assert (mask <= before).all()
        else:
            assert (mask >= before).all()
        if changed.any():
            x0, y0, x1, y1 = box
            inside = np.zeros_like(changed)
            inside[y0:y1, x0:x1] = True
            assert not (changed & ~inside).any()  # every change is inside the returned box


def test_returned_box_is_exactly_the_touched_pixels_and_clipped_at_the_edges():
    rng = np.random.default_rng(3)
    for _ in range(200):
        p0 = tuple(rng.uniform(-30, 130, 2))
        p1 = tuple(np.add(p0, rng.normal(0, 30, 2)))
        mask = new_mask(100, 90)
        box = stroke_segment(mask, p0, p1, float(rng.uniform(0.5, 50)), float(rng.uniform(0, 1)))
        assert box == bounding_box(mask)
        if box is not None:
            assert 0 <= box[0] < box[2] <= 100 and 0 <= box[1] < box[3] <= 90
    mask = new_mask(50, 40)
    assert stroke_segment(mask, (0.0, 0.0), (0.0, 0.0), 10) == (0, 0, 5, 5)  # clipped top-left
    # Pixel 45's centre is 3.5 from x = 49: the rim of a size-6 brush, zero; row 36's is 3 away: half.
    assert stroke_segment(mask, (49.0, 39.5), (60.0, 39.5), 6) == (46, 36, 50, 40)  # clipped bottom-right
    assert mask[36, 49] == 128 and mask[39, 46] == 255


@pytest.mark.parametrize(("p0", "p1"), [
    ((-10.0, -10.0), (-10.0, -10.0)),
    ((-5.6, 20.0), (-5.6, 30.0)),  # the brush's box reaches pixel 0, but its rim stops short of it
    ((30.0, 200.0), (-50.0, 45.6)),  # passes by outside the bottom-left corner
    ((1000.0, 1000.0), (2000.0, 1000.0)),
])
def test_strokes_fully_outside_return_none_and_change_nothing(p0, p1):
    mask = np.full((40, 40), 7, dtype=np.uint8)
    assert stroke_segment(mask, p0, p1, 10) is None
    assert stroke_segment(mask, p0, p1, 10, erase=True) is None
    assert (mask == 7).all()


def test_non_finite_points_are_ignored():
    mask = new_mask(10, 10)
    assert stroke_segment(mask, (float("nan"), 1.0), (2.0, 2.0), 4) is None
    assert stroke_segment(mask, (1.0, 1.0), (float("inf"), 2.0), 4) is None
    assert is_empty(mask)
    # A vanishingly short segment is a dab, not a division by almost zero.
    dab, tiny = new_mask(10, 10), new_mask(10, 10)
    stroke_segment(dab, (5.0, 5.0), (5.0, 5.0), 4)
    stroke_segment(tiny, (5.0, 5.0), (5.0 + 1e-160, 5.0), 4)
    assert (tiny == dab).all() and dab.any()


def test_a_stroke_edits_the_mask_in_place_only_within_its_box():
    mask = new_mask(300, 200)
    view = mask[50:150, 100:250]  # the canvas may hold a view; the stroke must write through
    box = stroke_segment(mask, (150.0, 100.0), (170.0, 110.0), 20)
    assert view.any()
    x0, y0, x1, y1 = box
    assert mask[:y0].sum() == mask[y1:].sum() == mask[:, :x0].sum() == mask[:, x1:].sum() == 0


# --- rectangle, lasso ----------------------------------------------------------------------------


def test_fill_rect_fills_clips_and_accepts_corners_in_any_order():
    mask = new_mask(50, 40)
    assert fill_rect(mask, (10, 5, 20, 15)) == (10, 5, 20, 15)
    assert (mask[5:15, 10:20] == 255).all() and mask.sum() == 255 * 100
    reversed_mask = new_mask(50, 40)
    assert fill_rect(reversed_mask, (20, 15, 10, 5)) == (10, 5, 20, 15)
    assert (reversed_mask == mask).all()
    other_diagonal = new_mask(50, 40)
    assert fill_rect(other_diagonal, (20, 5, 10, 15)) == (10, 5, 20, 15)
    assert (other_diagonal == mask).all()
    clipped = new_mask(50, 40)
    assert fill_rect(clipped, (-10, 30, 5, 100)) == (0, 30, 5, 40)
    assert clipped.sum() == 255 * 5 * 10
    assert fill_rect(clipped, (60, 0, 70, 10)) is None  # fully outside
    assert fill_rect(clipped, (10, 10, 10, 20)) is None  # zero width
    assert clipped.sum() == 255 * 5 * 10
    assert fill_rect(mask, (12, 7, 14, 9), erase=True) == (12, 7, 14, 9)
    assert (mask[7:9, 12:14] == 0).all() and mask.sum() == 255 * 96
    floats = new_mask(50, 40)
    assert fill_rect(floats, (9.6, 5.2, 19.7, 14.9)) == (10, 5, 20, 15)  # pointer positions: rounded


def test_lasso_square_on_pixel_edges_is_exact():
    mask = new_mask(40, 40)
    box = fill_polygon(mask, [(10, 10), (20, 10), (20, 20), (10, 20)])
    assert box == (10, 10, 20, 20) == bounding_box(mask)
    assert (mask[10:20, 10:20] == 255).all() and mask.sum() == 255 * 100


def test_lasso_triangle_inside_outside_and_anti_aliased_edge():
    mask = new_mask(64, 64)
    box = fill_polygon(mask, [(10, 10), (50, 10), (10, 50)])
    cols, rows = np.meshgrid(np.arange(64), np.arange(64))
    legs = (cols >= 10) & (rows >= 10)
    # Pixel (i, j) spans i+j .. i+j+2 in x+y; the hypotenuse is x+y = 60.
    assert (mask[legs & (cols + rows <= 58)] == 255).all()
    on_edge = mask[legs & (cols + rows == 59)]
    assert len(on_edge) == 40 and (np.abs(on_edge.astype(int) - 128) <= 2).all()  # half covered
    assert (mask[~legs | (cols + rows >= 60)] == 0).all()
    assert box == (10, 10, 50, 50) == bounding_box(mask)
    assert mask.sum() / 255 == pytest.approx(800, abs=1)  # the triangle's area


def test_lasso_with_many_points_a_concave_notch_and_either_winding():
    angles = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    circle = [(60 + 30 * math.cos(a), 50 + 30 * math.sin(a)) for a in angles]
    mask = new_mask(120, 100)
    box = fill_polygon(mask, circle)
    assert mask.sum() / 255 == pytest.approx(math.pi * 900, rel=0.003)
    assert box == bounding_box(mask) == (30, 20, 90, 80)
    assert mask[50, 60] == 255 and mask[50, 88] == 255 and mask[50, 91] == 0 and mask[22, 32] == 0
    backwards = new_mask(120, 100)
    fill_polygon(backwards, circle[::-1])
    assert (backwards == mask).all()
    # A "U": the notch between the arms stays empty.
    u_shape = new_mask(60, 60)
    fill_polygon(u_shape, [(10, 10), (20, 10), (20, 40), (40, 40), (40, 10), (50, 10), (50, 50), (10, 50)])
    assert (u_shape[10:40, 20:40] == 0).all()
    assert (u_shape[10:50, 10:20] == 255).all() and (u_shape[40:50, 10:50] == 255).all()


def test_lasso_that_crosses_itself_fills_both_loops():
    mask = new_mask(100, 60)
    fill_polygon(mask, [(10, 10), (90, 50), (90, 10), (10, 50)])  # a bow tie: opposite windings
    assert mask[30, 20] == 255 and mask[30, 80] == 255 and mask[30, 50] > 0
    assert mask[12, 50] == 0 and mask[48, 50] == 0
    assert mask.sum() / 255 == pytest.approx(2 * 800, abs=2)
    twice = new_mask(40, 40)  # a loop drawn round twice: still just filled
    fill_polygon(twice, [(10, 10), (30, 10), (30, 30), (10, 30)] * 2)
    assert (twice[10:30, 10:30] == 255).all() and twice.sum() == 255 * 400


def test_lasso_is_clipped_to_the_mask_and_can_erase():
    mask = new_mask(40, 30)
    box = fill_polygon(mask, [(-20, -20), (30, -20), (30, 10), (-20, 10)])
    assert box == (0, 0, 30, 10) and (mask[:10, :30] == 255).all() and mask.sum() == 255 * 300
    assert fill_polygon(mask, [(5, 2), (25, 2), (25, 8), (5, 8)], erase=True) == (5, 2, 25, 8)
    assert (mask[2:8, 5:25] == 0).all() and mask.sum() == 255 * (300 - 120)
    assert fill_polygon(mask, [(100, 100), (120, 100), (110, 120)]) is None  # fully outside
    assert fill_polygon(mask, [(1, 1), (5, 5)]) is None  # not an area
    assert fill_polygon(mask, [(1, 1), (5, 5), (9, 9)]) is None  # a line has no area
    assert mask.sum() == 255 * 180


def test_lasso_paint_never_lowers_existing_values():
    mask = np.full((30, 30), 200, dtype=np.uint8)
    fill_polygon(mask, [(5.3, 5.7), (20.2, 6.1), (12.9, 24.4)])
    assert mask.min() == 200 and mask.max() == 255


# --- whole-mask operations ---------------------------------------------------------------------


def test_invert_bounding_box_and_is_empty():
    mask = new_mask(30, 20)
    assert is_empty(mask) and bounding_box(mask) is None
    mask[5, 7] = 1
    assert not is_empty(mask)
    assert bounding_box(mask) == (7, 5, 8, 6)
    assert bounding_box(mask, threshold=1) is None
    mask[12:15, 3:25] = 200
    assert bounding_box(mask) == (3, 5, 25, 15)
    assert bounding_box(mask, threshold=199) == (3, 12, 25, 15)
    inverted = invert(mask)
    assert inverted.dtype == np.uint8 and inverted is not mask
    assert inverted[0, 0] == 255 and inverted[5, 7] == 254 and inverted[13, 10] == 55
    assert (invert(inverted) == mask).all()
    assert mask[0, 0] == 0  # the input is not changed


def test_box_helpers():
    assert clip_box((-5, -5, 10, 10), 8, 6) == (0, 0, 8, 6)
    assert clip_box((8, 0, 12, 4), 8, 6) is None
    assert union_box(None, (1, 2, 3, 4)) == (1, 2, 3, 4) == union_box((1, 2, 3, 4), None)
    assert union_box((1, 2, 3, 4), (0, 5, 2, 9)) == (0, 2, 3, 9)
    assert union_box(None, None) is None


def test_mask_from_a_grey_picture_and_back():
    values = np.array([[0, 1, 127], [128, 254, 255]], dtype=np.uint8)
    mask = mask_from_image(Image.fromarray(values, "L"))
    assert mask.dtype == np.uint8 and (mask == values).all()
    mask[0, 0] = 9  # a copy the canvas may edit
    assert (np.asarray(mask_to_image(values)) == values).all()
    rgb = Image.new("RGB", (4, 3), (255, 255, 255))
    rgb.putpixel((1, 1), (0, 0, 0))
    from_rgb = mask_from_image(rgb)
    assert from_rgb.shape == (3, 4) and from_rgb[1, 1] == 0 and from_rgb[0, 0] == 255
    bilevel = Image.new("1", (3, 2), 0)
    bilevel.putpixel((2, 1), 1)
    assert mask_from_image(bilevel).tolist() == [[0, 0, 0], [0, 0, 255]]


def test_mask_from_a_picture_with_transparency_uses_its_alpha():
    rgba = np.zeros((10, 12, 4), dtype=np.uint8)  # black everywhere: only alpha carries the mask
    rgba[2:5, 3:9, 3] = 255
    rgba[7, 1, 3] = 100
    mask = mask_from_image(Image.fromarray(rgba, "RGBA"))
    assert (mask == rgba[..., 3]).all()
    la = Image.fromarray(np.stack([np.full((10, 12), 255, np.uint8), rgba[..., 3]], axis=-1), "LA")
    assert (mask_from_image(la) == rgba[..., 3]).all()
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    palette.putpixel((1, 2), 1)
    palette.info["transparency"] = 0  # index 0 transparent
    assert mask_from_image(palette).tolist() == [[0] * 4, [0] * 4, [0, 255, 0, 0], [0] * 4]


def test_opaque_rgba_mask_uses_brightness_not_its_alpha():
    # What most paint programs save: white strokes on black, as RGBA with alpha 255 everywhere.
    rgba = Image.new("RGBA", (8, 6), (0, 0, 0, 255))
    rgba.paste((255, 255, 255, 255), (2, 1, 5, 4))
    mask = mask_from_image(rgba)
    assert mask.sum() == 255 * 9 and (mask[1:4, 2:5] == 255).all()


def test_sixteen_bit_grey_masks_are_scaled_not_clipped():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    mask = mask_from_image(Image.fromarray(values))  # mode I;16
    assert mask.tolist() == [[0, 1, 128, 255]]
    wide = Image.fromarray(values.astype(np.int32))  # mode I (how some Pillow versions open 16-bit PNGs)
    assert mask_from_image(wide).tolist() == [[0, 1, 128, 255]]


def test_mask_from_image_resizes_to_the_picture():
    source = Image.new("L", (20, 10), 0)
    source.paste(255, (0, 0, 10, 10))  # left half white
    mask = mask_from_image(source, size=(40, 30))
    assert mask.shape == (30, 40)
    assert (mask[:, :18] == 255).all() and (mask[:, 22:] == 0).all()
    same = mask_from_image(source, size=(20, 10))
    assert (same == np.asarray(source)).all()


def square_mask(side=200, lo=80, hi=120):
    mask = new_mask(side, side)
    mask[lo:hi, lo:hi] = 255
    return mask


@pytest.mark.parametrize("radius", [1, 2, 3, 5, 8, 13, 20, 40])
def test_grow_moves_each_edge_out_by_the_radius(radius):
    mask = square_mask()
    grown = grow(mask, radius)
    assert set(np.unique(grown)) <= {0, 255}
    x0, y0, x1, y1 = bounding_box(grown)
    for moved in (80 - x0, 80 - y0, x1 - 120, y1 - 120):
        assert abs(moved - radius) <= 1
    middle = grown[100]  # a row through the middle: 40 + 2r wide
    assert abs(int((middle > 0).sum()) - (40 + 2 * radius)) <= 2
    assert (grown[mask > 0] == 255).all()  # nothing that was there is lost
    if radius >= 3:  # rounded corners: the diagonal corner is farther than r away
        assert grown[80 - radius, 80 - radius] == 0


@pytest.mark.parametrize("radius", [1, 3, 8, 15])
def test_negative_grow_shrinks_each_edge_by_the_radius(radius):
    mask = square_mask()
    shrunk = grow(mask, -radius)
    x0, y0, x1, y1 = bounding_box(shrunk)
    for moved in (x0 - 80, y0 - 80, 120 - x1, 120 - y1):
        assert abs(moved - radius) <= 1
    assert (shrunk <= mask).all()
    assert (shrunk[80 + radius + 1:120 - radius - 1, 80 + radius + 1:120 - radius - 1] == 255).all()


@pytest.mark.parametrize("radius", [1, 4, 10, 25])
def test_grow_turns_a_dot_into_a_disc_and_widens_a_thin_line_by_the_full_radius(radius):
    dot = new_mask(80, 80)
    dot[40, 40] = 255
    disc = grow(dot, radius)
    assert bounding_box(disc) == (40 - radius, 40 - radius, 41 + radius, 41 + radius)
    assert (disc > 0).sum() == pytest.approx(math.pi * (radius + 0.5) ** 2, rel=0.1, abs=2)
    assert disc[40 - radius, 40] == 255 and disc[40 + radius, 40] == 255
    if radius >= 4:
        assert disc[40 - radius, 40 - radius] == 0  # round, not square
    line = new_mask(120, 80)
    stroke_segment(line, (10.0, 40.0), (110.0, 40.0), 2)  # a thin brush line, rows 39 and 40
    widened = grow(line, radius)
    assert (widened[39 - radius:41 + radius, 10:110] == 255).all()
    assert not widened[:39 - radius].any() and not widened[41 + radius:].any()


def test_grow_and_shrink_on_soft_masks_keep_their_direction():
    mask = new_mask(100, 100)
    mask[20:60, 20:60] = 200  # a half-opaque area
    mask[80:85, 80:85] = 60  # a faint dab, under the 50% edge
    stroke_segment(mask, (40.0, 40.0), (70.0, 70.0), 16, hardness=0.0)
    grown, shrunk = grow(mask, 4), grow(mask, -4)
    assert (grown >= mask).all()  # growing never lowers a value
    assert (shrunk <= mask).all()  # shrinking never raises one (200 stays 200 inside)
    assert shrunk[40, 40] == mask[40, 40] and shrunk[30, 25] == 200
    assert grown[82, 82] == 60 and shrunk[82, 82] == 0
    assert grown[20 - 3, 40] == 255 and shrunk[20 + 3, 40] == 0


def test_grow_edge_cases():
    empty = new_mask(30, 30)
    for radius in (5, -5):
        result = grow(empty, radius)
        assert is_empty(result) and result is not empty
    mask = square_mask(60, 20, 40)
    same = grow(mask, 0)
    assert (same == mask).all() and same is not mask
    full = np.full((30, 30), 255, dtype=np.uint8)
    assert (grow(full, -5) == 255).all()  # the picture's edges are not mask edges
    left = new_mask(60, 30)
    left[:, :20] = 255
    shrunk = grow(left, -5)
    assert bounding_box(shrunk)[0] == 0 and abs(bounding_box(shrunk)[2] - 15) <= 1
    assert (grow(mask, 2.6) == grow(mask, 3)).all()  # fractional radii are rounded
    assert grow(mask, 100).all()  # far larger than the picture: everything


def test_feather_zero_is_unchanged_and_a_copy():
    mask = square_mask(50, 10, 30)
    for radius in (0, -3):
        same = feather(mask, radius)
        assert (same == mask).all() and same is not mask


def test_feather_softens_the_edge_over_about_its_radius():
    mask = new_mask(100, 50)
    mask[:, :50] = 255  # the edge is between x = 49 and x = 50
    soft = feather(mask, 8)
    assert soft.dtype == np.uint8 and soft.shape == mask.shape
    row = soft[25].astype(int)
    assert 100 < row[49] < 160 and 100 < row[50] < 160  # the edge itself: about half
    assert (np.diff(row[35:65]) <= 0).all() and (np.diff(row[40:60]) < 0).all()  # a smooth ramp
    assert row[50 + 4] > 20  # it reaches out about the radius...
    assert row[50 + 8] <= 5 and (row[50 + 11:] == 0).all()  # ...and not much further
    assert row[49 - 8] >= 250 and (row[:49 - 14] == 255).all()
    assert (soft == soft[0]).all()  # the image's own edges do not fade
    soft[0, 0] = 1  # a new writable array, like every other mask operation returns
    assert mask[0, 0] == 255


def test_feather_of_an_empty_mask_is_empty():
    assert is_empty(feather(new_mask(20, 20), 10))


# --- speed ---------------------------------------------------------------------------------------


def _median_stroke_ms(mask, size, hardness):
    rng = np.random.default_rng(int(size))
    times = []
    for _ in range(60):
        x, y = rng.uniform(300, 3700, 2)
        angle = rng.uniform(0, 2 * np.pi)
        p1 = (x + 40 * math.cos(angle), y + 40 * math.sin(angle))  # a 40 px mouse move
        start = time.perf_counter()
        stroke_segment(mask, (x, y), p1, size, hardness)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def test_a_stroke_segment_on_a_4096_mask_is_fast(capsys):
    # The canvas budget is 16 ms per repaint on a 4096x4096 picture; the mask update is a small part.
    mask = new_mask(4096, 4096)
    results = {(size, hardness): _median_stroke_ms(mask, size, hardness)
               for size in (64, 256) for hardness in (1.0, 0.5)}
    with capsys.disabled():
        print("\nstroke_segment on 4096x4096, 40 px move, median ms: "
              + ", ".join(f"size {s} hardness {h}: {ms:.3f}" for (s, h), ms in results.items()))
    assert results[(64, 1.0)] < 8 and results[(64, 0.5)] < 8
    assert results[(256, 1.0)] < 16 and results[(256, 0.5)] < 16


@pytest.mark.parametrize("threshold", [0, 100])
def test_bounding_box_holds_exactly_the_pixels_above_the_threshold(threshold) -> None:  # noqa: ANN001
    rng = np.random.default_rng(5)
    assert bounding_box(new_mask(0, 7), threshold) is None and bounding_box(new_mask(7, 0), threshold) is None
    for _ in range(200):
        mask = np.where(rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < rng.random() * 0.05,
                        rng.integers(1, 256), 0).astype(np.uint8)
        above = mask > threshold
        rows, cols = np.flatnonzero(above.any(axis=1)), np.flatnonzero(above.any(axis=0))
        expected = None if rows.size == 0 else (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        assert bounding_box(mask, threshold) == expected


def _blurred_reach(radius: float) -> int:
    """How far feather(mask, radius) really reaches past a diagonal edge, where it reaches farthest: the farthest
    pixel it leaves above 0, from the nearest masked pixel."""
    from studio.core.mask import feather

    side = int(3 * radius) + 8  # well past the blur's reach
    ys, xs = np.mgrid[:2 * side, :2 * side]
    gap = xs + ys - (2 * side - 1)  # steps to the nearest masked pixel: the mask is the pixels with gap <= 0
    edge = np.where(gap <= 0, 255, 0).astype(np.uint8)
    reached = gap[(feather(edge, radius) > 0) & (gap > 0) & (np.abs(xs - ys) <= 2)]  # away from the picture's edges
    far = int(reached.max()) if reached.size else 0
    return math.ceil(math.hypot(far // 2, far - far // 2))  # half the steps each way


@pytest.mark.parametrize("radius", [1, 2, 3, 5, 8, 12.5, 13, 21, 34, 55, 64, 89, 100.5, 128, 144, 200, 233, 256])
def test_feather_reach_is_the_blur_s_measured_reach_or_a_pixel_more(radius):
    from studio.core.mask import feather_reach

    assert _blurred_reach(radius) <= feather_reach(radius) <= _blurred_reach(radius) + 1


def test_feather_reach_is_arithmetic_with_no_image_work(monkeypatch):
    """The Feather box asks at each change, on the window's thread: a blur there took 283 ms at 256 px."""
    from studio.core import mask as mask_module

    def no_image_work(*args, **kwargs):
        raise AssertionError("feather_reach blurred a picture")

    monkeypatch.setattr(mask_module, "feather", no_image_work)
    monkeypatch.setattr(mask_module.Image, "fromarray", no_image_work)
    monkeypatch.setattr(mask_module.np, "zeros", no_image_work)
    monkeypatch.setattr(mask_module.np, "where", no_image_work)
    assert [mask_module.feather_reach(r) for r in (0, 8, 64, 128, 256, 300.5)] == [0, 12, 88, 175, 349, 409]


@pytest.mark.parametrize("radius", [0, 1, 4, 8, 16, 40])
def test_feather_reach_is_how_far_past_the_mask_an_inpaint_changes_pixels(radius):
    """The Feather box says "blends up to N px beyond the mask": N is where paste_back's changes end, measured from
    a round stroke's edge."""
    from PIL import Image

    from studio.core.inpaint import paste_back
    from studio.core.mask import feather_reach

    size = 160
    mask = np.zeros((size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    mask[(yy - 80) ** 2 + (xx - 80) ** 2 <= 20 ** 2] = 255
    original = Image.new("RGB", (size, size), (0, 0, 0))
    result = paste_back(original, Image.new("RGB", (size, size), (255, 255, 255)), (0, 0, size, size), mask,
                        radius)
    changed = (np.asarray(result).max(axis=2) > 0) & (mask == 0)
    inside = np.argwhere(mask > 0)
    # The farthest changed pixel's distance to the stroke's nearest pixel (rounded up: whole pixels).
    reach = max((math.ceil(np.sqrt(((inside - p) ** 2).sum(axis=1)).min()) for p in np.argwhere(changed)),
                default=0)
    assert feather_reach(radius) >= reach  # never says less than it changes
    assert feather_reach(radius) <= reach + 2  # nor much more
    assert feather_reach(0) == 0 and 10 <= feather_reach(8) <= 12  # the tester saw changes 10 px out at 8


def _strokes(width: int = 1100, height: int = 600) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    ys, xs = np.mgrid[:height, :width]
    mask[(ys - 300) ** 2 + (xs - 400) ** 2 <= 60 ** 2] = 255
    mask[100:140, 600:900] = 255
    return mask


@pytest.mark.parametrize(("soft", "size"), [(False, (513, 777)), (False, (2200, 1200)), (True, (400, 200)),
                                            (True, (513, 777))])
def test_a_scaled_mask_masks_as_much_of_the_picture_as_before(soft, size):
    """Bilinear scaling spread a faint fringe past the strokes' edges that counted as masked: the mask grew 2-8 %
    (the next inpaint redrew that much more). A hard mask stays hard; a soft one keeps its soft values."""
    from studio.core.mask import scaled_mask

    mask = feather(_strokes(), 3) if soft else _strokes()
    width, height = size
    scaled = scaled_mask(mask, width, height)
    assert scaled.shape == (height, width) and scaled.dtype == np.uint8
    ratio = (scaled > 0).sum() / ((mask > 0).sum() * width * height / mask.size)
    assert abs(ratio - 1) < 0.006
    if soft:
        assert ((scaled > 0) & (scaled < 255)).any()  # still soft-edged
    else:
        assert set(np.unique(scaled)) == {0, 255}
    assert not scaled_mask(np.zeros((60, 110), np.uint8), 51, 77).any()
