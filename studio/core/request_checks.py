"""Checks of a generation request's add-ons: its LoRAs, its hires fix, and its inpainting mask and options."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.hires import BUILT_IN_UPSCALERS, MAX_SCALE, HiresFix
from studio.core.inpaint import INPAINT_FILLS
from studio.core.requests import (
    FROM_SETTINGS,
    MAX_INPAINT_SIDE,
    MAX_LORA_WEIGHT,
    MAX_LORAS,
    MAX_SIZE,
    MAX_STEPS,
    MIN_INPAINT_SIDE,
)

if TYPE_CHECKING:
    from studio.core.requests import GenerationRequest, LoraChoice


def check_loras(loras: tuple[LoraChoice, ...]) -> tuple[LoraChoice, ...]:
    """Names stripped, weights as floats; one sentence for too many, a bad weight, or a LoRA chosen twice."""
    from studio.core.prompt_loras import name_key  # it imports requests, which imports this module

    if len(loras) > MAX_LORAS:
        raise InvalidRequest(f"At most {MAX_LORAS} LoRAs can be applied at once, not {len(loras)}.")
    checked: list[LoraChoice] = []
    seen: set[str] = set()
    for choice in loras:
        name = str(choice.name).strip()
        if not name:
            raise InvalidRequest("A LoRA has no name; pick one from the models folder's loras list or give its file.")
        weight = choice.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise InvalidRequest(f"The weight of the LoRA {name} must be a number, not {weight!r}.")
        if not math.isfinite(weight) or abs(weight) > MAX_LORA_WEIGHT:
            raise InvalidRequest(f"The weight of the LoRA {name} must be between {-MAX_LORA_WEIGHT:g} and "
                                 f"{MAX_LORA_WEIGHT:g}, not {weight:g}.")
        key = name_key(name)
        if key in seen:
            raise InvalidRequest(f"The LoRA {name} is chosen twice; keep it once, with one weight.")
        seen.add(key)
        checked.append(replace(choice, name=name, weight=float(weight)))
    return tuple(checked)


def check_hires(request: GenerationRequest, width: int, height: int, notes: list[str],
                 size_from_settings: bool = False) -> HiresFix | None:
    """The hires fix as the job will run it: left out (with a note) where it does not apply, one sentence for a
    value that cannot be run (``size_from_settings``: the first pass's size was not typed, said so)."""
    hires = request.hires
    if hires is None:
        return None
    if request.generator != "diffusers":
        notes.append("Hires fix applies to Studio's own generator only; it was left out.")
        return None
    if request.init_image is not None:
        what = "inpainting" if request.mask is not None else "image to image"
        notes.append(f"Hires fix enlarges new pictures; it was left out of this {what} job.")
        return None
    if isinstance(hires.scale, bool) or not isinstance(hires.scale, int | float) or not 1 < hires.scale <= MAX_SCALE:
        raise InvalidRequest(f"The hires fix's upscale must be above 1 and at most {MAX_SCALE:g}, not {hires.scale}.")
    final_width, final_height = hires.size(width, height)
    if max(final_width, final_height) > MAX_SIZE:
        source = f" (the size {width}x{height} {FROM_SETTINGS})" if size_from_settings else ""
        raise InvalidRequest(f"Hires fix at {hires.scale:g}x would make a {final_width}x{final_height} "
                             f"picture{source}; Studio makes at most {MAX_SIZE} pixels a side, so lower the upscale "
                             "or the size.")
    if isinstance(hires.steps, bool) or not isinstance(hires.steps, int) or not 0 <= hires.steps <= MAX_STEPS:
        raise InvalidRequest(f"The hires steps must be between 0 (as many as the first pass) and {MAX_STEPS}, "
                             f"not {hires.steps}.")
    if not 0.0 < hires.strength <= 1.0:
        raise InvalidRequest(f"The hires fix's denoising strength must be above 0 and at most 1, not {hires.strength}.")
    upscaler = hires.upscaler.strip() if isinstance(hires.upscaler, str) else ""
    if not upscaler:
        raise InvalidRequest("The hires fix has no upscaler; pick Lanczos or an upscaler model.")
    upscaler = next((name for name in BUILT_IN_UPSCALERS if name.casefold() == upscaler.casefold()), upscaler)
    return replace(hires, scale=float(hires.scale), strength=float(hires.strength), upscaler=upscaler)


def check_inpaint(request: GenerationRequest) -> Image.Image:
    """Inpainting keeps the picture's own size (the engine picks the size it works at).

    Returns the mask as "L" (white = regenerate), read the way a mask file is read: alpha where
    the mask has transparency, brightness otherwise.
    """
    from studio.core.mask import mask_from_image

    image, options = request.init_image, request.inpaint
    if image is None:
        raise InvalidRequest("An inpainting mask needs a picture to paint into; open or generate one first.")
    if request.mask.size != image.size:
        raise InvalidRequest(
            f"The mask is {request.mask.width}x{request.mask.height} but the picture is "
            f"{image.width}x{image.height}; they must be the same size.")
    # The window's own masks are greyscale already: taken as they are, without copying 4096x4096 of them into
    # arrays and back on the window's thread.
    plain = request.mask.mode == "L" and "transparency" not in request.mask.info
    mask = request.mask if plain else Image.fromarray(mask_from_image(request.mask), "L")
    if mask.getbbox() is None:
        raise InvalidRequest("The mask is empty; paint the area to regenerate first.")
    if options.fill not in INPAINT_FILLS:
        raise InvalidRequest(f"Unknown masked-content fill {options.fill!r}; choose one of: "
                             f"{', '.join(INPAINT_FILLS)}.")
    if not 0 <= options.padding <= 1024:
        raise InvalidRequest(f"The inpaint padding must be between 0 and 1024 pixels, not {options.padding}.")
    if not 0 <= options.feather <= 256:
        raise InvalidRequest(f"The mask feather must be between 0 and 256 pixels, not {options.feather}.")
    if problem := _too_small_to_inpaint(image.size):
        raise InvalidRequest(problem)
    limit = MAX_INPAINT_SIDE if options.masked_only else MAX_SIZE
    if max(image.size) > limit:
        advice = "" if options.masked_only else " as a whole; use masked area only"
        raise InvalidRequest(f"A {image.width}x{image.height} picture is too large to inpaint{advice}.")
    return mask


def _too_small_to_inpaint(size: tuple[int, int]) -> str:
    """Which side of a picture is too short to inpaint, in a sentence; "" when neither is."""
    width, height = size
    short = [(side, value) for side, value in (("width", width), ("height", height)) if value < MIN_INPAINT_SIDE]
    if len(short) == 2:
        return (f"A {width}x{height} picture is too small to inpaint: each side needs at least "
                f"{MIN_INPAINT_SIDE} px.")
    if short:
        (side, value), = short
        return (f"A {width}x{height} picture is too thin to inpaint: its {side} is {value} px, under the "
                f"{MIN_INPAINT_SIDE} px it needs.")
    return ""
