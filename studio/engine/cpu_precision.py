"""The fast path on the CPU: bfloat16, with channels-last weights, on processors that compute it in hardware.

Plain diffusers runs float32 on the CPU. Intel's AMX (Xeon Sapphire Rapids and later) and AVX-512 BF16 (Xeon
Cooper Lake, AMD Zen 4 and later) compute bfloat16 products natively through oneDNN, which torch's CPU
convolutions and matrix products call. On a Xeon with AMX, one full-size SD 1.5 UNet step with CFG at 256x256
took 3.4 s in float32, 1.24 s in bfloat16 and 1.07 s with the UNet's weights channels-last too (1 thread);
in float32 channels-last was slower (3.8 s), so it comes only with bfloat16. Processors without those units
would emulate bfloat16, slower than float32, so they keep float32, as does the Speed: Standard setting (plain
diffusers).

Why bfloat16 and not float16: it has float32's range, so nothing overflows (SDXL's VAE does in float16), and
its 8-bit mantissa changes a picture about as much as a GPU's float16 does: a grey level or so on average.
``STUDIO_CPU_DTYPE=float32|bfloat16`` overrides the choice (``auto``, the default, decides as above).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch

from studio.engine.device import DeviceInfo, cpu_description

log = logging.getLogger(__name__)
ENV = "STUDIO_CPU_DTYPE"
_CHOICES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
_HARDWARE_CHECKS = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's, by CPUID
_LAID_OUT = ("unet", "vae", "controlnet")  # the convolutional parts; the text encoders have none


def cpu_computes_bfloat16() -> bool:
    """Whether this processor has bfloat16 units (AMX or AVX-512 BF16) that torch's CPU kernels use (through
    oneDNN: a torch built without it would run bfloat16 convolutions on slow reference kernels)."""
    if not torch.backends.mkldnn.is_available():
        return False
    for name in _HARDWARE_CHECKS:
        check = getattr(torch.cpu, name, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # noqa: BLE001 - a torch without the check: float32, as before
            log.debug("torch.cpu.%s failed", name, exc_info=True)
    return False


def cpu_dtype(fast: bool, environ: Mapping[str, str] = os.environ) -> torch.dtype:
    """The precision a CPU job runs in: bfloat16 for the fast path where the processor computes it, else
    float32; ``STUDIO_CPU_DTYPE`` overrides."""
    chosen = forced_cpu_dtype(environ)
    if chosen is not None:
        return chosen
    return torch.bfloat16 if fast and cpu_computes_bfloat16() else torch.float32


def rerun_cpu_dtype(precision: str) -> torch.dtype | None:
    """The CPU precision a rerun recorded as ``precision``, where this processor computes it; else None."""
    dtype = _CHOICES.get(precision.strip().lower())
    if dtype == torch.bfloat16 and not cpu_computes_bfloat16():
        return None
    return dtype


def forced_cpu_dtype(environ: Mapping[str, str] = os.environ) -> torch.dtype | None:
    """The precision ``STUDIO_CPU_DTYPE`` forces, or None where it is unset, ``auto`` or not a precision."""
    return _CHOICES.get(environ.get(ENV, "auto").strip().lower())


def job_device(device: DeviceInfo, fast: bool, environ: Mapping[str, str] = os.environ,
               precision: str = "") -> DeviceInfo:
    """``device`` as a job with (``fast``) or without the fast path uses it: only the CPU's precision changes.
    ``precision``: a rerun's recorded one, which wins over Speed where the processor computes it (bfloat16 without
    its units would be emulated, many times slower: that rerun keeps Speed's); ``STUDIO_CPU_DTYPE`` wins over both."""
    if device.kind != "cpu":
        return device
    dtype = forced_cpu_dtype(environ) or rerun_cpu_dtype(precision) or cpu_dtype(fast, environ)
    return device if dtype == device.dtype else replace(device, dtype=dtype, description=cpu_description(dtype))


def lays_out(device: DeviceInfo) -> bool:
    """Whether jobs on ``device`` want channels-last weights (``lay_out_for_cpu``): a bfloat16 CPU job's do."""
    return device.kind == "cpu" and device.dtype == torch.bfloat16


def lay_out_for_cpu(pipe: Any, device: DeviceInfo) -> None:  # noqa: ANN401 - a diffusers pipeline
    """Channels-last weights for the UNet and VAE of a bfloat16 CPU job (oneDNN's bfloat16 convolutions run
    faster on them). A part already laid out (the model's own, kept across jobs) is left as it is; a VAE
    chosen for the job is laid out once, where it is kept."""
    if not lays_out(device):
        return
    for name in _LAID_OUT:
        module = getattr(pipe, name, None)
        if isinstance(module, torch.nn.Module):
            to_channels_last(module)


def to_channels_last(module: torch.nn.Module) -> None:
    """The module's weights channels-last, the layout oneDNN's bfloat16 convolutions run fastest on; a module
    already laid out is left as it is (its first convolution wider than 1x1 says, as a 1x1 weight is both)."""
    conv = next((m for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1), None)
    if conv is not None and not conv.weight.is_contiguous(memory_format=torch.channels_last):
        module.to(memory_format=torch.channels_last)
