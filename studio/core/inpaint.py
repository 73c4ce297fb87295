"""Inpainting and outpainting around the model: where to work, what to start from, how to blend back.

The engine runs the diffusion; everything that decides pixels outside the model lives here,
so "outside the (feathered) mask nothing changes" is a property of this module, tested bitwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from studio.core.images import flatten
from studio.core.mask import Box, bounding_box, clip_box, feather

INPAINT_FILLS = ("original", "noise", "blurred")
SIZE_MULTIPLE = 8
MIN_WORKING_SIDE = 64
MAX_WORKING_ASPECT = 8.0
MAX_ASPECT = 2.0  # a masked-area crop wider or taller than this is widened: the model needs context


@dataclass(frozen=True)
class InpaintOptions:
    masked_only: bool = True  # work on the mask's box (+ padding) at the model's native size
    padding: int = 32  # pixels of context around the mask's box, in image pixels
    fill: str = "original"  # what the masked area starts from: original | noise | blurred
    feather: float = 8.0  # blur radius of the mask edge when blending the result back


def round_work_side(value: int, multiple: int = 8) -> int:
    """A side the model can work at: the nearest multiple (halves up), at least MIN_WORKING_SIDE."""
    return max(MIN_WORKING_SIDE, (value + multiple // 2) // multiple * multiple)


def inpaint_area(mask: np.ndarray, options: InpaintOptions, native: int,
                 cell: int = 8) -> tuple[Box, tuple[int, int]] | None:
    """Where an inpainting job works and at what size: (box of the picture, work size); None for an empty mask.

    Masked area only: the mask's box plus padding (widened to at most MAX_ASPECT), scaled to about native x native
    pixels of area. Whole picture: the picture at its own size, rounded to cells. The engine plans its job here and
    the window fits a control guide's thumbnail here, so the two cannot disagree."""
    height, width = mask.shape
    if not options.masked_only:
        return None if not mask.any() else ((0, 0, width, height),
                                             (round_work_side(width, cell), round_work_side(height, cell)))
    box = working_box(mask, options.padding)
    if box is None:
        return None
    w, h = box[2] - box[0], box[3] - box[1]
    if w / h > MAX_ASPECT or h / w > MAX_ASPECT:
        box = working_box(mask, options.padding, aspect=MAX_ASPECT if w > h else 1 / MAX_ASPECT)
        w, h = box[2] - box[0], box[3] - box[1]
    work = working_size(w, h, native)
    return box, (round_work_side(work[0], cell), round_work_side(work[1], cell))


def working_box(mask: np.ndarray, padding: int, aspect: float | None = None) -> Box | None:
    """The mask's bounding box plus padding, widened to ``aspect`` (w/h) where the image allows."""
    box = bounding_box(mask)
    if box is None:
        return None
    height, width = mask.shape
    padding = max(0, int(padding))
    x0, y0, x1, y1 = box[0] - padding, box[1] - padding, box[2] + padding, box[3] + padding
    if aspect and aspect > 0:
        w, h = x1 - x0, y1 - y0
        if w / h < aspect:
            extra = int(round(h * aspect)) - w
            x0, x1 = x0 - extra // 2, x1 + extra - extra // 2
        else:
            extra = int(round(w / aspect)) - h
            y0, y1 = y0 - extra // 2, y1 + extra - extra // 2
        # Slide back inside the image before clipping, so the box keeps its size where it can.
        shift_x = max(0, -x0) - max(0, x1 - width)
        shift_y = max(0, -y0) - max(0, y1 - height)
        x0, x1, y0, y1 = x0 + shift_x, x1 + shift_x, y0 + shift_y, y1 + shift_y
    return clip_box((x0, y0, x1, y1), width, height)


def working_size(box_width: int, box_height: int, native: int) -> tuple[int, int]:
    """Scale a region to about native x native pixels of area, keeping its shape, multiples of 8.

    A region longer than MAX_WORKING_ASPECT:1 is worked on at that aspect (it is stretched to it
    and back), so a thin strip never asks the model for a 10000x64 picture.
    """
    if box_width <= 0 or box_height <= 0 or native <= 0:
        raise ValueError(f"cannot work on a {box_width}x{box_height} region at {native} pixels")
    aspect = min(max(box_width / box_height, 1 / MAX_WORKING_ASPECT), MAX_WORKING_ASPECT)
    def fit(v: float) -> int:
        return max(MIN_WORKING_SIDE, int(round(v / SIZE_MULTIPLE)) * SIZE_MULTIPLE)
    return fit(native * np.sqrt(aspect)), fit(native / np.sqrt(aspect))


