"""``studio bench``: plain diffusers against Studio's engine on the same pipeline, in one process.

The pipeline is SD 1.5's or SDXL's real architecture built from the configs Studio ships, with random
weights: speed does not depend on weight values, and nothing is downloaded. On the CPU the default is a
"tiny" architecture, the same layout at 1/8 of every width, so the comparison runs anywhere in seconds; it
says nothing about a real model's speed. Both sides make the same pictures (prompt, seeds, size, steps,
scheduler); Studio's side is what a person gets: the generator with its memory plan, the fast path where it
applies, a latent preview and progress event at every step, and the prompt's embeddings read once and kept
(``prompt_cache``), where plain diffusers reads the prompt for every picture. Plain diffusers runs in the precision
its users pick by default (float16 on CUDA, float32 on the CPU) unless ``plain_dtype`` says otherwise; where
Studio's fast path computes in another precision or layout (bfloat16, channels-last, on a CPU with bfloat16 units),
Studio gets its own copy of the pipeline, built from the same seed.

The pipelines: studio.engine.bench_pipelines; how each side is timed and compared: studio.engine.bench_measures.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, StudioError, first_line
from studio.core.events import JobPreview, JobProgress
from studio.core.requests import GenerationRequest
from studio.engine import fast_path, fast_path_choices, fast_path_state
from studio.engine.bench_measures import BenchSide, peak_reserved, peak_rss, same_seed_difference, timed
from studio.engine.bench_pipelines import FAMILIES, TINY_DIVISOR, bench_generator, build_pipeline, check_memory
from studio.engine.cpu_precision import job_device, lays_out
from studio.engine.device import DeviceInfo, dtype_name, select_device
from studio.engine.libraries import quiet_imports
from studio.engine.schedulers import make_scheduler
from studio.engine.worker import Job, WorkerContext, share_the_interpreter

log = logging.getLogger(__name__)

SIDE_NAMES = {"plain": "plain diffusers", "studio": "Studio"}  # as the report names them
PLAIN_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class BenchConfig:
    family: str = "sd15"
    size: int | None = None  # None: the model's native size, or 64 for the tiny architecture
    steps: int | None = None  # None: 20, or 4 for the tiny architecture
    batch: int = 1  # pictures per job (consecutive seeds, one after another, as Studio's batch count)
    runs: int = 3
    scheduler: str = "Euler"
    device: str = "auto"
    compile: bool = False
    tiny: bool | None = None  # None: tiny on the CPU unless a size is given
    cfg: float = 7.0
    seed: int = 1234
    prompt: str = "a watercolor fox in a misty forest"
    negative: str = "blurry"
    plain_dtype: str = "auto"  # auto: the device's own (float16 on CUDA, float32 on the CPU), or a PLAIN_DTYPES name


class BenchFailed(StudioError):
    """One side failed (or ran out of memory) while its pipeline was built or its pictures made: no figures."""


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or (isinstance(exc, RuntimeError) and any(
        words in str(exc).lower() for words in ("out of memory", "can't allocate memory")))  # MPS's, the CPU's


def failure_sentence(who: str, doing: str, exc: BaseException, device: DeviceInfo) -> str:
    """One sentence for ``exc`` raised while ``who`` (a side) was ``doing`` something: which side, what failed,
    and that the bench has no figures. torch's out-of-memory message (a paragraph) is cut to what was asked for."""
    subject = who[:1].upper() + who[1:]
    if _out_of_memory(exc):
        asked = re.search(r"Tried to allocate ([\d.]+ [KMGT]i?B)", str(exc))
        more = f" (it asked for {asked.group(1)} more)" if asked else ""
        memory = "GPU memory" if device.kind == "cuda" else "memory"
        return (f"{subject} ran out of {memory} {doing}{more}, so the bench has no figures; a smaller --size or "
                "--batch needs less.")
    reason = str(exc).strip().rstrip(".") if isinstance(exc, StudioError) else \
        f"{type(exc).__name__}: {first_line(exc)}"
    return f"{subject} failed {doing} ({reason}), so the bench has no figures."


