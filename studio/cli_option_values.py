"""The values of ``studio generate``'s options read from their text: a size, outpaint margins, a LoRA with its
weight, and a mask file checked against its picture; each wrong one said as bad input with an example."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.images import open_image
from studio.core.inpaint import MAX_EXTEND
from studio.core.mask import mask_from_image
from studio.core.requests import LoraChoice


def parse_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        return (int(width), int(height)) if sep else (int(width), int(width))
    except ValueError:
        raise InvalidRequest(f"The size {text!r} is not WIDTHxHEIGHT, e.g. 512x768.") from None


def parse_outpaint(text: str) -> tuple[int, int, int, int]:
    """LEFT,TOP,RIGHT,BOTTOM in pixels: at least one above 0, none below."""
    parts = text.replace(" ", "").split(",")
    example = "e.g. 0,0,128,0 to extend 128 pixels to the right"
    try:
        if len(parts) != 4:
            raise ValueError
        left, top, right, bottom = (int(p) for p in parts)
    except ValueError:
        raise InvalidRequest(
            f"--outpaint {text!r} is not four whole numbers LEFT,TOP,RIGHT,BOTTOM; {example}.") from None
    if min(left, top, right, bottom) < 0:
        raise InvalidRequest(f"--outpaint {text!r} has a negative amount; give the pixels to add, {example}.")
    if left + top + right + bottom == 0:
        raise InvalidRequest(f"--outpaint {text!r} extends nothing; give at least one side in pixels, {example}.")
    # The window's Extend Canvas limit: the new strip is drawn at about the model's own size and scaled to its own
    # (a 5000-pixel one, five times). A picture grows further by outpainting the result again, as in the window.
    amount, side = max(zip((left, top, right, bottom), ("left", "top", "right", "bottom")))
    if amount > MAX_EXTEND:
        raise InvalidRequest(f"--outpaint {text!r} adds {amount} pixels on the {side}; Studio adds at most "
                             f"{MAX_EXTEND} to a side at a time (outpaint the result again to go further).")
    return left, top, right, bottom


def parse_lora(text: str) -> LoraChoice:
    """``NAME`` or ``NAME:WEIGHT``. A path may hold colons (C:\\...): only a number after the last one is a weight."""
    name, sep, tail = text.rpartition(":")
    if not sep or "/" in tail or "\\" in tail:
        return LoraChoice(text.strip())
    example = "write NAME:WEIGHT, e.g. detail:0.8"
    try:
        weight = float(tail)
    except ValueError:
        raise InvalidRequest(f"--lora {text!r} has the weight {tail!r}, which is not a number; {example}.") from None
    if not name.strip():
        raise InvalidRequest(f"--lora {text!r} has no name; {example}.")
    return LoraChoice(name.strip(), weight)


def read_mask(path: Path, picture: Image.Image, picture_name: str, marks: str | None = "change") -> Image.Image:
    """The mask file as an "L" image of the picture's size: white = regenerate (alpha, where it has some). ``marks``:
    what it marks ("regenerate", "change"), said where it marks nothing; None where nothing is fine (outpainting)."""
    image = open_image(path)
    if image.size != picture.size:
        raise InvalidRequest(
            f"The mask {path.name} is {image.width}x{image.height} but the picture {picture_name} is "
            f"{picture.width}x{picture.height}; they must be the same size.")
    mask = mask_from_image(image)
    if marks is not None and not mask.any():  # the window's sentence asks to paint it: here it is a file
        # Read by its alpha where it has some transparency (mask_from_image): then all of it is transparent.
        transparent = ("A" in image.getbands() or "transparency" in image.info) and \
            image.convert("RGBA").getchannel("A").getextrema()[1] == 0
        colour, marking = ("transparent", "opaque") if transparent else ("black", "white")
        raise InvalidRequest(f"The mask {path.name} is all {colour}: it marks nothing to {marks} ({marking} does).")
    return Image.fromarray(mask, "L")
