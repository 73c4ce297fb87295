"""What the fast path (``fast_path``) keeps on the GPU, for a job's memory plan: its bfloat16 VAE copy.

Asked before the job runs, while the fast path's own decisions (``fast_job``) are still to come: the same rules are
read here through ``fast_path``'s functions, so a test standing one in (``platform_reason``) stands it in for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from studio.engine import fast_path
from studio.engine.device import DeviceInfo
from studio.engine.fast_path import FastPathOptions


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
        state = fast_path.kept_state(unet)
        return 0, state.kept_copy_bytes(device) if state is not None else 0
    state = fast_path.state_for(unet, options)  # as the job's fast_job will have it
    eager = fast_path.reason_whatever_the_plan(unet, call_kwargs, state.layout.processor_names())
    return 0 if eager is not None else fast_path.bfloat16_bytes(vae), state.kept_copy_bytes(device)
