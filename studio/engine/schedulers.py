"""A1111 scheduler names to diffusers schedulers."""

from __future__ import annotations

from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    UniPCMultistepScheduler,
)

from studio.core.errors import InvalidRequest

_SCHEDULERS: dict[str, tuple[type, dict[str, Any]]] = {
    "Euler": (EulerDiscreteScheduler, {}),
    "Euler a": (EulerAncestralDiscreteScheduler, {}),
    "DPM++ 2M": (DPMSolverMultistepScheduler, {}),
    "DPM++ 2M Karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    "DPM++ 2M SDE Karras": (DPMSolverMultistepScheduler,
                            {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"}),
    # Latents are not pictures in [-1, 1]: clipping the predicted x0 there (DDIM's default, taken wherever the
    # model's config does not say, as SDXL's Euler config does not) washes pictures out. SD's own DDIM settings.
    "DDIM": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": False}),
    "UniPC": (UniPCMultistepScheduler, {}),
    "Heun": (HeunDiscreteScheduler, {}),
}


def make_scheduler(name: str, base_config: Any) -> Any:
    """A fresh scheduler called ``name``, built from the model's own scheduler config."""
    try:
        cls, overrides = _SCHEDULERS[name]
    except KeyError:
        raise InvalidRequest(f"Unknown scheduler {name!r}; choose one of: {', '.join(_SCHEDULERS)}.") from None
    # Karras/sampler options from the model's config must not leak into a plain scheduler.
    config = {k: v for k, v in dict(base_config).items()
              if k not in ("use_karras_sigmas", "algorithm_type", "use_exponential_sigmas", "use_beta_sigmas")}
    return cls.from_config(config, **overrides)