@contextmanager
def failing_as(who: str, doing: str, device: DeviceInfo) -> Iterator[None]:
    """Whatever goes wrong inside (torch's OutOfMemoryError, a RuntimeError from diffusers) as one BenchFailed
    sentence naming the side and what it was doing; the traceback goes to Studio's log."""
    try:
        yield
    except Exception as exc:
        log.exception("The bench failed: %s, %s", who, doing)
        raise BenchFailed(failure_sentence(who, doing, exc, device)) from exc


def run_bench(config: BenchConfig, cache_dir: Path, say: Callable[[str], None] = print,
              note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time both sides and return every figure; ``say`` gets progress lines, ``note`` (else ``say``) what the
    person should know that does not stop it (``compile`` on a device where it does nothing)."""
    import diffusers

    quiet_imports()
    if config.family not in FAMILIES:
        raise InvalidRequest(f"Unknown model family {config.family!r}; choose sd15 or sdxl.")
    device = select_device(config.device)
    if config.device == "cuda" and device.kind != "cuda":
        raise InvalidRequest("No CUDA GPU is available to PyTorch here; run the bench with --device cpu or auto.")
    if config.plain_dtype != "auto" and config.plain_dtype not in PLAIN_DTYPES:
        raise InvalidRequest(f"Unknown precision {config.plain_dtype!r}; choose auto, {', '.join(PLAIN_DTYPES)}.")
    # The Speed setting the jobs carry decides the fast path's options (STUDIO_FAST_PATH overrides it), so
    # the state read out below is the one the jobs use. torch.compile compiles the captured CUDA graph step: on
    # another device there is none, and the figures say so ("compile": false).
    compiles = config.compile and fast_path.platform_reason(device.kind, fast_path_choices.FastPathOptions()) is None
    if config.compile and not compiles:
        (note or say)("--compile only applies on a CUDA GPU; running without it.")
    speed = "compile" if compiles else "fast"
    options = fast_path_choices.options_for(speed)
    plain_device = device if config.plain_dtype == "auto" else replace(device, dtype=PLAIN_DTYPES[config.plain_dtype])
    studio_device = job_device(device, options.enabled)
    tiny = config.tiny if config.tiny is not None else (device.kind == "cpu" and config.size is None)
    size = config.size or (64 if tiny else FAMILIES[config.family][1])
    steps = config.steps or (4 if tiny else 20)
    arch = (f"tiny {config.family} layout (1/{TINY_DIVISOR} of every width; not a real model's speed)" if tiny
            else f"full-size {config.family} architecture")
    separate = studio_device.dtype != plain_device.dtype or lays_out(studio_device)  # plain diffusers' stays as is
    if device.kind == "cpu":
        check_memory(config.family, tiny, cache_dir, plain_device.dtype, studio_device.dtype if separate else None,
                     size, config.batch)
    say(building_line(arch, plain_device, studio_device, separate))
    started = time.perf_counter()
    studio_pipe = None
    if separate:  # first: while its parts are converted from float32, plain diffusers' copy is not there yet
        with failing_as("Studio", f"while its {dtype_name(studio_device.dtype)} pipeline was built", device):
            studio_pipe = build_pipeline(config.family, tiny, studio_device, cache_dir)
    plain_build = (SIDE_NAMES["plain"], f"while its {dtype_name(plain_device.dtype)} pipeline was built") if separate \
        else ("the pipeline both sides share", f"while it was built in {dtype_name(plain_device.dtype)}")
    with failing_as(*plain_build, device):
        pipe = build_pipeline(config.family, tiny, plain_device, cache_dir)
    studio_pipe = studio_pipe or pipe
    built = time.perf_counter() - started
    state = fast_path_state.state_for(studio_pipe.unet, options)
    generator, model = bench_generator(studio_pipe, config.family,
                                       GeneratorEnvironment(config.device, cache_dir / "bench", cache_dir))
    request = GenerationRequest(model=str(model.path), prompt=config.prompt, negative_prompt=config.negative,
                                width=size, height=size, steps=steps, cfg_scale=config.cfg, seed=config.seed,
                                scheduler=config.scheduler, batch_count=config.batch, speed=speed)
    events: list[object] = []
    notes: list[str] = []

    def plain() -> list[Image.Image]:
        images = []
        for index in range(config.batch):
            pipe.scheduler = make_scheduler(config.scheduler, model.base_scheduler_config)
            images.append(pipe(prompt=config.prompt, negative_prompt=config.negative, num_inference_steps=steps,
                               guidance_scale=config.cfg, width=size, height=size, output_type="pil",
                               generator=torch.Generator("cpu").manual_seed(request.seed_for(index))).images[0])
        return images

    def studio() -> list[Image.Image]:
        context = WorkerContext(Job(len(events) + 1, request), events.append)
        images = [image for image, _recipe in generator.generate(request, context)]
        notes.extend(n for n in context.notes if n not in notes)
        return images

    sides = {"plain": BenchSide(plain, runs=[]), "studio": BenchSide(studio, runs=[])}
    share_the_interpreter()  # as the app's engine thread does: the probe stands in for its window
    for name, side in sides.items():  # warm-up: first-call costs, and the fast path's capture
        say(f"Warm-up: {SIDE_NAMES[name]}…")
        with failing_as(SIDE_NAMES[name], "in its warm-up", device):
            side.warmup, side.images, side.peak = timed(side.make, device)
        side.reserved = peak_reserved(device)
    for run in range(config.runs):  # alternating, so clock and thermal drift hit both sides alike
        for name, side in sides.items():
            with failing_as(SIDE_NAMES[name], f"in timed run {run + 1} of {config.runs}", device), side.probe:
                seconds, side.images, peak = timed(side.make, device)
            side.runs.append(seconds)
            side.peak = max(side.peak, peak)
            side.reserved = max(side.reserved, peak_reserved(device))
        say(f"Run {run + 1}/{config.runs}: plain {sides['plain'].runs[-1]:.3f} s, "
            f"Studio {sides['studio'].runs[-1]:.3f} s")
    plain_side, studio_side = (s.summary(config.batch, steps) for s in sides.values())
    studio_side.update(
        fast_path=bool(state.captures) or state.replays > 0,
        fast_path_off_reason=fast_path.platform_reason(device.kind, state.options),
        captures=[{"input": key, "seconds": seconds} for key, seconds in state.captures],
        capture_seconds=sum(seconds for _key, seconds in state.captures),
        replays=state.replays, notes=notes,
        progress_events=sum(isinstance(e, JobProgress) for e in events),
        preview_events=sum(isinstance(e, JobPreview) for e in events))
    return {
        "family": config.family, "architecture": "tiny" if tiny else "full", "architecture_label": arch,
        "size": size, "steps": steps, "batch": config.batch, "runs": config.runs, "scheduler": config.scheduler,
        "cfg": config.cfg, "compile": state.options.compile, "device": device_place(device), "device_kind": device.kind,
        "plain_dtype": dtype_name(plain_device.dtype), "studio_dtype": dtype_name(studio_device.dtype),
        "torch": torch.__version__, "diffusers": diffusers.__version__, "python": sys.version.split()[0],
        "build_seconds": built, "plain": plain_side, "studio": studio_side,
        "speedup": plain_side["seconds_per_image"] / studio_side["seconds_per_image"],
        "peak_rss_bytes": peak_rss(),
        "same_seed_difference": same_seed_difference(sides["plain"].images, sides["studio"].images,
                                                     plain_device.dtype == studio_device.dtype),
    }


def device_place(device: DeviceInfo) -> str:
    """The device's description without the precision it ends with ("CPU · 2 threads"): the sides may use others."""
    head, _, tail = device.description.rpartition(" · ")
    return head if head and tail in PLAIN_DTYPES else device.description


def building_line(arch: str, plain: DeviceInfo, studio: DeviceInfo, separate: bool) -> str:
    """The one progress line for building the pipelines: where, and in which precision each side's copy is (two
    lines that began alike read as one said twice, and the second named the device's precision, not plain's)."""
    place = device_place(plain)
    if not separate:
        return f"Building a {arch} with random weights on {place}, in {dtype_name(plain.dtype)}, for both sides…"
    layout = " (channels-last)" if lays_out(studio) else ""
    return (f"Building a {arch} with random weights on {place}, twice: in {dtype_name(plain.dtype)} for plain "
            f"diffusers, in {dtype_name(studio.dtype)}{layout} for Studio…")
