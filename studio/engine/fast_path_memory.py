"""What the fast path (``fast_path``) keeps on the GPU: for a job's memory plan, its bfloat16 VAE copy and the memory
pool a new capture of the UNet step fills and keeps through the job's VAE decode; for Models in Memory, the copy and
the captured steps kept for the next job (``held_by_fast_path``), which "Free Kept Models" lets go (``let_graphs_go``).

Asked before the job runs, while the fast path's own decisions (``fast_job``) are still to come: the same rules are
read here through ``fast_path``'s and ``fast_path_choices``' functions, so a test standing one in (``platform_reason``
on ``fast_path``) stands it in for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from studio.core.held_memory import CACHED, HeldModel
from studio.engine import fast_path, fast_path_choices, fast_path_state
from studio.engine.device import DeviceInfo, dtype_name
from studio.engine.fast_path_choices import FastPathOptions
from studio.engine.held_memory import describe


def vae_copy_bytes(pipe: Any, device: DeviceInfo, options: FastPathOptions,  # noqa: ANN401
                   call_kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """For a job's memory plan: the bytes of the bfloat16 VAE copy the fast path will decode with on ``device`` (0
    where the pipeline's own VAE decodes: no copy is needed, or the job runs plain diffusers for a reason its plan
    does not decide, ``reason_whatever_the_plan``), and the bytes of a copy kept on ``device`` from a job before: the
    job's own again, or let go before the job runs (``fast_job``), so its room is the job's either way. Counted
    whether or not the plan then rules the fast path out with offload or slicing (the copy goes then)."""
    unet, vae = getattr(pipe, "unet", None), getattr(pipe, "vae", None)
    if not isinstance(unet, torch.nn.Module) or not isinstance(vae, torch.nn.Module):
        return 0, 0
    if fast_path.platform_reason(device.kind, options) is not None or fast_path.dtypes_for(pipe, device).vae is None:
        state = fast_path_state.kept_state(unet)
        return 0, state.kept_copy_bytes(device) if state is not None else 0
    state = fast_path_state.state_for(unet, options)  # as the job's fast_job will have it
    eager = fast_path_choices.reason_whatever_the_plan(unet, call_kwargs, state.layout.processor_names())
    return 0 if eager is not None else fast_path_state.bfloat16_bytes(vae), state.kept_copy_bytes(device)


def captures_new_step(pipe: Any, device: DeviceInfo, options: FastPathOptions,  # noqa: ANN401
                      call_kwargs: Mapping[str, Any], width: int, height: int, rows: int) -> bool:
    """Whether the job will capture its UNet step at a size no graph kept for the pipeline's UNet has (``width`` x
    ``height`` pixels, ``rows`` latent rows: 2 with CFG): its first job, a new size (a hires fix's second pass), more
    rows. False where the job runs no captured step for a reason its plan does not decide (as ``vae_copy_bytes``).
    A capture at a size kept (another sampler's timesteps, a reference picture) reuses the pool's room."""
    unet = getattr(pipe, "unet", None)
    if not isinstance(unet, torch.nn.Module) or fast_path.platform_reason(device.kind, options) is not None:
        return False
    state = fast_path_state.state_for(unet, options)
    if fast_path_choices.reason_whatever_the_plan(unet, call_kwargs, state.layout.processor_names()) is not None:
        return False
    scale = getattr(pipe, "vae_scale_factor", 8)
    size = (height // scale, width // scale)
    kept = (key.latents for key in state.cache.keys())
    return not any(latents is not None and len(latents.shape) == 4 and tuple(latents.shape[2:]) == size
                   and latents.shape[0] >= rows for latents in kept)


def held_by_fast_path(unet: Any, model_name: str) -> list[HeldModel]:  # noqa: ANN401
    """What the fast path keeps for the next job of the model ``model_name`` (whose UNet is ``unet``), as Models in
    Memory lists it: the bfloat16 VAE copy (about 170 MB for SDXL's), and the captured UNet steps with their memory
    pool, as big as PyTorch's allocator says the pool's segments are (a step's activations and outputs)."""
    state = fast_path_state.kept_state(unet)
    if state is None:
        return []
    held = []
    copy = state.kept_vae_copy()
    if copy is not None:
        held.append(describe(f"bfloat16 VAE copy of {model_name}", CACHED, [copy]))
    keys = state.cache.keys()
    if keys:  # one graph per input layout, all in one pool
        latents = keys[0].latents
        held.append(HeldModel(f"CUDA graphs of {model_name}'s UNet step", CACHED, "cuda",
                              dtype_name(latents.dtype) if latents is not None else "",
                              graph_pool_bytes(state.cache.pool)))
    return held


def graph_pool_bytes(pool: Any) -> int:  # noqa: ANN401 - torch.cuda.graph_pool_handle()'s token
    """Bytes the graph memory pool ``pool`` holds on its GPU (0 for None: no capture made one)."""
    if pool is None:
        return 0
    return sum(segment["total_size"] for segment in torch.cuda.memory_snapshot()
               if tuple(segment.get("segment_pool_id", (0, 0))) == tuple(pool))
