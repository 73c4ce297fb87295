"""What a person asks for: the generation request, its validation, and the scheduler names."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image

from studio.core.control import ControlGuide, check_guides
from studio.core.errors import InvalidRequest
from studio.core.hires import HiresFix
from studio.core.inpaint import InpaintOptions

# A1111 names, so recipes read the same in every tool. The engine maps them to diffusers schedulers.
SCHEDULER_NAMES: tuple[str, ...] = (
    "Euler",
    "Euler a",
    "DPM++ 2M",
    "DPM++ 2M Karras",
    "DPM++ 2M SDE Karras",
    "DDIM",
    "UniPC",
    "Heun",
)
DEFAULT_SCHEDULER = "Euler a"
_SEPARATORS = re.compile(r"[\s_-]+")

SIZE_MULTIPLE = 8
MIN_SIZE = 64
MAX_SIZE = 4096
MAX_STEPS = 1000
MAX_CFG = 50  # the most CFG scale a generation takes; settings and pictures' parameters are held to it too
MAX_BATCH_COUNT = 100
MAX_SEED = 2**32 - 1
SPEED_MODES = ("fast", "eager", "compile")  # CUDA: fast path / plain diffusers / fast path + torch.compile
MEMORY_MODES = ("auto", "high", "low")  # VRAM: estimate and choose / all on the GPU / every saving measure
MAX_INPAINT_SIDE = 16384  # masked-area-only inpainting works on a crop, so big pictures are fine
MIN_INPAINT_SIDE = 8  # the VAE's downscale: a shorter side leaves no latent row or column to paint
MAX_LORAS = 8
MAX_LORA_WEIGHT = 4.0  # A1111 allows any weight; beyond +-4 pictures are noise, so it is surely a typo
# How a refusal says a value the person never typed, one the command line took from the settings.
FROM_SETTINGS = "from the settings' generation defaults"


@dataclass(frozen=True)
class LoraChoice:
    """A LoRA for the next generation: a name in ``<models>/loras`` (or a .safetensors path) and its weight."""

    name: str
    weight: float = 1.0
    tag: str = field(default="", compare=False)  # the prompt's <lora:…> tag it came from; "" when chosen


@dataclass(frozen=True)
class PostStep:
    """One post-processor with its parameters, as chosen by the person."""

    processor: str
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)
    strength: float = 1.0  # blend with the picture before the step: 0 keeps it, 1 takes the result fully


@dataclass(frozen=True)
class PostProcessRequest:
    """Run one post-processor on a picture (the canvas, or a file from the command line)."""

    processor: str
    image: Image.Image = field(compare=False, repr=False)
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)
    recipe: object | None = field(default=None, compare=False)  # the picture's Recipe, extended by the step
    batch_count: int = 1
    strength: float = 1.0  # blend with the original: 0 keeps it, 1 takes the result fully
    mask: Image.Image | None = field(default=None, compare=False, repr=False)  # "L": change only under white

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


@dataclass(frozen=True)
class GenerationRequest:
    """One job: everything needed to make (and later remake) its images."""

    model: str
    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 20
    cfg_scale: float = 7.0
    seed: int = -1  # -1: pick a random seed when the job is prepared
    scheduler: str = DEFAULT_SCHEDULER
    batch_count: int = 1
    init_image: Image.Image | None = field(default=None, compare=False, repr=False)
    strength: float = 0.75  # img2img only: how far the result may move from init_image
    mask: Image.Image | None = field(default=None, compare=False, repr=False)  # "L"; white = regenerate
    inpaint: InpaintOptions = InpaintOptions()
    generator: str = "diffusers"
    # a rerun's: the plugin whose generator made the picture ("" = whichever plugin has the generator id now)
    plugin: str = ""
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)  # a plugin generator's own parameters
    post: tuple[PostStep, ...] = ()  # post-processors applied to every image, in order
    reference_image: Image.Image | None = field(default=None, compare=False, repr=False)  # steers via IP-Adapter
    reference_scale: float = 0.6  # how strongly the reference steers (IP-Adapter scale)
    memory: str = field(default="auto", compare=False)  # auto | high | low VRAM: how the job fits the GPU
    speed: str = field(default="fast", compare=False)  # fast | eager | compile: how the job runs on CUDA
    # a rerun's: the precision its picture was computed in ("float32", "bfloat16"), used where the device computes it
    # in place of the one Speed picks (on the CPU); "" = Speed's
    precision: str = field(default="", compare=False)
    loras: tuple[LoraChoice, ...] = ()  # applied for this job only, in order
    vae: str = ""  # a VAE name in <models>/vae, or a path; "" = the model's own
    hires: HiresFix | None = None  # a second, larger pass of a new picture (width x height is the first's)
    controls: tuple[ControlGuide, ...] = ()  # ControlNet guides, in order (Studio's own generator only)

    @property
    def is_img2img(self) -> bool:
        return self.init_image is not None and self.mask is None

    @property
    def is_inpaint(self) -> bool:
        return self.mask is not None

    @property
    def output_size(self) -> tuple[int, int]:
        """The size of the pictures the job makes: width x height, or the hires fix's larger size."""
        return self.hires.size(self.width, self.height) if self.hires is not None else (self.width, self.height)

    def seed_for(self, index: int) -> int:
        """Seed of the index-th image of the batch (A1111 convention: consecutive seeds)."""
        return (self.seed + index) % (MAX_SEED + 1)


