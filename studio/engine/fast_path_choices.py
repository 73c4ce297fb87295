"""Whether the fast path runs, and how: its options (the Speed setting, ``STUDIO_FAST_PATH``), why it is off on a
device or for a job (one sentence or phrase each), and the precisions it runs the UNet and VAE in.

``fast_path`` runs what is chosen here and is where ``platform_reason`` and ``choose_dtypes`` are looked up
(``fast_path_memory`` reads them through it too): a test standing one in stands it in on ``fast_path``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from studio.core.speed_labels import SPEED_STANDARD, menu_words
from studio.engine.cpu_precision import ENV as CPU_ENV, cpu_computes_bfloat16, forced_cpu_dtype
from studio.engine.device import dtype_name
from studio.engine.memory import OFFLOAD, SLICING

ENV = "STUDIO_FAST_PATH"


@dataclass(frozen=True)
class FastPathOptions:
    enabled: bool = True
    compile: bool = False  # torch.compile the captured step (minutes of warm-up per shape)
    graph_cache_size: int = 3  # captured graphs kept per model (they share one memory pool)


def options_from_env(environ: Mapping[str, str] = os.environ) -> FastPathOptions:
    value = environ.get(ENV, "on").strip().lower()
    return FastPathOptions(enabled=value not in ("0", "off", "false", "no", "eager"), compile=value == "compile")


def options_for(speed: str, environ: Mapping[str, str] = os.environ) -> FastPathOptions:
    """The person's Speed setting (fast | eager | compile); ``STUDIO_FAST_PATH``, when set, overrides it."""
    if ENV in environ:
        return options_from_env(environ)
    return FastPathOptions(enabled=speed != "eager", compile=speed == "compile")


@dataclass(frozen=True)
class DtypeChoice:
    unet: torch.dtype
    vae: torch.dtype | None  # None: the VAE runs as the pipeline runs it
    reason: str


def choose_dtypes(capability: tuple[int, int] | None, vae_upcast: bool) -> DtypeChoice:
    """float16 everywhere, but bfloat16 for a VAE that overflows in float16 (``vae_upcast``: its pipeline decodes it
    in float32, ``memory.upcasts_float16_vae``), where the GPU has bfloat16."""
    if not vae_upcast:
        return DtypeChoice(torch.float16, None, "float16 UNet and VAE")
    if capability is not None and capability >= (8, 0):
        return DtypeChoice(torch.float16, torch.bfloat16,
                           "float16 UNet; bfloat16 VAE, as float16 overflows in this VAE")
    return DtypeChoice(torch.float16, None, "float16 UNet; float32 VAE (it overflows in float16 and this GPU has no "
                                            "fast bfloat16)")


def platform_reason(device_kind: str, options: FastPathOptions,
                    environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the fast path is off on this device with these options (one sentence), or None when it is on. It names
    what decided: ``STUDIO_FAST_PATH`` or the Speed setting; on the CPU, the precision the jobs run in and why."""
    if not options.enabled:
        if ENV in environ:
            return (f"The fast path is turned off by {ENV}={environ[ENV]}, so jobs run plain diffusers whatever "
                    "the Speed setting says.")
        return (f"The fast path is turned off (Settings → GPU → {menu_words(SPEED_STANDARD)}), so jobs run plain "
                "diffusers.")
    if device_kind == "cuda":
        return None
    if device_kind == "cpu":
        return "The fast path's CUDA graphs are off on the CPU: they need a CUDA GPU. " + cpu_precision_reason(environ)
    return f"The fast path is off on {device_kind.upper()}: CUDA graphs and its half-precision kernels need a CUDA GPU."


def cpu_precision_reason(environ: Mapping[str, str] = os.environ) -> str:
    """Which precision the fast path's CPU jobs run in, and what decided it (one sentence)."""
    forced = forced_cpu_dtype(environ)
    if forced is not None:
        return f"Its CPU jobs run {dtype_name(forced)}, as {CPU_ENV}={environ[CPU_ENV]} says."
    if cpu_computes_bfloat16():
        return "Its CPU jobs run bfloat16 with channels-last weights, as this processor has bfloat16 units."
    return ("Its CPU jobs run float32, as plain diffusers does: this processor has no bfloat16 units (AMX or "
            "AVX-512 BF16).")


def job_reason(pipe: Any, call_kwargs: Mapping[str, Any], measures: tuple[str, ...] = (),
               offloaded: bool = False, processors: list[str] | None = None) -> str | None:
    """Why this job cannot use the captured UNet step (a phrase), or None when it can.

    ``processors``: the class names of the UNet's attention processors, when already known.
    """
    unet = getattr(pipe, "unet", None)
    if not isinstance(unet, torch.nn.Module):
        return "this pipeline has no UNet to capture"
    if offloaded or OFFLOAD in measures or getattr(unet, "_hf_hook", None) is not None:
        return "model CPU offload moves the UNet's weights during the job, and a captured graph needs them in place"
    if processors is None:
        processors = [type(p).__name__ for p in getattr(unet, "attn_processors", {}).values()]
    if SLICING in measures or any("Sliced" in name for name in processors):
        return "attention slicing is on to save memory, and captured graphs would need more of it, not less"
    return reason_whatever_the_plan(unet, call_kwargs, processors)


def reason_whatever_the_plan(unet: torch.nn.Module, call_kwargs: Mapping[str, Any],
                              processors: list[str]) -> str | None:
    """Why the job cannot use the captured step whatever its memory plan decides (offload, slicing), or None."""
    # diffusers' LoRA loading (PEFT) sets it, unloading removes it; Studio merges and unloads, a plugin may not.
    if getattr(unet, "peft_config", None):
        return "LoRAs are attached, and their weights are Python numbers a captured graph would freeze"
    if call_kwargs.get("cross_attention_kwargs"):
        return "it passes cross-attention options, which a captured graph would freeze"
    if any("Added" in name for name in processors):
        return "this UNet's attention has added key/value projections the fast path does not handle"
    return None
