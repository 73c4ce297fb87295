"""Live previews of the denoising loop, cheap enough to ask for at every step.

Two ways to see latents:

- Linear (always available): one 4x3 map per model family, computed on the latents' device at latent
  resolution (1/8 of the picture), so only a tiny uint8 RGB tensor ever reaches the host. The factors are
  ComfyUI's (``comfy/latent_formats.py``: SD15 and SDXL, with SDXL's bias), today's community standard;
  A1111's "Approx cheap" uses an older fit of the same map.
- TAESD (``studio.engine.taesd``), when its weights are installed: a tiny decoder that shows the picture
  as the VAE will.

``LivePreviews`` decides which steps get one (``PreviewThrottle``) and, on an accelerator, never waits
for the device: the RGB tensor is copied with ``non_blocking`` into pinned memory and picked up at a
later step once its CUDA event has fired, so a preview costs a few kernel launches, not a sync.

Previews may cost at most ``PREVIEW_BUDGET`` of the picture's time, first and last included: a preview runs
only when what it will cost fits. A linear one costs what the last one did (next to nothing); a TAESD one
what a TAESD preview of that size last cost on that device (kept for the session), or, before one was
measured, a per-device guess. Where TAESD does not fit (a CPU: seconds for a 512x512 picture), the step
gets the linear preview instead; where it can never fit a picture, the log says so once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from studio.core.errors import StudioError, first_line

log = logging.getLogger(__name__)

# rows: latent channels, columns: R, G, B
_FACTORS = {
    "sd": ([[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
            [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]], [0.0, 0.0, 0.0]),
    "sdxl": ([[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068],
              [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]], [0.1084, -0.0175, -0.0011]),
}
_cache: dict[tuple[str, torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

# Previews bigger than this (TAESD of a large picture) are scaled down on the device: the window shows
# them fitted anyway, and each one is converted on the UI thread, where a 1024² image costs several ms.
PREVIEW_MAX_SIDE = 512
# Previews a second, at most: every step up to 30 steps a second (SDXL's 20 steps on a fast GPU run about
# 22, so each one is seen); faster than that the eye cannot follow and the window's repaints cost more
# than they show. The cost budget (5 % of the picture's time) applies on top.
PREVIEW_RATE = 30.0
PREVIEW_BUDGET = 0.05  # the share of a picture's time its previews may cost (issue 8: 5 %)
# Seconds per latent pixel a TAESD preview is taken to cost on a device before one was measured there: a 512x512
# picture (64x64 latents) took 3.6-10 s on this project's 2-core CPU (so ~1 ms a pixel); on a GPU a few ms.
TAESD_GUESS = {"cuda": 1e-6, "mps": 1e-5, "cpu": 1e-3}
_taesd_seconds: dict[tuple[str, tuple[int, int]], float] = {}  # (device, latent size) -> what one cost there
_taesd_refused: set[tuple[str, tuple[int, int]]] = set()  # where the log said TAESD never fits a picture

Render = Callable[[torch.Tensor, str], Image.Image]  # latents, family -> preview (synchronous)
Decoder = Callable[[torch.Tensor], torch.Tensor]  # latents -> (H, W, 3) uint8 on the latents' device


def latents_to_rgb(latents: torch.Tensor, family: str = "sd") -> torch.Tensor:
    """The first latent of a batch as an (H, W, 3) uint8 tensor at latent size, on the latents' device."""
    latent = latents[0]
    if latent.shape[0] != 4:  # unknown latent space: show its mean as grey
        grey = latent.float().mean(0)
        grey = ((grey - grey.min()) / (grey.max() - grey.min() + 1e-6) * 255).to(torch.uint8)
        return grey[..., None].expand(-1, -1, 3)
    key = (family if family in _FACTORS else "sd", latent.device, latent.dtype)
    if key not in _cache:
        factors, bias = _FACTORS[key[0]]
        _cache[key] = (torch.tensor(factors, device=latent.device, dtype=latent.dtype),
                       torch.tensor(bias, device=latent.device, dtype=latent.dtype))
    factors, bias = _cache[key]
    rgb = torch.einsum("chw,cr->hwr", latent, factors) + bias
    return ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8)


def rgb_to_image(rgb: torch.Tensor) -> Image.Image:
    """A host (H, W, 3) uint8 tensor as a PIL image."""
    return Image.fromarray(np.ascontiguousarray(rgb.numpy()), "RGB")


def latents_to_preview(latents: torch.Tensor, family: str = "sd") -> Image.Image:
    """An RGB image at latent resolution (1/8 of the output) from the first latent of a batch."""
    return rgb_to_image(latents_to_rgb(latents, family).cpu())


