"""Where two pictures differ is found exactly, and cheaply for the window's thread."""

from __future__ import annotations

import numpy as np
from PIL import Image


def every_difference(a: Image.Image, b: Image.Image) -> tuple[int, int, int, int] | None:
    """The box around every differing pixel, by comparing all of them (what the document must agree with)."""
    differs = (np.asarray(a) != np.asarray(b)).any(axis=2)
    rows, cols = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def edited(picture: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    after = picture.copy()
    height, width = picture.shape[:2]
    x0, y0 = rng.integers(0, width), rng.integers(0, height)
    x1, y1 = rng.integers(x0 + 1, width + 1), rng.integers(y0 + 1, height + 1)
    region = after[y0:y1, x0:x1]
    if kind == "colour":  # colour only: alpha (when there is one) stays as it was
        region[..., 0] ^= 0x55
    elif kind == "alpha":
        region[..., -1] ^= 0x0F
    elif kind == "corner":
        after[-1, -1, 1] ^= 1
    return after


def test_pictures_that_differ_all_over_are_compared_only_at_both_ends(monkeypatch) -> None:
    """Another picture opened over one of its size: comparing all of a 4096x4096 pair took 55-65 ms; the first and
    last strips already make the box all of the picture. Elsewhere every strip is compared, and the box is exact."""
    from PIL import ImageChops

    from studio.core import comparison
    from studio.core.comparison import changed_box

    monkeypatch.setattr(comparison, "COMPARED_PIXELS", 64 * 10)  # strips of 10 rows
    compared: list[int] = []
    difference = ImageChops.difference
    monkeypatch.setattr(ImageChops, "difference", lambda a, b: compared.append(a.height) or difference(a, b))
    rng = np.random.default_rng(11)
    first, second = (Image.fromarray(rng.integers(0, 256, (95, 64, 3), dtype=np.uint8)) for _ in range(2))
    assert changed_box(first, second) == (0, 0, 64, 95) and compared == [10, 5]
    speck = np.asarray(first).copy()
    speck[47, 30, 2] ^= 1  # in a middle strip, the last compared
    changes = [speck, np.asarray(first), edited(np.asarray(first), rng, "corner")]
    changes += [edited(np.asarray(first), rng, "colour") for _ in range(20)]
    for pixels in changes:
        other = Image.fromarray(pixels)
        for a, b in ((first, other), (first.convert("RGBA"), other.convert("RGBA"))):
            assert changed_box(a, b) == every_difference(a, b)
