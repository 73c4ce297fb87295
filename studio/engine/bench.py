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
"""

from __future__ import annotations

import copy
import json
import logging
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, StudioError, first_line
from studio.core.events import JobPreview, JobProgress
from studio.core.requests import GenerationRequest
from studio.engine import fast_path
from studio.engine.cpu_precision import job_device, lays_out
from studio.engine.device import DeviceInfo, dtype_name, select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.libraries import quiet_imports
from studio.engine.loader import LoadedModel
from studio.engine.memory import GIB, gb, job_bytes
from studio.engine.model_keeping import available_ram
from studio.engine.schedulers import make_scheduler
from studio.engine.single_file import config_folder
from studio.engine.thread_probe import ThreadProbe
from studio.engine.worker import Job, WorkerContext, share_the_interpreter

log = logging.getLogger(__name__)

FAMILIES = {"sd15": ("sd1", 512), "sdxl": ("sdxl", 1024)}
TINY_DIVISOR = 8
TINY_GROUPS = 8  # GroupNorm groups that divide every tiny width
# Config keys that are widths, per component: divided by TINY_DIVISOR for the tiny architecture.
_WIDTHS = {"unet": ("block_out_channels", "cross_attention_dim", "addition_time_embed_dim",
                    "projection_class_embeddings_input_dim"),
           "vae": ("block_out_channels",),
           "text": ("hidden_size", "intermediate_size", "projection_dim")}
TOLERANCE = (1.0, 8.0)  # mean and max absolute pixel difference (of 255) accepted between the two sides
# Beside the pipelines on the CPU: activations, the pictures, the interpreter (SDXL at 512x512 peaked at 21.5 GB
# against 20.4 GB of pipelines).
RUNS_BYTES = 3 * GIB // 2
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


def build_pipeline(family: str, tiny: bool, device: DeviceInfo, cache_dir: Path) -> Any:
    """The family's pipeline from Studio's shipped configs, random weights, on ``device`` in its dtype."""
    import diffusers
    import transformers

    key, _native = FAMILIES[family]
    folder = config_folder(key, None, cache_dir)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    parts: dict[str, Any] = {}
    torch.manual_seed(0)
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list):
            continue
        library, class_name = spec
        if library is None:
            parts[name] = None
        elif name == "scheduler":
            parts[name] = diffusers.EulerDiscreteScheduler.from_pretrained(folder / name)
        elif "Tokenizer" in class_name:
            parts[name] = getattr(transformers, class_name).from_pretrained(folder / name)
        else:
            config = json.loads((folder / name / "config.json").read_text(encoding="utf-8"))
            kind = "text" if library == "transformers" else name
            if tiny:
                config = _tiny(kind, config)
            with torch.device(device.torch_device):
                if library == "transformers":
                    config_class = getattr(transformers, class_name).config_class
                    model = getattr(transformers, class_name)(config_class.from_dict(config))
                else:
                    model = getattr(diffusers, class_name).from_config(config)
            parts[name] = model.to(dtype=device.dtype).eval()
    extras = {k: v for k, v in index.items() if not k.startswith("_") and not isinstance(v, list)}
    pipe = getattr(diffusers, index["_class_name"])(**parts, **extras)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def runs_bytes(size: int, tiny: bool, element_size: int) -> int:
    """The memory the runs take beside the pipelines at ``size`` x ``size``: RUNS_BYTES, measured at 512x512, and
    past that the growth of one picture's activations (``job_bytes``; the tiny layout's are 1/TINY_DIVISOR as wide).
    """
    growth = job_bytes(size, size, element_size) - job_bytes(512, 512, element_size)
    return RUNS_BYTES + max(0, growth) // (TINY_DIVISOR if tiny else 1)


def check_memory(family: str, tiny: bool, cache_dir: Path, plain: torch.dtype, studio: torch.dtype | None,
                 size: int = 512) -> None:
    """Refuse, with a sentence, a CPU bench whose pipelines and pictures would not fit in the free memory
    (``studio``: the precision of Studio's own copy, None where it shares plain diffusers'), before the system's
    out-of-memory killer ends the process, or torch fails after minutes of building. The pipelines are counted on
    the meta device (nothing is allocated); the tiny layout's, a few hundred MB, are within RUNS_BYTES."""
    runs = runs_bytes(size, tiny, max(plain.itemsize, studio.itemsize if studio is not None else 0))
    total = pipelines = 0
    if not tiny:
        meta = build_pipeline(family, tiny, DeviceInfo("meta", torch.device("meta"), torch.float32, "meta"),
                              cache_dir)
        sizes = [sum(p.numel() for p in part.parameters()) for part in meta.components.values()
                 if isinstance(part, torch.nn.Module)]
        # Each part is made in float32, then converted: the largest is briefly there in float32 too. Studio's copy
        # is built first, so its conversion happens before plain diffusers' copy exists.
        total, largest = sum(sizes), max(sizes)
        studio_bytes = total * studio.itemsize if studio is not None else 0
        pipelines = max(studio_bytes + (largest * 4 if studio not in (None, torch.float32) else 0),
                        studio_bytes + total * plain.itemsize + (largest * 4 if plain != torch.float32 else 0))
    needed = pipelines + runs
    available, _total = available_ram()
    if needed <= available:
        return
    layout = f"the tiny {family} layout" if tiny else f"the full-size {family}"
    if tiny or pipelines + RUNS_BYTES <= available:  # the pictures' size is what does not fit
        raise InvalidRequest(
            f"Timing {layout} at {size}x{size} on the CPU needs about {gb(needed)} of memory (about {gb(runs)} of "
            f"it for the pictures' activations), and {gb(available)} is free; a smaller --size needs less.")
    both = f"plain diffusers' {dtype_name(plain)} copy and Studio's {dtype_name(studio)} one" if studio else \
        f"one {dtype_name(plain)} copy"
    raise InvalidRequest(
        f"Timing the full-size {family} on the CPU needs about {gb(needed)} of memory ({both}), and "
        f"{gb(available)} is free. Run it with --tiny, or with STUDIO_CPU_DTYPE=float32 and plain diffusers in "
        f"float32 so both sides share one copy ({gb(total * 4 + runs)}), or on a machine with more memory.")