@dataclass(frozen=True)
class PreparedRequest:
    request: GenerationRequest
    notes: tuple[str, ...] = ()


def _round_size(name: str, value: int, notes: list[str]) -> int:
    if value < MIN_SIZE or value > MAX_SIZE:
        raise InvalidRequest(f"The {name} must be between {MIN_SIZE} and {MAX_SIZE} pixels, not {value}.")
    rounded = max(MIN_SIZE, (value + SIZE_MULTIPLE // 2) // SIZE_MULTIPLE * SIZE_MULTIPLE)  # halves round up
    if rounded != value:
        notes.append(f"The {name} {value} is not a multiple of {SIZE_MULTIPLE}; using {rounded}.")
    return rounded


def canonical_scheduler(name: object) -> str | None:
    """The scheduler ``name`` means, as SCHEDULER_NAMES write it: in any case, with spaces, underscores or hyphens
    between its words or none ("euler_a", "dpm++ 2m karras", "EulerA"); None for one Studio does not have."""
    if not isinstance(name, str):
        return None
    key = _SEPARATORS.sub("", name.casefold())
    return next((known for known in SCHEDULER_NAMES if _SEPARATORS.sub("", known.casefold()) == key), None)


def check_strength(steps: int, strength: float) -> None:
    """diffusers runs int(steps x strength) steps of an img2img or inpainting job: none is an error, said here."""
    if int(steps * strength) < 1:
        raise InvalidRequest(
            f"With {steps} step{'s' * (steps != 1)} and a strength of {strength:g} no denoising step would run; "
            "raise the steps or the strength.")


def steps_explained(request: GenerationRequest, total: int) -> str:
    """Why a job's progress counts ``total`` steps where its Steps say another number: diffusers runs
    int(steps x strength) of an img2img or inpainting job's, and of the hires fix's second pass
    ("500 steps × strength 0.75"); "" where the count is the Steps' own or no strength explains it."""
    if request.generator != "diffusers":
        return ""
    passes = [(request.steps, request.strength)] if request.init_image is not None else []
    if request.hires is not None:
        passes.append((request.hires.steps_for(request.steps), request.hires.strength))
    return next((f"{steps} steps × strength {strength:g}" for steps, strength in passes
                 if total != steps and min(int(steps * strength), steps) == total), "")


def prepare_request(request: GenerationRequest, *, check_model_exists: bool = True,
                    from_settings: Collection[str] = (),
                    check_denoising: Callable[[GenerationRequest], None] | None = None) -> PreparedRequest:
    """Check a request, fix what can be fixed (with a note), and fix the seed.

    Raises InvalidRequest with one sentence for what cannot be fixed. ``from_settings``: the names of the fields
    whose values the person never typed (``studio generate`` took them from the settings), which a refusal says
    came from there, and are changed there (in the window every value is on screen). ``check_denoising``: the
    caller's own sentence for steps x strength that run no step (the command line's says which came from the
    settings), given the checked request once every value is in range, before this module's own.
    """
    from studio.core.request_checks import check_hires, check_inpaint, check_loras  # they import this module

    notes: list[str] = []
    if request.generator == "diffusers" and (not request.model or not str(request.model).strip()):
        raise InvalidRequest("No model is selected; pick a model folder first.")
    if check_model_exists and request.generator == "diffusers" and not Path(request.model).exists():
        raise InvalidRequest(f"The model folder {request.model} does not exist.")
    scheduler = request.scheduler
    if request.generator == "diffusers":  # a plugin's generator has its own parameters instead
        scheduler = _check_sampling(request)
    for key, text in (("prompt", request.prompt), ("negative_prompt", request.negative_prompt)):
        name = key.replace("_", " ")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # bytes a terminal passed on that are not UTF-8 (surrogate escapes)
            raise InvalidRequest(f"The {name} has bytes that are not text at character {exc.start + 1}; check the "
                                 "terminal's encoding (Studio reads UTF-8).") from None
        if "\0" in text:  # the PNG text chunk keeps it, but A1111 and other readers stop there: the rest is lost
            source, there = (f" {FROM_SETTINGS}", " there (Settings)") if key in from_settings else ("", "")
            raise InvalidRequest(f"The {name}{source} contains a NUL character (at character "
                                 f"{text.index(chr(0)) + 1}); remove it{there}: other tools would read the "
                                 "picture's settings only up to it.")
    if not 1 <= request.batch_count <= MAX_BATCH_COUNT:
        raise InvalidRequest(f"The batch count must be between 1 and {MAX_BATCH_COUNT}, not {request.batch_count}.")
    if request.init_image is not None and not 0.0 < request.strength <= 1.0:
        what = "denoising strength" if request.mask is not None else "img2img strength"
        raise InvalidRequest(f"The {what} must be above 0 and at most 1, not {request.strength}.")
    if request.seed < -1 or request.seed > MAX_SEED:
        raise InvalidRequest(f"The seed must be between 0 and {MAX_SEED} (or -1 for random), not {request.seed}.")
    if request.memory not in MEMORY_MODES:
        raise InvalidRequest(f"The memory setting must be one of {', '.join(MEMORY_MODES)}, not {request.memory!r}.")
    if request.speed not in SPEED_MODES:
        raise InvalidRequest(f"The speed setting must be one of {', '.join(SPEED_MODES)}, not {request.speed!r}.")
    mask = request.mask
    if mask is not None:
        mask = check_inpaint(request)
        width, height = request.init_image.size
    else:
        width = _round_size("width", request.width, notes)
        height = _round_size("height", request.height, notes)
    seed = request.seed if request.seed >= 0 else random.randint(0, MAX_SEED)
    from studio.core.prompt_loras import take_lora_tags, unsupported_notes  # it imports this module

    # A1111's <lora:name:weight> tags: out of the text the model encodes, into the job's LoRAs.
    prompt, loras, lora_notes = take_lora_tags(request.prompt, request.negative_prompt, request.loras)
    vae = str(request.vae or "").strip()
    if request.generator != "diffusers":
        if loras or vae:
            notes.append("LoRAs and the VAE choice apply to Studio's own generator only; they were left out.")
        loras, vae, lora_notes = (), "", unsupported_notes(request.prompt)  # its tags are out of its prompt too
    notes += lora_notes
    loras = check_loras(tuple(loras))
    size_from_settings = {"width", "height"} <= set(from_settings)
    hires = check_hires(request, width, height, notes, size_from_settings)
    controls = tuple(request.controls)
    if controls and request.generator != "diffusers":
        notes.append("Control guides apply to Studio's own generator only; they were left out.")
        controls = ()
    check_guides(controls)
    prepared = replace(request, width=width, height=height, seed=seed, scheduler=scheduler,
                       prompt=prompt.strip(), negative_prompt=request.negative_prompt.strip(), mask=mask,
                       loras=loras, vae=vae, hires=hires, controls=controls)
    # Last: a value out of range (the size, the upscale) is what is wrong, not the steps it leaves.
    if check_denoising is not None:
        check_denoising(prepared)
    _check_denoising_steps(prepared)
    return PreparedRequest(prepared, tuple(notes))


def _check_denoising_steps(request: GenerationRequest) -> None:
    """diffusers runs int(steps x strength) steps of an img2img or inpainting job and of the hires fix's second
    pass: none is an error."""
    if request.init_image is not None and request.generator == "diffusers":
        check_strength(request.steps, request.strength)
    if request.hires is None:
        return
    second_steps, strength = request.hires.steps_for(request.steps), request.hires.strength
    if int(second_steps * strength) < 1:
        raise InvalidRequest(f"The hires fix's second pass would run no step ({second_steps} "
                             f"step{'s' * (second_steps != 1)} at a strength of {strength:g}); raise its steps or "
                             "its strength.")


def _check_sampling(request: GenerationRequest) -> str:
    """The steps and the CFG scale checked; the scheduler as SCHEDULER_NAMES write it."""
    if not isinstance(request.steps, int) or request.steps < 1:
        raise InvalidRequest(f"Steps must be at least 1, not {request.steps}.")
    if request.steps > MAX_STEPS:
        raise InvalidRequest(f"Steps must be at most {MAX_STEPS}, not {request.steps}.")
    if not 0 <= request.cfg_scale <= MAX_CFG:
        raise InvalidRequest(f"The CFG scale must be between 0 and {MAX_CFG}, not {request.cfg_scale}.")
    scheduler = canonical_scheduler(request.scheduler)
    if scheduler is None:
        raise InvalidRequest(
            f"Unknown scheduler {request.scheduler!r}; choose one of: {', '.join(SCHEDULER_NAMES)}."
        )
    return scheduler
