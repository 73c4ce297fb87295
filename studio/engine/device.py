"""Which device runs the pipelines: CUDA (half precision), else Apple MPS, else the CPU (float32; the fast path
runs bfloat16 on processors that compute it in hardware: ``cpu_precision``)."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from studio.core.errors import StudioError
from studio.core.events import DeviceKind
from studio.core.settings_checks import DEVICE_VALUES, parse_device

CPU_THREADS_ENV = "STUDIO_CPU_THREADS"
DEVICE_ENV = "STUDIO_DEVICE"  # comes before the settings' device (tests and scripts pin the CPU with it)


@dataclass(frozen=True)
class DeviceInfo:
    kind: DeviceKind  # cuda | mps | cpu
    torch_device: torch.device
    dtype: torch.dtype
    description: str  # for the status bar
    note: str = ""  # why this is not the device asked for, where that is worth a sentence (an unknown STUDIO_DEVICE)

    @property
    def status_fields(self) -> dict[str, str]:
        """The device as a status call gives it: its words, and its kind for what depends on the device."""
        return {"device": self.description, "device_kind": self.kind}


def unknown_device_sentence(text: str) -> str:
    """What is said of a STUDIO_DEVICE that names no device (it ran on the CPU without a word)."""
    return f"{DEVICE_ENV} is {text!r}, which is no device: it takes {DEVICE_VALUES}, so Studio picks the device itself."


def select_device(preference: str = "auto") -> DeviceInfo:
    """Pick the best available device; a preference that is not available falls back to the CPU, and one that is
    no device (an unknown STUDIO_DEVICE) to the best available, with a note that says so."""
    asked = os.environ.get(DEVICE_ENV, preference) or "auto"
    parsed, note = parse_device(asked), ""
    if parsed is None:
        parsed, note = ("auto", 0), unknown_device_sentence(asked)
    kind, index = parsed
    if kind in ("auto", "cuda") and torch.cuda.is_available():
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            note = (f"{DEVICE_ENV} is {asked!r}, but PyTorch has {count} CUDA GPU{'s' * (count != 1)} here "
                    f"(cuda:0 to cuda:{count - 1}); the first is used.")
            index = 0
        if index:
            torch.cuda.set_device(index)  # what asks "the" GPU (memory, graphs) then asks this one
        props = torch.cuda.get_device_properties(index)
        gib = props.total_memory / 2**30
        return DeviceInfo("cuda", torch.device("cuda", index), torch.float16,
                          f"CUDA · {props.name} ({gib:.0f} GB) · float16", note)
    if kind in ("auto", "mps") and torch.backends.mps.is_available():
        return DeviceInfo("mps", torch.device("mps"), torch.float16, "Apple MPS · float16", note)
    torch.set_num_threads(cpu_threads(os.cpu_count() or 1))
    return DeviceInfo("cpu", torch.device("cpu"), torch.float32, cpu_description(torch.float32), note)


def cpu_threads(cores: int, environ: Mapping[str, str] = os.environ) -> int:
    """How many threads torch computes with on the CPU: all cores but one, left to the window so it stays smooth,
    or ``STUDIO_CPU_THREADS`` (say, every core, for someone who would rather have the picture sooner)."""
    override = environ.get(CPU_THREADS_ENV, "").strip()
    if not override:
        return max(1, cores - 1)
    if not override.isdigit() or int(override) < 1:
        raise StudioError(f"{CPU_THREADS_ENV} must be a whole number of threads (1 or more), not {override!r}.")
    return int(override)


def cpu_description(dtype: torch.dtype) -> str:
    """The status bar's words for the CPU computing in ``dtype``."""
    threads = torch.get_num_threads()
    return f"CPU · {threads} thread{'s' * (threads != 1)} · {dtype_name(dtype)}"


def dtype_name(dtype: torch.dtype) -> str:
    """``float16`` for torch.float16: a precision in people's words."""
    return str(dtype).removeprefix("torch.")


Release = Callable[[], object]
_caches: list[Callable[[], Release | None]] = []  # what free_memory empties first (decoders, upscalers)
_spares: list[Callable[[], Release | None]] = []  # what is kept only to be quick later (a model kept aside)


def _register(registry: list[Callable[[], Release | None]], release: Release) -> None:
    """A function, or a bound method held weakly so its object can go."""
    registry.append(weakref.WeakMethod(release) if hasattr(release, "__self__") else lambda: release)


def _call_all(registry: list[Callable[[], Release | None]]) -> list[object]:
    results = []
    for ref in list(registry):
        release = ref()
        if release is None:
            registry.remove(ref)
        else:
            results.append(release())
    return results


def hand_back(device: DeviceInfo | None) -> None:
    """Collect what nothing refers to any more, and hand the device's cached blocks back."""
    import gc

    gc.collect()
    if device is not None and device.kind == "cuda":
        torch.cuda.empty_cache()
    elif device is not None and device.kind == "mps":
        torch.mps.empty_cache()


def on_free_memory(release: Callable[[], None]) -> None:
    """Have free_memory call ``release``."""
    _register(_caches, release)


def free_memory(device: DeviceInfo | None) -> None:
    """Let every engine cache go and hand the memory back (out of memory, switching models)."""
    _call_all(_caches)
    hand_back(device)


def on_spare_memory(release: Callable[[], bool]) -> None:
    """Have release_spare_memory call ``release``, which lets go what it keeps only for speed and says whether
    it held anything."""
    _register(_spares, release)


def release_spare_memory(device: DeviceInfo | None) -> bool:
    """Before trying again after running out of memory: what is kept only for speed (the model kept for
    switching back) goes, and its memory is handed back. True when anything went."""
    if not any(_call_all(_spares)):
        return False
    hand_back(device)
    return True
