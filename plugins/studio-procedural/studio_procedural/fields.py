"""Seeded scalar fields: the numbers behind every pattern, in plain vectorised numpy.

Random values come from an integer hash of (lattice point, seed) rather than from a random
generator's stream, so a field depends only on the seed and the position: the same seed at a
bigger size gives the same picture with finer detail, and no 4096x4096 table of random numbers is
ever drawn. Coordinates are measured in "features": the shorter side of the picture is ``scale``
features long, whatever its size in pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

PATTERNS = ("clouds", "marble", "waves", "rings", "cells", "gradient")
LACUNARITY = 2.03  # not exactly 2, so the lattices of successive octaves never line up
GAIN = 0.5  # each octave adds half the amplitude of the one before
MIN_CELL_PIXELS = 2.0  # octaves finer than this would only add aliasing, so they are skipped
WARP_OCTAVES = 3
BAND_ROWS = 128


def stage_count(detail: int) -> int:
    """How many fields ``field_stages`` yields: one per octave, the pattern, the warp."""
    return detail + 2


def field_stages(pattern: str, width: int, height: int, seed: int, *, scale: float, detail: int,
                 warp: float) -> Iterator[np.ndarray]:
    """The field after each stage of the work (float32, height x width); the last one is the result.

    Yielding between stages lets the caller show progress and stop a cancelled job early.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}")
    rng = np.random.default_rng(seed)  # only for a few numbers: angles, offsets, per-octave seeds
    short = min(width, height)
    xs = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / short * scale
    ys = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / short * scale
    pixels_per_feature = short / scale

    noise = None
    for noise in fbm(xs, ys, _octaves(rng, detail), pixels_per_feature):
        yield noise
    field = SHAPES[pattern](noise, xs, ys, rng)
    yield field
    if warp > 0:
        field = domain_warp(field, xs, ys, rng, warp * pixels_per_feature)
    yield field


def _octaves(rng: np.random.Generator, count: int) -> list[tuple[int, float, float]]:
    """A hash seed and a lattice offset for each octave, so octaves (and bands) share them."""
    return [(int(rng.integers(2**32)), *rng.uniform(0, 1000, 2)) for _ in range(count)]


def fbm(xs: np.ndarray, ys: np.ndarray, octaves: list[tuple[int, float, float]],
        pixels_per_feature: float = np.inf) -> Iterator[np.ndarray]:
    """Fractal (fBm) value noise in 0..1, yielded after every octave."""
    total = np.zeros((len(ys), len(xs)), np.float32)
    weight = 0.0
    for index, (seed, offset_x, offset_y) in enumerate(octaves):
        frequency, amplitude = LACUNARITY**index, GAIN**index
        if pixels_per_feature / frequency >= MIN_CELL_PIXELS or index == 0:
            total += np.float32(amplitude) * value_noise(xs * np.float32(frequency) + np.float32(offset_x),
                                                         ys * np.float32(frequency) + np.float32(offset_y), seed)
            weight += amplitude
        yield total / np.float32(weight)


def value_noise(xs: np.ndarray, ys: np.ndarray, seed: int) -> np.ndarray:
    """Random values at integer lattice points, smoothly interpolated over the grid ``xs`` x ``ys``.

    The interpolation is separable (first along x for every lattice row, then along y), which on a
    regular grid gives the same result as interpolating every pixel from its four corners at a
    fraction of the cost.
    """
    x0, y0 = np.floor(xs), np.floor(ys)
    tx, ty = _fade(xs - x0), _fade(ys - y0)
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    gx = np.arange(x0.min(), x0.max() + 2)
    gy = np.arange(y0.min(), y0.max() + 2)
    grid = lattice_values(gx[None, :], gy[:, None], seed)
    cx, cy = x0 - gx[0], y0 - gy[0]
    rows = grid[:, cx] + (grid[:, cx + 1] - grid[:, cx]) * tx
    steps = np.diff(rows, axis=0)
    field = rows[cy]
    field += steps[cy] * ty[:, None]
    return field


