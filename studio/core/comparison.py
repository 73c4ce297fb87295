"""Where two pictures or two masks differ, and the changes to the document worked out from that ahead of time.

Comparing a 4096x4096 picture or mask with the document's held the window's thread 10-60 ms, so the window does it
in a worker thread (``compare``, ``mask_change``) and hands the result to the document, which uses it only if what
it was compared with is still what it holds. ``changed_box`` and ``region`` are called through this module, also by
the document, so one patch of either reaches every call (tests check which thread compares).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageChops

from studio.core.mask import Box, bounding_box, union_box

COMPARED_PIXELS = 2**20  # compared per Pillow call, which holds the interpreter lock throughout (50-60 ms at 4096²)


class Comparison(NamedTuple):
    """A picture about to be set (``image``) compared ahead, off the window's thread, with the document's picture
    (``picture``): the box where they differ and, when made by ``compare``, each one's part in it. At 4096x4096
    the comparison cost the window's thread 30-40 ms, the two parts of a big inpaint 5-10 ms."""

    picture: Image.Image
    box: Box | None
    image: Image.Image | None = None
    before: Image.Image | None = None  # picture's part in box
    after: Image.Image | None = None  # image's part in box


def compare(picture: Image.Image, image: Image.Image) -> Comparison:
    """All that Document.set_image works out for taking ``image`` over ``picture`` (same size and mode)."""
    box = changed_box(picture, image)
    if box is None:
        return Comparison(picture, None)
    return Comparison(picture, box, image, region(picture, box), region(image, box))


@dataclass(frozen=True)
class MaskChange:
    """A new mask and where it differs from the document's mask at ``revision``, found off the window's thread:
    at 4096x4096 comparing the two and copying the changed part held the window 10-20 ms."""

    revision: int
    mask: np.ndarray
    box: Box | None
    before: np.ndarray | None  # the mask at that revision, inside box (a copy)
    masked: bool | None = None  # whether any pixel of the new mask is masked (None: not known)


def mask_change(revision: int, current: np.ndarray, new: np.ndarray) -> MaskChange:
    """The change from ``current`` (the document's mask at ``revision``) to ``new``, which is not edited after: a
    change of all of it gives the document ``new`` itself, as its mask and its undo record (made read-only)."""
    box = changed_box(current, new)
    if box is None:
        return MaskChange(revision, new, None, None)
    x0, y0, x1, y1 = box
    return MaskChange(revision, new, box, current[y0:y1, x0:x1].copy(), bool(new.any()))


def region(image: Image.Image, box: Box) -> Image.Image:
    """The part of a picture in ``box``; the picture itself when the box is all of it (pictures in the
    document are never changed in place, so a new generation's undo step copies nothing)."""
    return image if box == (0, 0, *image.size) else image.crop(box)


def changed_box(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> Box | None:
    """The box around every pixel that differs between two same-sized pictures (same mode) or masks.

    Pictures are compared by Pillow in C, without copying them into arrays: about 1 ms for a 1024x1024 result
    where comparing arrays took about 25 ms on the window's thread. Every band counts, alpha included
    (``alpha_only=False``: a colour change under unchanged alpha is a change).
    """
    if isinstance(a, Image.Image) and isinstance(b, Image.Image):
        return _changed_picture_box(a, b)
    diff = np.asarray(a) != np.asarray(b)
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    return bounding_box(diff.view(np.uint8))


def _changed_picture_box(a: Image.Image, b: Image.Image) -> Box | None:
    """changed_box of two pictures, a strip of rows at a time from both ends inwards: a worker thread comparing them
    lets the window's thread run between strips, and for two pictures that differ all over (another picture opened
    over one of its size) the first and last strips already make the box all of the picture: 5 ms where comparing
    every strip took 55-65 ms at 4096x4096."""
    width, height = a.size
    step = max(1, COMPARED_PIXELS // max(1, width))
    tops = list(range(0, height, step))
    if len(tops) == 1:  # one strip (up to 1024x1024): no copies of the pictures' rows
        return ImageChops.difference(a, b).getbbox(alpha_only=False)
    inwards = [tops[i // 2] if i % 2 == 0 else tops[-1 - i // 2] for i in range(len(tops))]
    box: Box | None = None
    for top in inwards:
        strip = (0, top, width, min(height, top + step))
        found = ImageChops.difference(a.crop(strip), b.crop(strip)).getbbox(alpha_only=False)
        if found is not None:
            box = union_box(box, (found[0], found[1] + top, found[2], found[3] + top))
            if box == (0, 0, width, height):
                break
    return box