def fill_masked(image: Image.Image, mask: np.ndarray, fill: str, seed: int = 0) -> Image.Image:
    """What the model starts from under the mask: the original, noise, or the surroundings blurred in.

    Unmasked pixels are kept bit for bit; partly masked pixels are mixed in proportion.
    """
    if fill not in INPAINT_FILLS:
        raise ValueError(f"unknown fill {fill!r}; use one of {INPAINT_FILLS}")
    _check_mask_size(image, mask)
    if fill == "original":
        return image
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if fill == "noise":
        replacement = np.random.default_rng(seed).integers(0, 256, rgb.shape, dtype=np.uint8)
    else:
        replacement = _surroundings(rgb, mask)
    alpha = (mask.astype(np.uint16))[..., None]
    out = (rgb.astype(np.uint16) * (255 - alpha) + replacement.astype(np.uint16) * alpha + 127) // 255
    return Image.fromarray(out.astype(np.uint8), "RGB")


_FILL_WORKING_SIDE = 256  # the blurred fill is smooth, so it is worked out on a small copy


def _surroundings(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The unmasked picture spread into the masked area (however large), then blurred.

    Push-pull: the unmasked pixels (mask 0) are averaged down, halving until every pixel has
    full weight, then pulled back up, each level filling what its finer level lacks. No pixel
    under the mask, even partly, leaks into the replacement (partly masked pixels keep their
    share of the original when the replacement is mixed in). With nothing unmasked, the picture blurred.
    """
    height, width = mask.shape
    factor = max(1, -(-max(height, width) // _FILL_WORKING_SIDE))
    small = (max(1, -(-width // factor)), max(1, -(-height // factor)))
    keep = (mask == 0).astype(np.float32)
    weight = _resize_float(keep, small)
    colour = np.stack([_resize_float(rgb[..., c] * keep, small) for c in range(3)], axis=-1)
    filled = _push_pull(colour, weight)
    if filled is None:
        filled = np.stack([_resize_float(rgb[..., c].astype(np.float32), small) for c in range(3)], axis=-1)
    radius = max(8.0, max(width, height) / 16) / factor
    blurred = Image.fromarray(np.clip(np.rint(filled), 0, 255).astype(np.uint8), "RGB")
    blurred = blurred.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(blurred.resize((width, height), Image.Resampling.BILINEAR))


def _resize_float(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average a float array to size (width, height)."""
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), "F")
    return np.asarray(image.resize(size, Image.Resampling.BOX), dtype=np.float32)


def _push_pull(colour: np.ndarray, weight: np.ndarray) -> np.ndarray | None:
    """Fill the low-weight pixels of premultiplied colour (h, w, 3) from coarser levels; None if weight is 0."""
    levels = [(colour, weight)]
    while weight.min() < 1 and max(weight.shape) > 1:
        h, w = weight.shape
        ph, pw = h % 2, w % 2
        colour = np.pad(colour, ((0, ph), (0, pw), (0, 0))).reshape((h + ph) // 2, 2, (w + pw) // 2, 2, 3).sum((1, 3))
        weight = np.pad(weight, ((0, ph), (0, pw))).reshape((h + ph) // 2, 2, (w + pw) // 2, 2).sum((1, 3))
        full = weight > 1  # enough samples: keep their average, at weight 1
        colour[full] /= weight[full][:, None]
        weight = np.minimum(weight, 1)
        levels.append((colour, weight))
    colour, weight = levels.pop()
    if not (weight > 0).any():
        return None
    result = colour / np.maximum(weight, 1e-12)[..., None]
    for colour, weight in reversed(levels):
        h, w = weight.shape
        up = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(result[..., c]), "F").resize(
            (result.shape[1] * 2, result.shape[0] * 2), Image.Resampling.BILINEAR))[:h, :w] for c in range(3)], axis=-1)
        result = colour + (1 - weight)[..., None] * up
    return result


def _check_mask_size(image: Image.Image, mask: np.ndarray) -> None:
    if mask.shape != (image.height, image.width):
        raise ValueError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the picture is {image.width}x{image.height}")


def blend(original: Image.Image, generated: Image.Image, blend_mask: np.ndarray) -> Image.Image:
    """original where blend_mask is 0 (bit for bit), generated where it is 255, mixed between."""
    _check_mask_size(original, blend_mask)
    base = np.asarray(original.convert("RGB"), dtype=np.uint16)
    new = np.asarray(generated.convert("RGB").resize(original.size, Image.Resampling.LANCZOS), dtype=np.uint16)
    alpha = blend_mask.astype(np.uint16)[..., None]
    out = (base * (255 - alpha) + new * alpha + 127) // 255
    result = Image.fromarray(out.astype(np.uint8), "RGB")
    if original.mode == "RGBA":  # what was made anew shows, also where the picture was see-through
        kept = np.asarray(original.getchannel("A"), dtype=np.uint8)
        result.putalpha(Image.fromarray(np.maximum(kept, blend_mask.astype(np.uint8)), "L"))
    return result


def paste_back(original: Image.Image, generated: Image.Image, box: Box, mask: np.ndarray,
               feather_radius: float) -> Image.Image:
    """Scale the generated region to box, and blend it into original under the feathered mask."""
    blend_mask = feather(mask, feather_radius)
    x0, y0, x1, y1 = box
    region = blend(original.crop(box), generated.resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS),
                   blend_mask[y0:y1, x0:x1])
    result = original.copy()
    result.paste(region, (x0, y0))
    return result


