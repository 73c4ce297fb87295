"""The mask's tinted layer: made only when a masked pixel needs it, then updated box by box."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF

from studio.core.mask import new_mask
from studio.ui.mask_overlay import DEFAULT_OPACITY, MaskOverlayItem


def alpha_at(item: MaskOverlayItem, x: int, y: int) -> int:
    return item._image.pixelColor(x, y).alpha()


def test_a_new_pictures_empty_mask_makes_no_layer_until_a_stroke_needs_one(qapp) -> None:  # noqa: ANN001
    item = MaskOverlayItem()
    mask = new_mask(40, 30)
    item.set_mask(mask)
    assert item._image.isNull()  # nothing allocated for a 1024x1024 result's empty mask
    assert item.boundingRect() == QRectF(0, 0, 40, 30)
    mask[5:9, 10:20] = 255  # a stroke, as the document makes it
    item.update_region((10, 5, 20, 9))
    assert not item._image.isNull() and (item._image.width(), item._image.height()) == (40, 30)
    assert alpha_at(item, 12, 6) == round(255 * DEFAULT_OPACITY)
    assert alpha_at(item, 0, 0) == 0 and alpha_at(item, 25, 20) == 0


def test_a_mask_with_pixels_is_shown_at_once_and_restyled(qapp) -> None:  # noqa: ANN001
    item = MaskOverlayItem()
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[:, :8] = 255
    item.set_mask(mask)
    assert alpha_at(item, 3, 3) == round(255 * DEFAULT_OPACITY) and alpha_at(item, 12, 3) == 0
    item.set_style("#00ff00", 1.0)
    color = item._image.pixelColor(3, 3)
    assert (color.red(), color.green(), color.blue(), color.alpha()) == (0, 255, 0, 255)
    item.set_mask(new_mask(16, 16))  # a new picture: the old layer goes
    assert item._image.isNull()
