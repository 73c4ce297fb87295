"""How the bench measures each side: the seconds (the GPU's work included), the peak memory, and how far apart the
two sides' pictures of the same seeds are."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from studio.engine.device import DeviceInfo
from studio.engine.thread_probe import ThreadProbe

TOLERANCE = (1.0, 8.0)  # mean and max absolute pixel difference (of 255) accepted between the two sides


@dataclass
class BenchSide:
    """One side of the bench (plain diffusers or Studio): what makes its pictures, and its figures."""

    make: Callable[[], list[Image.Image]]
    warmup: float = 0.0
    runs: list[float] | None = None
    peak: int = 0
    reserved: int = 0  # the process's peak VRAM reserved: both sides' weights, the graphs' pool (free blocks too)
    images: list[Image.Image] | None = None
    probe: ThreadProbe = field(default_factory=ThreadProbe)  # runs through the timed runs, not the warm-up

    def summary(self, batch: int, steps: int) -> dict[str, Any]:
        per_image = statistics.median(self.runs or [0.0]) / batch
        figures = self.probe.figures()
        return {"seconds_per_image": per_image, "it_per_s": steps / per_image if per_image else 0.0,
                "warmup_seconds": self.warmup, "run_seconds": self.runs, "peak_vram_bytes": self.peak or None,
                "peak_vram_reserved_bytes": self.reserved or None,
                "main_thread_probe": figures.as_dict() if figures else None}


def timed(make: Callable[[], list[Image.Image]], device: DeviceInfo) -> tuple[float, list[Image.Image], int]:
    """Seconds ``make`` takes (the GPU's work included), its pictures, and the peak VRAM it allocated."""
    cuda = device.kind == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    images = make()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return seconds, images, torch.cuda.max_memory_allocated() if cuda else 0


def peak_reserved(device: DeviceInfo) -> int:
    """The peak VRAM the process reserved since the last ``timed``: what the caching allocator held, the free blocks
    of the fast path's graph pool too, which ``max_memory_allocated`` leaves out."""
    return torch.cuda.max_memory_reserved() if device.kind == "cuda" else 0


def same_seed_difference(plain: list[Image.Image] | None, studio: list[Image.Image] | None,
                         same_precision: bool = True) -> dict[str, Any]:
    """How far apart the two sides' pictures are; the tolerance holds between sides of the same precision (None
    where they differ: bfloat16 against float32 is a change of precision, not the fast path's rounding)."""
    pairs = list(zip(plain or [], studio or [], strict=False))
    diffs = [np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)) for a, b in pairs]
    mean = float(np.mean([d.mean() for d in diffs])) if diffs else 0.0
    largest = int(max((d.max() for d in diffs), default=0))
    within = mean <= TOLERANCE[0] and largest <= TOLERANCE[1]
    return {"identical": all(not d.any() for d in diffs), "mean": mean, "max": largest,
            "within_tolerance": within if same_precision else None}


def peak_rss() -> int | None:
    """The process's peak resident memory in bytes (None where the platform does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        try:
            import psutil

            return int(psutil.Process().memory_info().peak_wset)
        except (ImportError, AttributeError):
            return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS says bytes, Linux kilobytes
