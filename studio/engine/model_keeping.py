"""Keeping the model switched away from, so that switching back costs nearly nothing.

People go back and forth between two models (a photographic one and an illustrative one, an SD 1.5
finetune and SDXL), as ComfyUI, InvokeAI and AUTOMATIC1111 let them without a reload. Studio keeps the
model before the current one loaded, where it is, with its merged LoRAs: switching back reads no file and
copies no weights. On a GPU its captured steps go (their memory pool is no use to another model). It never
costs a job anything: on the GPU the job's memory plan lets it go before taking any measure (diffusion.py),
and in system memory it is kept only while the next model still leaves a reserve free.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.hashing import FilesKey, files_key
from studio.core.weight_files import numbers_in
from studio.engine.device import DeviceInfo
from studio.engine.memory import GIB

RAM_RESERVE_SHARE = 0.2  # of the machine's memory, left free for the window, the OS and the job itself
RAM_RESERVE_MIN = 2 * GIB


def in_system_memory(model: Any) -> bool:  # noqa: ANN401 - a LoadedModel
    """Whether the model's weights take system memory: on the CPU (or not placed yet), or on Apple's GPU, whose
    memory is the system's. Otherwise they are in a CUDA GPU's own memory."""
    unet = getattr(model.text2img, "unet", None)
    first = next(unet.parameters(), None) if hasattr(unet, "parameters") else None
    return first is None or first.device.type in ("cpu", "mps")


def in_precision(model: Any, device: DeviceInfo) -> bool:  # noqa: ANN401 - a LoadedModel
    """Whether the loaded model computes in the precision jobs on ``device`` use now (on the CPU the Speed
    setting picks it: cpu_precision). A stand-in without a UNet is taken as it is."""
    unet = getattr(model.text2img, "unet", None)
    return getattr(unet, "dtype", device.dtype) == device.dtype


def weight_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.rglob("*.safetensors"))


def model_files_key(path: Path) -> FilesKey:
    """A model's weight files as they are on disk: a kept model whose files changed since (a new download or
    conversion under the same name) is read again, not switched back to."""
    return files_key(weight_files(path))


def numbers_in_model(path: Path) -> int:
    """The numbers a model's safetensors files hold (an upper bound: a folder may hold two variants)."""
    try:
        return numbers_in(weight_files(path))
    except (StudioError, OSError):
        return 0  # the load itself says what is wrong with the file


def available_ram() -> tuple[int, int]:
    """(available, total) bytes of system memory."""
    import psutil

    memory = psutil.virtual_memory()
    return int(memory.available), int(memory.total)


def worth_keeping(model: Any, next_model: Path, device: DeviceInfo,  # noqa: ANN401 - a LoadedModel
                  ram: Callable[[], tuple[int, int]] | None = None) -> bool:
    """Whether to keep ``model`` loaded while ``next_model`` is loaded and used.

    On a CUDA GPU yes (the memory plan lets it go when a job needs the room). In system memory only while loading
    the next model, in the device's precision, still leaves the reserve free; swapping would cost more than
    reading the file again. An offloaded model (Low VRAM) is never kept: its weights are in RAM already.
    """
    if model.offloaded:
        return False
    if not in_system_memory(model):
        return True
    available, total = (ram or available_ram)()
    needed = numbers_in_model(next_model) * device.dtype.itemsize
    return available - needed >= max(RAM_RESERVE_SHARE * total, RAM_RESERVE_MIN)
