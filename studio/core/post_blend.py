"""What Studio does around every post-processor: blend by strength, and keep pixels outside the mask."""

from __future__ import annotations

import numpy as np
from PIL import Image

from studio.core.errors import InvalidRequest

BAND_PIXELS = 1 << 18  # pixels blended at a time: each of a band's float arrays is 1-3 MB


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
    result = Image.new("RGB", original.size)
    # Band by band: in whole-picture float arrays a 16384² blend took ~19 GB (a dozen times the picture) where
    # a band's take a few megabytes; the result is the only full-size picture made.
    rows = max(1, BAND_PIXELS // original.width)
    weights = None if mask is None else mask.convert("L")
    for top_row in range(0, original.height, rows):
        box = (0, top_row, original.width, min(top_row + rows, original.height))
        base = np.asarray(original.crop(box).convert("RGB"), dtype=np.float32)
        weight = np.full(base.shape[:2], float(strength), np.float32)
        if weights is not None:
            weight *= np.asarray(weights.crop(box), dtype=np.float32) / 255.0
        top = np.asarray(processed.crop(box).convert("RGB"), dtype=np.float32)
        out = base + (top - base) * weight[..., None]
        # Where the weight is 0 this is the original's value exactly (x + 0.0), so outside the mask and at
        # strength 0 every pixel is unchanged.
        result.paste(Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), "RGB"), box[:2])
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


def check_blend_memory(size: tuple[int, int], scaled: bool, available: int | None = None) -> None:
    """InvalidRequest when blending a result of ``size`` would need more memory than is free (``available``
    bytes, else the system's): the blended picture, and with ``scaled`` the original and mask brought to that
    size. Refused with a sentence, the job fails as any other; run out of memory, the system kills Studio."""
    pixels = size[0] * size[1]
    needed = pixels * (4 + (5 if scaled else 0)) + 64 * BAND_PIXELS  # Pillow keeps RGB as 4 bytes a pixel
    if available is None:
        import psutil  # here, not at import: most jobs never blend a big picture

        available = psutil.virtual_memory().available
    if needed > available:
        raise InvalidRequest(f"Blending the {size[0]}x{size[1]} result by the strength needs about "
                             f"{needed / 2**30:.1f} GB of memory but only {available / 2**30:.1f} GB is free; "
                             "use strength 1 (no blending, no mask), or close other programs and try again.")