def fit_preview(rgb: torch.Tensor, max_side: int = PREVIEW_MAX_SIDE) -> torch.Tensor:
    """An (H, W, 3) uint8 preview scaled down on its device so its longer side is at most max_side."""
    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    chw = rgb.permute(2, 0, 1)[None].float()
    return F.interpolate(chw, size=size, mode="area")[0].permute(1, 2, 0).round().to(torch.uint8)


class PreviewThrottle:
    """Which steps get a preview.

    A token bucket: the first ``burst`` steps of an image each get one (they change the picture most),
    then at most ``rate`` a second (the last step whatever the rate); and only when the previews made so
    far plus the one asked for (its ``cost``, estimated) stay within ``budget`` of the time since the image
    began, so the first and the last preview are inside the budget too.
    """

    def __init__(self, rate: float = PREVIEW_RATE, burst: int = 4, budget: float | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.rate, self.burst = rate, burst
        self.budget = PREVIEW_BUDGET if budget is None else budget
        self._clock = clock
        self._start = self._last = clock()
        self._tokens = float(burst)
        self.spent = 0.0  # seconds the previews of this image have cost

    def due(self, step: int, total: int, cost: float = 0.0) -> bool:
        """Whether step ``step`` of ``total`` gets a preview that will cost about ``cost`` seconds."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        last = step >= total
        if (self._tokens < 1 and not last) or not self.affords(cost):
            return False
        if not last:
            self._tokens -= 1
        return True

    def affords(self, cost: float) -> bool:
        """Whether a preview costing ``cost`` seconds more stays within the budget."""
        return self.spent + cost <= self.budget * (self._clock() - self._start)

    def could_ever_afford(self, cost: float, step: int, total: int) -> bool:
        """Whether one preview costing ``cost`` seconds fits this picture's budget at all, its steps taking as
        long as they have so far (this is step ``step`` of ``total``); what was spent already is not counted."""
        picture = (self._clock() - self._start) * total / max(step, 1)
        return cost <= self.budget * picture

    def charge(self, seconds: float) -> None:
        self.spent += seconds


def taesd_estimate(latents: torch.Tensor) -> float:
    """Seconds a TAESD preview of these latents will cost: what one of their size cost on their device last,
    else ``TAESD_GUESS`` for the device."""
    size = (latents.shape[-2], latents.shape[-1])
    measured = _taesd_seconds.get((str(latents.device), size))
    if measured is not None:
        return measured
    return TAESD_GUESS.get(latents.device.type, TAESD_GUESS["cpu"]) * size[0] * size[1]


def _taesd_measured(key: tuple[str, tuple[int, int]], seconds: float) -> None:
    _taesd_seconds[key] = seconds


class _Frame:
    """A preview on its way to the host: on CUDA a non-blocking copy into pinned memory and its event."""

    def __init__(self, rgb: torch.Tensor, started: torch.cuda.Event | None) -> None:
        self._started, self._done = started, None
        self.taesd_key: tuple[str, tuple[int, int]] | None = None  # a TAESD preview's: its cost is kept
        if rgb.device.type == "cuda":
            self._host = torch.empty(rgb.shape, dtype=rgb.dtype, pin_memory=True)
            self._host.copy_(rgb, non_blocking=True)
            self._done = torch.cuda.Event(enable_timing=started is not None)
            self._done.record()
        else:  # the CPU (nothing to wait for) or MPS (whose non_blocking copies are not to be trusted)
            self._host = rgb.cpu()

    def ready(self) -> bool:
        return self._done is None or self._done.query()

    def image(self) -> Image.Image:
        if self._done is not None:
            self._done.synchronize()
        return rgb_to_image(self._host)

    def device_seconds(self) -> float:
        """What the device spent making it (0 where that is not measured); only once it is ready."""
        if self._started is None or self._done is None:
            return 0.0
        return self._started.elapsed_time(self._done) / 1000


class LivePreviews:
    """The previews of one image's denoising loop: call it at each step; it returns an image or None.

    ``render`` makes a linear preview synchronously; it is used where the latents already live on the
    host. ``decoder`` (TAESD) is used when given and its preview fits the budget, else the linear one; if it
    fails, ``note`` says so once and the rest of the image falls back to the linear preview: a preview never
    fails a job.
    """

    def __init__(self, family: str, render: Render = latents_to_preview, decoder: Decoder | None = None,
                 note: Callable[[str], None] | None = None, throttle: PreviewThrottle | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.family = family
        self._render = render
        self.decoder = decoder
        self._note = note
        self.throttle = throttle or PreviewThrottle(clock=clock)
        self._clock = clock
        self._pending: _Frame | None = None
        self._linear_cost = 0.0  # what the last linear preview cost (next to nothing: a 4x3 map at latent size)
        self.made = 0  # previews started (for tests and benchmarks)
        self.decoded = 0  # of which TAESD's

    def __call__(self, latents: torch.Tensor, step: int, total: int) -> Image.Image | None:
        last = step >= total
        shown = self._collect(wait=last)
        # One frame in flight at a time: a device that is behind gets no more work from previews.
        if self._pending is not None or not self.throttle.due(step, total, self._linear_cost):
            return shown
        taesd = self.decoder is not None and self._taesd_fits(latents, step, total)
        started = self._clock()
        frame = self._start(latents, taesd)
        self.made += 1
        if isinstance(frame, Image.Image):
            shown = frame
        else:
            self._pending = frame
            arrived = self._collect(wait=last)
            shown = shown if arrived is None else arrived
        cost = self._clock() - started
        self.throttle.charge(cost)
        if not taesd:
            self._linear_cost = cost
        elif latents.device.type != "cuda" and self.decoder is not None:  # CUDA's is its device time (_collect)
            _taesd_measured(_taesd_key(latents), cost)
        return shown

    def _taesd_fits(self, latents: torch.Tensor, step: int, total: int) -> bool:
        """Whether a TAESD preview of these latents fits the budget now (its weights loaded first, and charged,
        so that what is kept as its cost is the decode's). The log says so only where it never can in this
        picture: early on, the budget (a share of the time so far) is small even where later steps afford it."""
        cost = taesd_estimate(latents)
        if not self.throttle.affords(cost):
            key = _taesd_key(latents)
            if self.throttle.could_ever_afford(cost, step, total):
                log.debug("A TAESD preview of %dx%d latents on %s (about %.0f ms) is not yet within the budget at "
                          "step %d of %d", *key[1], key[0], cost * 1000, step, total)
            elif key not in _taesd_refused:
                _taesd_refused.add(key)
                log.info("A TAESD preview of %dx%d latents on %s costs about %.0f ms, more than %.0f %% of the "
                         "picture's time allows; the quick colour previews are shown instead", *key[1], key[0],
                         cost * 1000, self.throttle.budget * 100)
            return False
        load = getattr(self.decoder, "load", None)
        if load is not None:
            started = self._clock()
            try:
                load(latents.device)
            except Exception as exc:  # noqa: BLE001 - weights that cannot load must not fail the job
                self._drop_decoder(exc)
                return False
            finally:
                self.throttle.charge(self._clock() - started)
        return True

    def _collect(self, wait: bool) -> Image.Image | None:
        frame = self._pending
        if frame is None or not (wait or frame.ready()):
            return None
        self._pending = None
        image = frame.image()
        device_seconds = frame.device_seconds()
        self.throttle.charge(device_seconds)
        if frame.taesd_key is not None and device_seconds > 0:
            _taesd_measured(frame.taesd_key, device_seconds)
        return image

    def _start(self, latents: torch.Tensor, taesd: bool) -> Image.Image | _Frame:
        timed = latents.device.type == "cuda"
        started = torch.cuda.Event(enable_timing=True) if timed else None
        if started is not None:
            started.record()
        if taesd and self.decoder is not None:
            try:
                frame = _Frame(fit_preview(self.decoder(latents)), started)
            except Exception as exc:  # noqa: BLE001 - a broken decoder must not fail the job
                self._drop_decoder(exc)
            else:
                self.decoded += 1
                frame.taesd_key = _taesd_key(latents)
                return frame
        if latents.device.type == "cpu":
            return self._render(latents, self.family)
        return _Frame(latents_to_rgb(latents, self.family), started)

    def _drop_decoder(self, exc: Exception) -> None:
        log.warning("TAESD preview failed; using the linear preview", exc_info=True)
        self.decoder = None
        if self._note is not None:
            self._note(taesd_failure_note(exc))


def _taesd_key(latents: torch.Tensor) -> tuple[str, tuple[int, int]]:
    return str(latents.device), (latents.shape[-2], latents.shape[-1])


def taesd_failure_note(exc: BaseException) -> str:
    """One sentence for the job's notes: why the previews fell back to the linear approximation."""
    if isinstance(exc, StudioError):
        return str(exc)
    return f"A TAESD preview failed ({first_line(exc)}); Studio shows the quick colour previews instead."