def _tiny(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    for key in _WIDTHS.get(kind, ()):
        value = config.get(key)
        if isinstance(value, list):
            config[key] = [v // TINY_DIVISOR for v in value]
        elif isinstance(value, int):
            config[key] = value // TINY_DIVISOR
    if "norm_num_groups" in config:
        config["norm_num_groups"] = TINY_GROUPS
    return config


class _BenchGenerator(DiffusersGenerator):
    """Studio's own generator, with the benchmark's pipeline as its loaded model (nothing read from disk)."""

    def __init__(self, env: GeneratorEnvironment, model: LoadedModel) -> None:
        super().__init__(env)
        self._bench_model = model

    def _ensure_model(self, path: Path, context: Any) -> LoadedModel:
        return self._bench_model


def bench_generator(pipe: Any, family: str, env: GeneratorEnvironment) -> tuple[DiffusersGenerator, LoadedModel]:
    """Studio's generator with ``pipe`` (a ``build_pipeline`` one) as its model, and that model."""
    model = LoadedModel(path=(env.cache_dir / "bench-model").resolve(), name=f"random {family}", hashing="random",
                        family="sdxl" if family == "sdxl" else "sd", text2img=pipe,
                        base_scheduler_config=dict(pipe.scheduler.config))
    return _BenchGenerator(env, model), model


@dataclass
class _Side:
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
    compiles = config.compile and fast_path.platform_reason(device.kind, fast_path.FastPathOptions()) is None
    if config.compile and not compiles:
        (note or say)("--compile only applies on a CUDA GPU; running without it.")
    speed = "compile" if compiles else "fast"
    options = fast_path.options_for(speed)
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
                     size)
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
    state = fast_path.state_for(studio_pipe.unet, options)
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

    sides = {"plain": _Side(plain, runs=[]), "studio": _Side(studio, runs=[])}
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
