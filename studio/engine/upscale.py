"""Upscaling as a post-processor: super-resolution models (Real-ESRGAN and kin) loaded by spandrel, run in tiles.

spandrel is an optional extra (``pip install "studio[upscale]"``) and is imported only when an upscaler
is loaded: it imports torchvision, whose build must match the installed torch, and a mismatched one
fails on import. Weights are read from safetensors files only; ``.pth`` files are converted first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, ModelError
from studio.core.generation import JobContext
from studio.core.held_memory import CACHED, HeldModel
from studio.core.upscalers import (  # noqa: F401 - the engine's names
    KNOWN_GOOD,
    find_upscaler,
    spandrel_refusal,
    upscalers_dir,
)
from studio.core.weight_files import check_weights_file
from studio.engine.cpu_precision import cpu_dtype, to_channels_last
from studio.engine.device import DeviceInfo, on_free_memory, select_device
from studio.engine.held_memory import describe
from studio.engine.style.weights import file_key
from studio.engine.tiled import Network, upscale_tiled

MAX_SIDE = 16384  # the largest picture Studio takes back from a post-processor


@dataclass(frozen=True)
class Upscaler:
    """A loaded model and what the tiled runner needs to know about it."""

    run: Network
    name: str
    scale: int
    channels: int  # 3: RGB in, 1: grey
    multiple: int  # tile sides are kept a multiple of this
    minimum: int  # and at least this
    tiled: bool  # False where the model tiles internally
    dtype: torch.dtype


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (never unpickled); ModelError naming the file otherwise."""
    from safetensors.torch import load_file

    check_weights_file(path)  # by content: a pickle renamed .safetensors gets the pickle sentence, unread
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for any bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{path} could not be read as a safetensors file ({first}).") from None


def import_spandrel() -> ModuleType:
    """The spandrel module; ModelError with the install command where it cannot be imported."""
    try:
        import spandrel
    except Exception as exc:  # noqa: BLE001 - a torchvision for another torch raises RuntimeError, not ImportError
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(spandrel_refusal(torch.__version__, first)) from None
    return spandrel


def load_upscaler(path: Path, device: DeviceInfo) -> Upscaler:
    """The model in ``path`` on ``device``, through spandrel's architecture detection."""
    state_dict = read_state_dict(path)
    spandrel = import_spandrel()
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(spandrel.canonicalize_state_dict(state_dict))
    except spandrel.UnsupportedModelError:
        raise ModelError(f"{path.name} is not a model spandrel recognises; Studio's upscaler takes {KNOWN_GOOD}.") \
            from None
    except Exception as exc:  # noqa: BLE001 - a recognised architecture with damaged or partial weights
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{path.name} could not be loaded as an upscaler ({first}).") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelError(f"{path.name} holds a {descriptor.architecture.name} model "
                         f"({str(descriptor.purpose).lower()}), not an image upscaler.")
    if descriptor.input_channels not in (1, 3):
        raise ModelError(f"{path.name} takes pictures with {descriptor.input_channels} channels; Studio's upscaler "
                         "runs models that take RGB or grey pictures.")
    dtype = upscaler_dtype(device, descriptor.supports_half, descriptor.supports_bfloat16)
    descriptor.to(device.torch_device)
    if dtype == torch.float16:
        descriptor.half()
    elif dtype == torch.bfloat16:  # on a CPU with bfloat16 units: 2.85x for Real-ESRGAN x4plus on one Xeon core
        descriptor.bfloat16()
        to_channels_last(descriptor.model)
    descriptor.eval()
    descriptor.model.requires_grad_(False)
    requirements = descriptor.size_requirements
    return Upscaler(descriptor, path.name, int(descriptor.scale), int(descriptor.input_channels),
                    int(requirements.multiple_of), int(requirements.minimum),
                    descriptor.tiling != spandrel.ModelTiling.INTERNAL, dtype)


