"""What Studio does around every post-processor: blend by strength, and keep pixels outside the mask."""

from __future__ import annotations

import numpy as np
from PIL import Image

from studio.core.errors import InvalidRequest


def check_blend(image: Image.Image, strength: float, mask: Image.Image | None) -> Image.Image | None:
    """The mask as "L" (white = change), after checking strength and mask; InvalidRequest otherwise."""
    if not 0.0 <= strength <= 1.0:
        raise InvalidRequest(f"The strength must be between 0 and 1, not {strength:g}.")
    if mask is None:
        return None
    from studio.core.mask import mask_from_image

    if mask.size != image.size:
        raise InvalidRequest(f"The mask is {mask.width}x{mask.height} but the picture is {image.width}x"
                             f"{image.height}; they must be the same size.")
    values = mask_from_image(mask)
    if not values.any():
        raise InvalidRequest("The mask is empty; paint the area to change first, or turn off 'only under the mask'.")
    return Image.fromarray(values, "L")


def blend_result(original: Image.Image, processed: Image.Image, strength: float = 1.0,
                 mask: Image.Image | None = None) -> Image.Image:
    """``original`` moved towards ``processed`` by ``strength``, only where ``mask`` is white (soft edges blend).

    Strength 0 returns the original unchanged and strength 1 the full effect; outside the mask every
    pixel is the original's, exactly. A result of another size (an upscaler) is returned as it is: bring
    the original and the mask to its size first, with ``scale_for_blend``.
    """
    if processed.size != original.size:
        return processed
    if strength >= 1.0 and mask is None:
        if original.mode == "RGBA" and processed.mode != "RGBA":  # a filter that works in RGB: the see-through stays
            processed = processed.convert("RGB")
            processed.putalpha(original.getchannel("A"))
        return processed
    base = np.asarray(original.convert("RGB"), dtype=np.float32)
    weight = np.full(base.shape[:2], float(strength), np.float32)
    if mask is not None:
        weight *= np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    top = np.asarray(processed.convert("RGB"), dtype=np.float32)
    out = base + (top - base) * weight[..., None]
    # Where the weight is 0 this is the original's value exactly (x + 0.0), so outside the mask and at
    # strength 0 every pixel is unchanged.
    result = Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), "RGB")
    if original.mode == "RGBA":
        result.putalpha(original.getchannel("A"))
    return result


def scale_for_blend(original: Image.Image, mask: Image.Image | None,
                    size: tuple[int, int]) -> tuple[Image.Image, Image.Image | None]:
    """The original (Lanczos) and the mask (bilinear) resized to ``size``, so a result of that size can be blended.

    Strength 0 then gives the enlarged original, and outside the enlarged mask the pixels are its. The mask
    is not resized with Lanczos: its ringing would leak a few percent of the change outside the painted area.
    """
    scaled_mask = None if mask is None else mask.convert("L").resize(size, Image.Resampling.BILINEAR)
    return original.resize(size, Image.Resampling.LANCZOS), scaled_mask