MAX_EXTEND = 2048  # pixels added to one side at a time (the Extend Canvas dialog's limit, and the frame tool's)


def extend_canvas(image: Image.Image, mask: np.ndarray | None, left: int, top: int, right: int, bottom: int,
                  overlap: int = 16) -> tuple[Image.Image, np.ndarray]:
    """Outpainting: a bigger picture with the new border masked (plus ``overlap`` px into the old edge).

    The new area starts as the old edge pixels stretched outward and blurred, which gives the model
    the right colours to continue; inpainting then redraws it. A transparent picture's edge is taken as the
    model sees it (flattened on white), not the colours hidden under its transparency (often black); inside,
    the picture keeps its own pixels and alpha.
    """
    if min(left, top, right, bottom) < 0:
        raise ValueError("Extend amounts cannot be negative.")
    if mask is not None:
        _check_mask_size(image, mask)
    overlap = max(0, overlap)
    w, h = image.size
    new_w, new_h = w + left + right, h + top + bottom
    # Edge-extend: numpy's "edge" padding repeats the outermost row/column outward.
    extended = np.pad(np.asarray(flatten(image)), ((top, bottom), (left, right), (0, 0)), mode="edge")
    _blur_border(extended, (left, top, right, bottom), radius=max(4, max(left, top, right, bottom) // 4))
    if image.mode != "RGB":
        extended[top:top + h, left:left + w] = np.asarray(image.convert("RGB"))
    new_mask = np.full((new_h, new_w), 255, dtype=np.uint8)
    inner = np.zeros((h, w), dtype=np.uint8) if mask is None else mask.copy()
    # The old picture is kept except a band along each edge that was extended.
    if left:
        inner[:, :min(overlap, w)] = 255
    if right:
        inner[:, max(0, w - overlap):] = 255
    if top:
        inner[:min(overlap, h), :] = 255
    if bottom:
        inner[max(0, h - overlap):, :] = 255
    new_mask[top:top + h, left:left + w] = inner
    result = Image.fromarray(extended, "RGB")
    if image.mode == "RGBA":
        alpha = np.pad(np.asarray(image.getchannel("A")), ((top, bottom), (left, right)), constant_values=255)
        result.putalpha(Image.fromarray(alpha, "L"))
    return result, new_mask


def without_extended_border(current: np.ndarray, extended: np.ndarray, before: np.ndarray | None, left: int,
                             top: int) -> np.ndarray:
    """The mask ``current`` with what extend_canvas added to it taken off again, once the new border is filled: where
    Extend's mask ``extended`` differs from the person's mask ``before`` it (placed at ``left``, ``top``; None: there
    was none), the person's own value comes back. Pixels painted since (no longer Extend's) stay as they are."""
    kept = np.zeros_like(extended)
    if before is not None:
        kept[top:top + before.shape[0], left:left + before.shape[1]] = before
    return np.where((extended != kept) & (current == extended), kept, current)


def _blur_border(padded: np.ndarray, amounts: tuple[int, int, int, int], radius: int) -> None:
    """Blur the new strips of an edge-padded picture in place; the old picture inside stays as it is.

    Only each strip and a margin beside it is blurred, which gives the very pixels a blur of the whole
    picture gives: Pillow's Gaussian is three box passes of at most radius + 1 pixels each, so nothing
    further than 3 * radius + 3 away reaches a strip. Extending a 4096x4096 picture by 64 px took
    0.71-0.74 s when the whole picture was blurred; 0.03 s now (on a 2-core CPU).
    """
    left, top, right, bottom = amounts
    height, width = padded.shape[:2]
    margin = 3 * radius + 8
    strips = ((0, 0, left, height), (width - right, 0, width, height),
              (0, 0, width, top), (0, height - bottom, width, height))
    blurred = []
    for x0, y0, x1, y1 in strips:
        if x1 > x0 and y1 > y0:
            cx0, cy0 = max(0, x0 - margin), max(0, y0 - margin)
            around = padded[cy0:min(height, y1 + margin), cx0:min(width, x1 + margin)]
            soft = np.asarray(Image.fromarray(around, "RGB").filter(ImageFilter.GaussianBlur(radius)))
            blurred.append((x0, y0, soft[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]))
    for x0, y0, soft in blurred:  # after all are blurred: each strip is blurred from the unblurred padding
        padded[y0:y0 + soft.shape[0], x0:x0 + soft.shape[1]] = soft


def carry_changes(source: Image.Image, result: Image.Image, onto: Image.Image) -> Image.Image:
    """``onto`` with the pixels where ``result`` differs from ``source`` (what a job was given) taken from
    ``result``: a job's changes, put on a picture that has changed since it was asked for (another inpaint
    landed meanwhile). All three are the same size."""
    if result.mode not in ("RGB", "RGBA"):
        result = result.convert("RGB")
    made = np.asarray(result)
    changed = np.any(made != np.asarray(source.convert(result.mode)), axis=-1)
    return Image.fromarray(np.where(changed[..., None], made, np.asarray(onto.convert(result.mode))), result.mode)
