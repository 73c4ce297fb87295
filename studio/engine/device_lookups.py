"""Where a pipeline and its models compute, told to them for a job instead of searched for at every picture.

diffusers looks for group offloading by walking every module, each time it asks where a pipeline runs
(``DiffusionPipeline._execution_device``: every module of every component) and where a model is
(``ModelMixin.device``: the UNet and the VAE, once each per picture): 9 ms for the pipeline lookup of SD 1.5's
1,100 modules and 21 ms for SDXL's 2,700 on this CPU, Python time on the engine thread where the targets for a
whole GPU picture are 0.25 s and 0.9 s. Studio never turns group offloading on (its memory plan uses model CPU
offload), so for a job the answers are the rest of diffusers' own rules: the execution device of an accelerate
offload hook where there is one, else the pipeline's device; and a model's first weight's device. A model under an
offload hook moves during the picture and is always asked.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

_PINNED = "_studio_pinned_"


def execution_device(pipe: Any) -> torch.device:  # noqa: ANN401 - a diffusers pipeline
    """``pipe._execution_device`` as diffusers finds it for a pipeline without group offloading."""
    for name, model in pipe.components.items():
        if not isinstance(model, torch.nn.Module) or name in getattr(pipe, "_exclude_from_cpu_offload", ()):
            continue
        if not hasattr(model, "_hf_hook"):
            return pipe.device
        for module in model.modules():
            hook = getattr(module, "_hf_hook", None)
            if getattr(hook, "execution_device", None) is not None:
                return torch.device(hook.execution_device)
    return pipe.device


def _pinnable(owner: type, name: str) -> bool:
    """Make the property ``owner.name`` answer with a value pinned on the instance, where there is one (done once;
    False if diffusers no longer has that property)."""
    found = owner.__dict__.get(name)
    if not isinstance(found, property):
        return False
    if getattr(found.fget, "pinnable", False):
        return True
    search, key = found.fget, _PINNED + name

    def pinned_or_searched(self: Any) -> Any:  # noqa: ANN401
        pinned = self.__dict__.get(key)
        return pinned if pinned is not None else search(self)

    pinned_or_searched.pinnable = True
    setattr(owner, name, property(pinned_or_searched, found.fset, found.fdel, found.__doc__))
    return True


@contextmanager
def device_lookups_pinned(pipe: Any) -> Iterator[None]:  # noqa: ANN401
    """For the block (one job, its offload hooks and placement settled), the pipeline's execution device and its
    models' devices are found once each."""
    from diffusers import DiffusionPipeline, ModelMixin

    if not isinstance(pipe, DiffusionPipeline):  # a plugin's or a test's stand-in: nothing of diffusers' to spare
        yield
        return
    pins: list[tuple[Any, str]] = []

    def pin(owner: Any, name: str, value: torch.device) -> None:  # noqa: ANN401
        vars(owner)[_PINNED + name] = value
        pins.append((owner, name))

    try:
        if _pinnable(ModelMixin, "device"):  # first: the pipeline's own device is asked of its models
            for model in pipe.components.values():
                moves = hasattr(model, "_hf_hook")  # offloaded: on the CPU or the GPU, as the picture goes
                if isinstance(model, ModelMixin) and not moves and _PINNED + "device" not in vars(model):
                    first = next(itertools.chain(model.parameters(), model.buffers()), None)
                    if first is not None:
                        pin(model, "device", first.device)
        if _pinnable(DiffusionPipeline, "_execution_device") and _PINNED + "_execution_device" not in vars(pipe):
            pin(pipe, "_execution_device", execution_device(pipe))
        yield
    finally:
        for owner, name in pins:
            vars(owner).pop(_PINNED + name, None)
