"""The bench's pipelines: SD 1.5's or SDXL's real architecture built from the configs Studio ships, with random
weights (or the "tiny" layout, the same at 1/8 of every width), the check that a CPU bench's pipelines and pictures
fit in memory, and Studio's own generator with such a pipeline as its model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest
from studio.engine.device import DeviceInfo, dtype_name
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.loader import LoadedModel
from studio.engine.memory import GIB, gb, job_bytes
from studio.engine.model_keeping import available_ram
from studio.engine.single_file import config_folder

FAMILIES = {"sd15": ("sd1", 512), "sdxl": ("sdxl", 1024)}
TINY_DIVISOR = 8
TINY_GROUPS = 8  # GroupNorm groups that divide every tiny width
# Config keys that are widths, per component: divided by TINY_DIVISOR for the tiny architecture.
_WIDTHS = {"unet": ("block_out_channels", "cross_attention_dim", "addition_time_embed_dim",
                    "projection_class_embeddings_input_dim"),
           "vae": ("block_out_channels",),
           "text": ("hidden_size", "intermediate_size", "projection_dim")}
# Beside the pipelines on the CPU: activations, the pictures, the interpreter (SDXL at 512x512 peaked at 21.5 GB
# against 20.4 GB of pipelines).
RUNS_BYTES = 3 * GIB // 2


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


def runs_bytes(size: int, tiny: bool, element_size: int, batch: int = 1) -> int:
    """The memory the runs take beside the pipelines at ``size`` x ``size``: RUNS_BYTES, measured at 512x512, and
    past that the growth of one picture's activations (``job_bytes``; the tiny layout's are 1/TINY_DIVISOR as wide),
    and the batch's pictures, whatever the layout (``pictures_bytes``).
    """
    growth = job_bytes(size, size, element_size) - job_bytes(512, 512, element_size)
    return RUNS_BYTES + max(0, growth) // (TINY_DIVISOR if tiny else 1) + pictures_bytes(size, batch)


def pictures_bytes(size: int, batch: int) -> int:
    """The RGB pictures the bench holds: each side keeps its last run's batch (to compare the sides' pictures of the
    same seeds) while it makes the next one, and diffusers holds each as a float32 array too before it becomes one.
    Made one after another, a batch's pictures are what grows with it: 50 at 4096x4096 are over 10 GB."""
    rgb = size * size * 3
    return 2 * (2 * batch * rgb + rgb * 4)


def check_memory(family: str, tiny: bool, cache_dir: Path, plain: torch.dtype, studio: torch.dtype | None,
                 size: int = 512, batch: int = 1) -> None:
    """Refuse, with a sentence, a CPU bench whose pipelines and pictures would not fit in the free memory
    (``studio``: the precision of Studio's own copy, None where it shares plain diffusers'), before the system's
    out-of-memory killer ends the process, or torch fails after minutes of building. The pipelines are counted on
    the meta device (nothing is allocated); the tiny layout's, a few hundred MB, are within RUNS_BYTES."""
    runs = runs_bytes(size, tiny, max(plain.itemsize, studio.itemsize if studio is not None else 0), batch)
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
            f"Timing {layout} at {size}x{size}{f', batch {batch},' if batch > 1 else ''} on the CPU needs about "
            f"{gb(needed)} of memory (about {gb(runs)} of it for the pictures and their activations), and "
            f"{gb(available)} is free; a smaller --size{' or --batch' if batch > 1 else ''} needs less.")
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
