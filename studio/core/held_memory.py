"""What the engine holds in memory, and what letting it go gave back (Settings → Models in Memory).

ComfyUI ("Unload models"), A1111 ("Unload SD checkpoint") and InvokeAI (its model cache) let people see and free
the models loaded, to hand the GPU or the memory to another program without quitting. These are the values the
engine answers with; a generator or filter that holds models says so with ``held_models``/``release_memory``
(``studio.core.generation.MemoryHolder``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import and_list
from studio.core.units import format_size

IN_USE = "in use"  # the model the last job ran: the next job with it starts at once
KEPT = "kept"  # switched away from, kept loaded for switching back (model_keeping)
CACHED = "cached"  # a part kept for the next job that wants it (a VAE, an IP-Adapter, an upscaler)
NAMED_MODELS = 3  # more than this, the status bar counts them (it shows one line)
ROLE_WORDS = {IN_USE: "In use", KEPT: "Kept for switching back", CACHED: "Cached"}


@dataclass(frozen=True)
class HeldModel:
    """One model (or model part) loaded in memory."""

    name: str
    role: str  # IN_USE | KEPT | CACHED
    device: str  # where its weights are: cuda | mps | cpu
    precision: str  # float16 | bfloat16 | float32
    size: int  # bytes of its weights, counted
    path: Path | None = None

    @property
    def role_words(self) -> str:
        return ROLE_WORDS.get(self.role, self.role)


@dataclass(frozen=True)
class MemoryFreed:
    """The engine let models go on the person's word (sent as an event too, in order with the jobs' events)."""

    models: tuple[HeldModel, ...]  # what was let go
    size: int  # bytes given back: measured on a GPU that reports it, the counted weights elsewhere
    measured: bool = False  # ``size`` includes the GPU's allocated memory measured before and after

    @property
    def in_use_freed(self) -> bool:
        """The model in use went: the next job loads it again."""
        return any(model.role == IN_USE for model in self.models)

    def summary(self) -> str:
        """"Freed tiny-sd and ControlNet canny (2.4 GB)." for the status bar: the models by name, up to NAMED_MODELS
        of them (two copies of one, on the GPU and on the CPU, named once); more are counted: "Freed 5 models"."""
        count = len(self.models)
        names = list(dict.fromkeys(model.name for model in self.models))
        if count and len(names) <= NAMED_MODELS:
            return f"Freed {and_list(names)} ({format_size(self.size)})."
        if count:
            return f"Freed {count} models ({format_size(self.size)})."
        if self.size > 0:
            return f"Freed {format_size(self.size)} of cached memory."
        return "No model was loaded: there was no memory to free."


@dataclass(frozen=True)
class HeldModelsChanged:
    """Models were loaded or let go outside the engine's jobs (a guide's thumbnail loaded the depth model's copy
    for the CPU): Models in Memory asks again. A job's end, a preload and freeing memory have events of their own."""


def total_size(models: tuple[HeldModel, ...] | list[HeldModel]) -> int:
    return sum(model.size for model in models)
