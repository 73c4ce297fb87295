"""Listing and freeing what the engine's generators and filters hold loaded (the Models in Memory window).

Run on the engine thread between jobs (``EngineWorker.between_jobs``). Any live generator or filter may take part:
one with ``held_models``/``release_memory`` (``studio.core.generation.MemoryHolder``) is asked; the rest hold
nothing Studio can free. No torch at import: the job service imports this at start-up.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from studio.core.held_memory import HeldModel, MemoryFreed

log = logging.getLogger(__name__)
SYSTEM_MEMORY = "cpu"
ANSWER_SECONDS = 10.0  # how long one holder may take to list or free what it holds


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
    return tuple(model for holder in holders for model in _answer(holder, "held_models"))


def release_memory(holders: Iterable[object], in_use: bool = False) -> MemoryFreed:
    """Every holder lets go what it keeps for speed (with ``in_use``, its model in use too); then the engine's
    caches go (TAESD decoders, upscalers), the garbage is collected and the device's cache emptied.

    What it gave back: on a GPU that reports it, its allocated memory measured before and after, plus the counted
    weights of what was let go from system memory; elsewhere the counted weights alone."""
    gpu = _gpu_started()
    before = _allocated(gpu)
    let_go = [model for holder in holders for model in _answer(holder, "release_memory", in_use)]
    _hand_back(gpu)
    after = _allocated(gpu)
    if before is None or after is None:
        return MemoryFreed(tuple(let_go), sum(model.size for model in let_go))
    in_system_memory = sum(model.size for model in let_go if model.device == SYSTEM_MEMORY)
    return MemoryFreed(tuple(let_go), max(0, before - after) + in_system_memory, measured=True)


def _answer(holder: object, method: str, *args: object) -> list[HeldModel]:
    """What ``holder.method(*args)`` answers. Studio's own holders answer on the engine thread; a plugin's is asked
    on a thread of its own, since it may fail or never return: the engine thread, which waits for it, goes on after
    ``ANSWER_SECONDS`` without its answer. Anything but a HeldModel in the answer is left out."""
    call = getattr(holder, method, None)
    if not callable(call):
        return []
    if type(holder).__module__.startswith("studio."):  # Studio's own: on the engine thread, between jobs, as said
        return [answer for answer in call(*args) if isinstance(answer, HeldModel)]
    answers: list[object] = []

    def ask() -> None:
        try:
            answers.extend(call(*args))
        except BaseException:  # noqa: BLE001 - a plugin's bug, even a SystemExit, must not take the others down
            log.warning("%s failed in %s", type(holder).__name__, method, exc_info=True)

    thread = threading.Thread(target=ask, name=f"studio-{method}", daemon=True)
    thread.start()
    thread.join(ANSWER_SECONDS)
    if thread.is_alive():
        log.warning("%s did not answer %s within %g s; it was left out", type(holder).__name__, method,
                    ANSWER_SECONDS)
        return []
    return [answer for answer in answers if isinstance(answer, HeldModel)]


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
