"""Listing and freeing what the engine's generators and filters hold loaded (the Models in Memory window).

Run on the engine thread between jobs (``EngineWorker.between_jobs``). Any live generator or filter may take part:
one with ``held_models``/``release_memory`` (``studio.core.generation.MemoryHolder``) is asked; the rest hold
nothing Studio can free. No torch at import: the job service imports this at start-up.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from studio.core.held_memory import HeldModel, MemoryFreed

log = logging.getLogger(__name__)
SYSTEM_MEMORY = "cpu"


def describe(name: str, role: str, parts: Iterable[Any], path: Path | None = None) -> HeldModel:
    """A model as the window lists it, from the torch modules holding its weights: its device and precision are
    those of the first part's first weight (list the UNet first), its size all their weights'."""
    size, first = 0, None
    for part in parts:
        for weight in part.parameters():
            if first is None:
                first = weight
            size += weight.numel() * weight.element_size()
    device = first.device.type if first is not None else SYSTEM_MEMORY
    precision = str(first.dtype).removeprefix("torch.") if first is not None else ""
    return HeldModel(name, role, device, precision, size, path)


def held_models(holders: Iterable[object]) -> tuple[HeldModel, ...]:
    """What every holder says it holds; one that fails to say is left out (and logged)."""
    found: list[HeldModel] = []
    for holder in holders:
        ask = getattr(holder, "held_models", None)
        if callable(ask):
            try:
                found.extend(ask())
            except Exception:  # noqa: BLE001 - a plugin's bug must not take the list down
                log.warning("%s could not say which models it holds", type(holder).__name__, exc_info=True)
    return tuple(found)


def release_memory(holders: Iterable[object], in_use: bool = False) -> MemoryFreed:
    """Every holder lets go what it keeps for speed (with ``in_use``, its model in use too); then the engine's
    caches go (TAESD decoders, upscalers), the garbage is collected and the device's cache emptied.

    What it gave back: on a GPU that reports it, its allocated memory measured before and after, plus the counted
    weights of what was let go from system memory; elsewhere the counted weights alone."""
    gpu = _gpu_started()
    before = _allocated(gpu)
    let_go: list[HeldModel] = []
    for holder in holders:
        release = getattr(holder, "release_memory", None)
        if callable(release):
            try:
                let_go.extend(release(in_use))
            except Exception:  # noqa: BLE001 - the others are still freed
                log.warning("%s could not free its memory", type(holder).__name__, exc_info=True)
    _hand_back(gpu)
    after = _allocated(gpu)
    if before is None or after is None:
        return MemoryFreed(tuple(let_go), sum(model.size for model in let_go))
    in_system_memory = sum(model.size for model in let_go if model.device == SYSTEM_MEMORY)
    return MemoryFreed(tuple(let_go), max(0, before - after) + in_system_memory, measured=True)


def _gpu_started() -> str | None:
    """"cuda" or "mps" when torch has started that device (nothing is on one otherwise), else None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if torch.cuda.is_initialized():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return None


def _allocated(gpu: str | None) -> int | None:
    """Bytes the device's tensors take now (None where it is not known)."""
    torch = sys.modules.get("torch")
    if gpu == "cuda":
        return int(torch.cuda.memory_allocated())
    if gpu == "mps":
        return int(torch.mps.current_allocated_memory())
    return None


def _hand_back(gpu: str | None) -> None:
    if "torch" not in sys.modules:  # no model was ever loaded; a plugin's plain Python objects still go
        gc.collect()
        return
    from studio.engine.device import free_memory

    free_memory(None)  # the registered caches, then a collection
    torch = sys.modules["torch"]
    if gpu == "cuda":
        torch.cuda.empty_cache()
    elif gpu == "mps":
        torch.mps.empty_cache()
