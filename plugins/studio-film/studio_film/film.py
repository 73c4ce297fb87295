"""The "Film look" post-processor: colour balance, sharpening, vignette and grain, in that order.

Grain comes last, as on film: sharpening or darkening it afterwards would make it look digital.
Every step with an amount of 0 is skipped outright, so all amounts at 0 give back the very same
pixels.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from studio.plugin_api import GeneratorEnvironment, PluginContext


class FilmLook:
    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env  # nothing to load

    def process(self, image: Image.Image, params: Mapping[str, Any], context: PluginContext) -> Image.Image:
        # params are checked against the manifest by Studio, defaults filled in.
        alpha = image.getchannel("A") if image.mode == "RGBA" else None  # kept as it is
        picture = image.convert("RGB")  # always a copy: the caller's image is never changed
        seed = params["seed"]
        if seed < 0:  # -1 asks for fresh grain every time; say which, so it can be made again
            seed = random.randrange(2**32)
            if params["grain"] > 0:
                context.note(f"Film grain seed {seed}.")
        steps = [
            (params["warmth"] != 0, lambda p: warm(p, params["warmth"])),
            (params["sharpen"] > 0, lambda p: sharpen(p, params["sharpen"])),
            (params["vignette"] > 0, lambda p: vignette(p, params["vignette"])),
            (params["grain"] > 0, lambda p: grain(p, params["grain"], params["grain_size"], seed)),
        ]
        for done, (wanted, step) in enumerate(steps, start=1):
            context.check_cancelled()
            if wanted:
                picture = step(picture)
            context.report_progress(done, len(steps))
        if alpha is not None:
            picture.putalpha(alpha)
        return picture


def warm(image: Image.Image, warmth: float) -> Image.Image:
    """Shift the white balance: above 0 towards amber, below 0 towards blue."""
    gains = (1 + 0.12 * warmth, 1 + 0.03 * warmth, 1 - 0.12 * warmth)  # red, green, blue
    # A lookup table per channel: exact, and far faster than arithmetic on every pixel.
    table = [min(255, round(i * gain)) for gain in gains for i in range(256)]
    return image.point(table)


def sharpen(image: Image.Image, amount: float) -> Image.Image:
    """Unsharp mask: add back ``amount`` times the difference from a blurred copy."""
    return image.filter(ImageFilter.UnsharpMask(radius=2, percent=round(amount * 100), threshold=2))


def vignette(image: Image.Image, strength: float) -> Image.Image:
    """Darken towards the corners; the middle third is left alone, the corners lose ``strength``."""
    width, height = image.size
    x = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    reach = np.sqrt((x * x + y * y) / 2)  # 0 in the middle, 1 in the corners
    t = np.clip((reach - 0.33) / 0.67, 0, 1)
    light = 1 - strength * t * t * (3 - 2 * t)  # smoothstep: no visible edge where it begins
    pixels = np.array(image, np.float32) * light[:, :, None]
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGB")


def grain(image: Image.Image, amount: float, size: float, seed: int) -> Image.Image:
    """Seeded monochrome grain, strongest in the mid-tones as on film; ``size`` is its size in pixels."""
    width, height = image.size
    rng = np.random.default_rng(seed)
    small = (max(1, round(width / size)), max(1, round(height / size)))
    noise = rng.standard_normal((small[1], small[0]), dtype=np.float32)
    if small != (width, height):  # bigger grain: fewer random values, smoothly enlarged
        noise = np.asarray(Image.fromarray(noise, "F").resize((width, height), Image.Resampling.BICUBIC))
        noise = noise / max(float(noise.std()), 1e-6)  # enlarging smooths it; keep its strength
    pixels = np.array(image, np.float32)
    luma = pixels @ np.array([0.299, 0.587, 0.114], np.float32) / 255
    midtones = 0.35 + 0.65 * (1 - (2 * luma - 1) ** 2)
    pixels += (amount * 40 * midtones * noise)[:, :, None]
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGB")
