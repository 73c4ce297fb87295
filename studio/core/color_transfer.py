"""Colour transfer that needs no weights: Reinhard's LAB mean/std transfer and histogram matching.

Both are instant, and the LAB transfer is also the "preserve original colours" step of the neural
style methods. LAB here is CIE L*a*b* (D65) computed in float from sRGB, so the statistics moved
are the ones a colour scientist would measure, not 8-bit approximations.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from studio.core.errors import InvalidRequest

METHODS = ("lab", "histogram")
_D65 = np.array([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_EPSILON = 216 / 24389
_KAPPA = 24389 / 27


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 or [0,1] float RGB (..., 3) -> float64 L*a*b* (L 0..100)."""
    c = rgb.astype(np.float64) / (255.0 if rgb.dtype == np.uint8 else 1.0)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _D65
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), (_KAPPA * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float L*a*b* (..., 3) -> uint8 sRGB, out-of-gamut colours clipped."""
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f ** 3 > _EPSILON, f ** 3, (116 * f - 16) / _KAPPA) * _D65
    linear = np.clip(xyz @ _XYZ_TO_RGB.T, 0, 1)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.round(c * 255), 0, 255).astype(np.uint8)


CHUNK_PIXELS = 1 << 18  # rows converted at a time: a float64 L*a*b* copy of a whole 8192² picture is 1.6 GB


def _row_blocks(rgb: np.ndarray) -> list[slice]:
    step = max(1, CHUNK_PIXELS // max(1, rgb.shape[1]))
    return [slice(top, top + step) for top in range(0, rgb.shape[0], step)]


def _visible(image: Image.Image, reference: bool = False) -> np.ndarray | None:
    """Where the picture shows (alpha > 0), or None when it all does: the colours hidden under full
    transparency are no part of it. A fully transparent reference is refused; a fully transparent source
    is taken whole (nothing of it shows either way)."""
    if "A" not in image.getbands():
        return None
    shown = np.asarray(image.getchannel("A")) > 0
    if shown.all():
        return None
    if not shown.any():
        if reference:
            raise InvalidRequest("The colour reference is fully transparent, so it has no colours to transfer.")
        return None
    return shown


def _lab_moments(rgb: np.ndarray, shown: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation in L*a*b* (of the shown pixels only, when given), a block of
    rows at a time."""
    total, squares = np.zeros(3), np.zeros(3)
    for rows in _row_blocks(rgb):
        lab = rgb_to_lab(rgb[rows])
        lab = lab.reshape(-1, 3) if shown is None else lab[shown[rows]]
        total += lab.sum(0)
        squares += np.square(lab).sum(0)
    count = max(1, rgb.shape[0] * rgb.shape[1] if shown is None else int(shown.sum()))
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean**2, 0.0))


def lab_statistics(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation in L*a*b* of the picture's visible pixels (alpha > 0).
    InvalidRequest when none is visible."""
    return _lab_moments(np.asarray(image.convert("RGB")), _visible(image, reference=True))


def reinhard(source: Image.Image, reference: Image.Image) -> Image.Image:
    """Reinhard et al. 2001: give the source the reference's L*a*b* mean and spread, channel by channel."""
    ref_mean, ref_std = lab_statistics(reference)
    rgb = np.asarray(source.convert("RGB"))
    mean, std = _lab_moments(rgb, _visible(source))
    scale = np.where(std > 1e-6, ref_std / np.maximum(std, 1e-6), 1.0)  # a flat channel keeps its (zero) spread
    out = np.empty_like(rgb)
    for rows in _row_blocks(rgb):
        out[rows] = lab_to_rgb((rgb_to_lab(rgb[rows]) - mean) * scale + ref_mean)
    return Image.fromarray(out, "RGB")


def match_histograms(source: Image.Image, reference: Image.Image) -> Image.Image:
    """Each RGB channel of the source mapped so its cumulative histogram follows the reference's (both counted
    over their visible pixels, alpha > 0).

    Only the levels the reference really has are interpolated over (as scikit-image does): a flat run of the
    reference's cumulative histogram would otherwise send the source's brightest value to 255."""
    ref_shown = _visible(reference, reference=True)
    src = np.asarray(source.convert("RGB"))
    ref = np.asarray(reference.convert("RGB"))
    src_shown = _visible(source)
    out = np.empty_like(src)
    levels = np.arange(256)
    for channel in range(3):
        src_values = src[..., channel] if src_shown is None else src[..., channel][src_shown]
        ref_values = ref[..., channel] if ref_shown is None else ref[..., channel][ref_shown]
        src_cdf = np.cumsum(np.bincount(src_values.ravel(), minlength=256)) / src_values.size
        ref_hist = np.bincount(ref_values.ravel(), minlength=256)
        present = ref_hist > 0
        ref_cdf = np.cumsum(ref_hist)[present] / ref_values.size
        lookup = np.interp(src_cdf, ref_cdf, levels[present])
        out[..., channel] = np.round(lookup).astype(np.uint8)[src[..., channel]]
    return Image.fromarray(out, "RGB")


def transfer_color(source: Image.Image, reference: Image.Image, method: str = "lab") -> Image.Image:
    """The source's colours moved to the reference's; the source's size and alpha are kept."""
    if method not in METHODS:
        raise InvalidRequest(f"Unknown colour transfer method {method!r}; choose one of: {', '.join(METHODS)}.")
    result = reinhard(source, reference) if method == "lab" else match_histograms(source, reference)
    if source.mode == "RGBA":
        result.putalpha(source.getchannel("A"))
    return result

