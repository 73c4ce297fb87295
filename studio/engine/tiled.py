"""Running an image-to-image network over a picture in overlapping tiles, so large pictures fit in memory.

Each tile's result is faded into its neighbours with linear weights over the overlap, and the outer
quarter of each overlap (where the network saw padding instead of the picture) is almost unused, so
no seams show. Only one band of tiles is held in floating point at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from studio.core.errors import JobCancelledError, ModelError
from studio.engine.device import release_spare_memory

Network = Callable[[torch.Tensor], torch.Tensor]
MIN_TILE = 32  # below this, halving the tile after running out of memory stops helping


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of ``tile``-pixel tiles covering ``length``, spread evenly, overlapping ``overlap`` or more."""
    if length <= tile:
        return [(0, length)]
    overlap = min(overlap, tile // 2)
    count = math.ceil((length - overlap) / (tile - overlap))
    return [(start, start + tile) for start in
            (round(i * (length - tile) / (count - 1)) for i in range(count))]


def blend_weights(spans: list[tuple[int, int]], length: int, scale: int, overlap: int) -> list[np.ndarray]:
    """Each tile's weights along one axis, in output pixels; together they sum to 1 at every pixel."""
    size_wanted = min(overlap, max(end - start for start, end in spans) // 2) * scale
    raw = []
    for start, end in spans:
        weights = np.ones((end - start) * scale, np.float32)
        size = min(size_wanted, len(weights) // 2)
        if size:
            margin = size // 4
            rise = np.clip((np.arange(size) + 0.5 - margin) / (size - 2 * margin), 1e-3, 1.0)
            if start > 0:  # a neighbour before: fade in
                weights[:size] = rise
            if end < length:  # a neighbour after: fade out
                weights[-size:] = np.minimum(weights[-size:], rise[::-1])
        raw.append(weights)
    total = np.zeros(length * scale, np.float32)
    for (start, _), weights in zip(spans, raw, strict=True):
        total[start * scale:start * scale + len(weights)] += weights
    return [weights / total[start * scale:start * scale + len(weights)]
            for (start, _), weights in zip(spans, raw, strict=True)]


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def _run(model: Network, pixels: np.ndarray, scale: int, tile: int, overlap: int,
         on_tile: Callable[[int, int], None] | None, is_cancelled: Callable[[], bool] | None,
         device: torch.device | str, dtype: torch.dtype) -> np.ndarray:
    height, width, _ = pixels.shape
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    row_weights, col_weights = blend_weights(rows, height, scale, overlap), blend_weights(cols, width, scale, overlap)
    total, done = len(rows) * len(cols), 0
    out: np.ndarray | None = None
    band: np.ndarray | None = None  # float sums for the output rows of the current row of tiles
    band_top = 0
    for (y0, y1), wy in zip(rows, row_weights, strict=True):
        carry = None
        if band is not None and out is not None:
            # Rows above this row of tiles are final: no later tile reaches them.
            out[band_top:y0 * scale] = _to_uint8(band[:y0 * scale - band_top])
            carry = band[y0 * scale - band_top:]
        band, band_top = None, y0 * scale
        for (x0, x1), wx in zip(cols, col_weights, strict=True):
            if is_cancelled is not None and is_cancelled():
                raise JobCancelledError()
            patch = torch.from_numpy(np.ascontiguousarray(pixels[y0:y1, x0:x1])).to(device)
            with torch.inference_mode():
                result = model(patch.permute(2, 0, 1)[None].to(dtype).div_(255.0))
            expected = ((y1 - y0) * scale, (x1 - x0) * scale)
            if result.ndim != 4 or tuple(result.shape[-2:]) != expected:
                raise ModelError(f"The upscaler turned a {x1 - x0}x{y1 - y0} tile into {list(result.shape)} "
                                 f"where a {expected[1]}x{expected[0]} picture was expected.")
            values = result[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
            if band is None:
                band = np.zeros((expected[0], width * scale, values.shape[2]), np.float32)
                if out is None:
                    out = np.empty((height * scale, width * scale, values.shape[2]), np.uint8)
                if carry is not None:
                    band[:len(carry)] += carry
            band[:, x0 * scale:x1 * scale] += values * (wy[:, None, None] * wx[None, :, None])
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    assert out is not None and band is not None
    out[band_top:] = _to_uint8(band)
    return out


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())  # MPS words it so


def upscale_tiled(model: Network, image: Image.Image, scale: int, tile: int, overlap: int, *,
                  on_tile: Callable[[int, int], None] | None = None,
                  is_cancelled: Callable[[], bool] | None = None,
                  device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                  channels: int = 3, multiple: int = 1,
                  note: Callable[[str], None] | None = None) -> Image.Image:
    """``image`` run through ``model`` (a [0, 1] NCHW tensor in, ``scale`` times larger out) tile by tile.

    ``channels`` is what the model takes (3: RGB, 1: grey). Alpha is enlarged with Lanczos. ``on_tile(done,
    total)`` follows each tile; a cancel between tiles raises JobCancelledError. Out of GPU memory, the
    tile is halved (kept a multiple of ``multiple``) and the picture run again once.
    """
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if has_alpha and image.mode != "RGBA":
        image = image.convert("RGBA")
    pixels = np.array(image.convert("L" if channels == 1 else "RGB"))  # writable, as torch.from_numpy wants
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    try:
        out: np.ndarray | None = _run(model, pixels, scale, tile, overlap, on_tile, is_cancelled, device, dtype)
    except Exception as exc:  # only running out of memory is retried
        if not _out_of_memory(exc):
            raise
        out = None  # retried below, outside this block, so the failed attempt's tensors can be freed first
    if out is None:
        tried = min(tile, max(image.size))
        smaller = max(multiple, max(MIN_TILE, tried // 2) // multiple * multiple)
        if smaller >= tried:
            raise ModelError(f"The upscaler ran out of memory on a {tried}-pixel tile; choose a smaller tile size "
                             "or run it on the CPU.")
        release_spare_memory(None)  # a model kept aside for switching back goes first
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if note is not None:
            note(f"The upscaler ran out of memory with {tried}-pixel tiles, so it used {smaller}-pixel tiles.")
        try:
            out = _run(model, pixels, scale, smaller, overlap, on_tile, is_cancelled, device, dtype)
        except Exception as exc:
            if not _out_of_memory(exc):
                raise
            raise ModelError(f"The upscaler ran out of memory even with {smaller}-pixel tiles; choose a smaller "
                             "tile size or run it on the CPU.") from None
    if out.shape[2] not in (1, 3):
        raise ModelError(f"The upscaler returned pictures with {out.shape[2]} channels, where 1 or 3 were expected.")
    result = Image.fromarray(out[..., 0] if out.shape[2] == 1 else out, "L" if out.shape[2] == 1 else "RGB")
    result = result.convert("RGB") if result.mode != "RGB" else result
    if has_alpha:
        result.putalpha(image.getchannel("A").resize(result.size, Image.Resampling.LANCZOS))
    return result