def upscaler_dtype(device: DeviceInfo, supports_half: bool, supports_bfloat16: bool) -> torch.dtype:
    """float16 on CUDA, bfloat16 on a CPU with bfloat16 units (cpu_precision), each where the architecture
    supports it (spandrel says); float32 otherwise."""
    if device.kind == "cuda" and supports_half:
        return torch.float16
    if device.kind == "cpu" and supports_bfloat16 and cpu_dtype(fast=True) == torch.bfloat16:
        return torch.bfloat16
    return torch.float32


def tile_size(upscaler: Upscaler, tile: int) -> int:
    """``tile`` kept to the model's size requirements (a multiple of its step, at least its minimum)."""
    step = max(1, upscaler.multiple)
    return max(upscaler.minimum, step, tile // step * step)


class Upscale:
    """Params: model (a file in <models>/upscalers; empty: the first), tile, tile_overlap, outscale (0: the model's)."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env
        self._cached: tuple[Any, Upscaler] | None = None  # one model kept between jobs, keyed by file version
        on_free_memory(self.forget)

    def forget(self) -> None:
        self._cached = None

    def held_models(self) -> list[HeldModel]:
        """The upscaler kept from the last job, for the Models in Memory window."""
        if self._cached is None:
            return []
        upscaler = self._cached[1]
        network = getattr(upscaler.run, "model", upscaler.run)  # spandrel's descriptor holds the torch module
        parts = [network] if hasattr(network, "parameters") else []
        return [describe(f"Upscaler {upscaler.name}", CACHED, parts)]

    def release_memory(self, in_use: bool = False) -> list[HeldModel]:
        held = self.held_models()
        self.forget()
        return held

    def load(self, path: Path, device: DeviceInfo, context: JobContext | None = None) -> Upscaler:
        # The precision the device gives a model that takes any (STUDIO_CPU_DTYPE may change it): a kept model
        # loaded in another is loaded again.
        key = (file_key(path), str(device.torch_device), upscaler_dtype(device, True, True))
        if self._cached is None or self._cached[0] != key:
            if context is not None:
                context.status(message=f"Loading the upscaler {path.name}…")
            self._cached = None  # the old model goes before the new one loads
            self._cached = (key, load_upscaler(path, device))
        return self._cached[1]

    def process(self, image: Image.Image, params: Mapping[str, Any], context: JobContext) -> Image.Image:
        path = find_upscaler(self.env, str(params.get("model", "")))
        device = select_device(self.env.device)
        upscaler = self.load(path, device, context)
        outscale = float(params.get("outscale", 0.0)) or float(upscaler.scale)
        final = (max(1, round(image.width * outscale)), max(1, round(image.height * outscale)))
        if max(image.size) * upscaler.scale > MAX_SIDE or max(final) > MAX_SIDE:
            size = max(max(image.size) * upscaler.scale, max(final))
            raise InvalidRequest(f"Upscaling this {image.width}x{image.height} picture with {upscaler.name} would "
                                 f"make a picture {size} pixels on its long side; Studio takes at most {MAX_SIDE} "
                                 "pixels a side.")
        if outscale > upscaler.scale:
            context.note(f"{upscaler.name} enlarges {upscaler.scale}x; the rest of the way to {outscale:g}x is plain "
                         "Lanczos resampling.")
        context.check_cancelled()
        tile = tile_size(upscaler, int(params.get("tile", 512))) if upscaler.tiled else max(image.size)
        context.status(message=f"Upscaling with {upscaler.name}…")
        result = upscale_tiled(upscaler.run, image, upscaler.scale, tile, int(params.get("tile_overlap", 32)),
                               on_tile=lambda done, total: context.report_progress(done, total),
                               is_cancelled=context.is_cancelled, device=device.torch_device, dtype=upscaler.dtype,
                               channels=upscaler.channels, multiple=max(1, upscaler.multiple), note=context.note)
        if result.size != final:
            result = result.resize(final, Image.Resampling.LANCZOS)
        return result