def lattice_values(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """A stable pseudo-random value in [0, 1) for every integer point (ix, iy) (arrays broadcast)."""
    h = _hash(ix.astype(np.uint32) * np.uint32(0x9E3779B1) ^ _hash(iy.astype(np.uint32) ^ np.uint32(seed)))
    return (h >> np.uint32(8)).astype(np.float32) / np.float32(1 << 24)


def _hash(x: np.ndarray) -> np.ndarray:
    """lowbias32 (Chris Wellons): a small integer hash whose output bits all depend on every input bit."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def _fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic ease curve: no visible creases at lattice lines."""
    return t * t * t * (t * (t * 6 - 15) + 10)


def _along(xs: np.ndarray, ys: np.ndarray, angle: float) -> np.ndarray:
    """Position along a direction, for every pixel."""
    return xs[None, :] * np.float32(np.cos(angle)) + ys[:, None] * np.float32(np.sin(angle))


# Each pattern turns the fBm noise into its own field; the noise keeps them from looking machine-made.

def _clouds(noise, xs, ys, rng):
    return noise


def _marble(noise, xs, ys, rng):
    # Sine bands along a random direction, pushed sideways by the noise (Perlin's classic marble).
    bands = _along(xs, ys, rng.uniform(0, np.pi)) + 2.0 * noise
    return np.float32(1) - np.abs(np.sin(np.float32(np.pi) * bands)) ** np.float32(0.5)


def _waves(noise, xs, ys, rng):
    # Three waves of nearby directions and lengths, gently bent by the noise.
    field = np.zeros_like(noise)
    base = rng.uniform(0, 2 * np.pi)
    for _ in range(3):
        angle = base + rng.uniform(-0.35, 0.35)
        phase = _along(xs, ys, angle) * rng.uniform(0.8, 1.25) + 0.6 * noise + rng.uniform(0, 1)
        field += np.sin(np.float32(2 * np.pi) * phase)
    return field


def _rings(noise, xs, ys, rng):
    # Growth rings around a random centre near the middle, wobbling with the noise (wood).
    cx, cy = rng.uniform(-0.3, 0.3, 2) * np.array([np.ptp(xs), np.ptp(ys)])
    radius = np.hypot(xs[None, :] - np.float32(cx), ys[:, None] - np.float32(cy))
    return np.sin(np.float32(2 * np.pi) * (radius + 0.8 * noise))


def _cells(noise, xs, ys, rng):
    # Distance to the nearest of one random point per lattice cell (Worley noise), roughened by the noise.
    seed = int(rng.integers(2**32))
    cells = _in_bands(lambda rows: worley(xs, ys[rows], seed), len(ys))
    return cells + 0.35 * (noise - 0.5)


def _gradient(noise, xs, ys, rng):
    # A straight blend in a random direction, softly bent by the noise.
    return _along(xs, ys, rng.uniform(0, 2 * np.pi)) / max(np.ptp(xs), np.ptp(ys), 1e-6) + 0.5 * noise


SHAPES = {"clouds": _clouds, "marble": _marble, "waves": _waves, "rings": _rings, "cells": _cells,
          "gradient": _gradient}


def worley(xs: np.ndarray, ys: np.ndarray, seed: int) -> np.ndarray:
    """Distance from every pixel to the nearest feature point, one point placed at random in each cell."""
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = (xs - x0)[None, :], (ys - y0)[:, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    gx = np.arange(x0.min() - 1, x0.max() + 2)
    gy = np.arange(y0.min() - 1, y0.max() + 2)
    jitter_x = lattice_values(gx[None, :], gy[:, None], seed)
    jitter_y = lattice_values(gx[None, :], gy[:, None], seed ^ 0x5BD1E995)
    cx, cy = x0 - gx[0], y0 - gy[0]
    nearest = np.full((len(ys), len(xs)), np.inf, np.float32)
    for dy in (-1, 0, 1):  # the nearest point is always in this cell or one of its eight neighbours
        rows_x, rows_y = jitter_x[cy + dy], jitter_y[cy + dy]
        for dx in (-1, 0, 1):
            px = rows_x[:, cx + dx] - fx
            px += np.float32(dx)
            py = rows_y[:, cx + dx] - fy
            py += np.float32(dy)
            px *= px
            py *= py
            px += py
            np.minimum(nearest, px, out=nearest)
    return np.sqrt(nearest)


def domain_warp(field: np.ndarray, xs: np.ndarray, ys: np.ndarray, rng: np.random.Generator,
                reach: float) -> np.ndarray:
    """The field read at positions pushed about by two more noise fields (at most ``reach`` pixels)."""
    height, width = field.shape
    octaves_x, octaves_y = _octaves(rng, WARP_OCTAVES), _octaves(rng, WARP_OCTAVES)
    columns = np.arange(width, dtype=np.float32)[None, :]
    lines = np.arange(height, dtype=np.float32)[:, None]

    def band(rows: slice) -> np.ndarray:
        *_, push_x = fbm(xs, ys[rows], octaves_x)
        *_, push_y = fbm(xs, ys[rows], octaves_y)
        x = columns + (push_x - np.float32(0.5)) * np.float32(2 * reach)
        y = lines[rows] + (push_y - np.float32(0.5)) * np.float32(2 * reach)
        return _bilinear(field, _reflect(y, height - 1), _reflect(x, width - 1))

    return _in_bands(band, height)


def _in_bands(make: Callable[[slice], np.ndarray], height: int) -> np.ndarray:
    """``make(rows)`` for strips of rows, stacked. The same numbers as one call on the whole picture,
    but each strip's temporary arrays fit in the CPU cache, which makes it several times faster."""
    return np.concatenate([make(slice(top, top + BAND_ROWS)) for top in range(0, height, BAND_ROWS)])


def _reflect(position: np.ndarray, last: int) -> np.ndarray:
    """Positions folded back into 0..last like a mirror, so a warped read never leaves the picture."""
    if last == 0:
        return np.zeros_like(position)
    position = np.mod(position, 2 * last)
    return last - np.abs(position - last)


def _bilinear(field: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The field between its pixels, blended from the four around every (y, x)."""
    height, width = field.shape
    if height < 2 or width < 2:
        return field
    x0 = np.minimum(np.floor(x), np.float32(width - 2))
    y0 = np.minimum(np.floor(y), np.float32(height - 2))
    tx, ty = x - x0, y - y0
    corner = y0.astype(np.intp) * width + x0.astype(np.intp)  # index of the top-left neighbour in the flat field
    flat = field.ravel()
    top = flat.take(corner)
    top += (flat.take(corner + 1) - top) * tx
    corner += width
    bottom = flat.take(corner)
    bottom += (flat.take(corner + 1) - bottom) * tx
    top += (bottom - top) * ty
    return top


def normalise(field: np.ndarray, contrast: float = 1.0) -> np.ndarray:
    """The field stretched to 0..1 (ignoring the extreme half percent), then given an S-curve.

    ``contrast`` 1 leaves the stretched field as it is; above 1 pushes values towards the ends,
    below 1 towards the middle.
    """
    step = max(1, int(np.sqrt(field.size / 65536)))  # quantiles of a thinned copy are as good and fast
    low, high = np.quantile(field[::step, ::step], [0.005, 0.995])
    field = np.clip((field - np.float32(low)) / np.float32(max(high - low, 1e-6)), 0, 1)
    if contrast != 1:
        a = field ** np.float32(contrast)
        b = (1 - field) ** np.float32(contrast)
        field = a / np.maximum(a + b, np.float32(1e-12))
    return field
