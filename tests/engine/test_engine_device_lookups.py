"""Where the pipeline and its models compute, found once for a job instead of by walks over every module."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from studio.engine.device import select_device
from studio.engine.device_lookups import device_lookups_pinned, execution_device
from studio.engine.loader import load_model


@pytest.fixture
def pipe(tiny_model_dir):  # noqa: ANN201 - a StableDiffusionPipeline
    return load_model(tiny_model_dir, select_device("cpu")).text2img


def modules_of(pipe) -> list[torch.nn.Module]:  # noqa: ANN001
    return [c for c in pipe.components.values() if isinstance(c, torch.nn.Module)]


def test_the_device_is_the_one_diffusers_finds_with_and_without_offload_hooks(pipe):
    assert execution_device(pipe) == pipe._execution_device == torch.device("cpu")
    for component in modules_of(pipe):  # as model CPU offload leaves them: a hook on each
        component._hf_hook = SimpleNamespace(execution_device="cuda:1")
    try:
        assert execution_device(pipe) == pipe._execution_device == torch.device("cuda:1")
        with device_lookups_pinned(pipe):
            assert pipe._execution_device == torch.device("cuda:1")
            assert not any(k.startswith("_studio_pinned_") for k in vars(pipe.unet))  # it moves: always asked
    finally:
        for component in modules_of(pipe):
            del component._hf_hook


def test_within_a_job_no_module_is_walked_the_picture_is_the_same_and_afterwards_diffusers_asks_again(
        pipe, monkeypatch):
    from diffusers.hooks import group_offloading

    def make() -> np.ndarray:
        with torch.inference_mode():
            return pipe("a fox", num_inference_steps=2, width=64, height=64, output_type="np",
                        generator=torch.Generator().manual_seed(5)).images[0]

    plain = make()
    walks: list[str] = []
    real = group_offloading._get_top_level_group_offload_hook
    monkeypatch.setattr(group_offloading, "_get_top_level_group_offload_hook",
                        lambda module: walks.append(type(module).__name__) or real(module))
    with device_lookups_pinned(pipe):
        assert pipe._execution_device == pipe.unet.device == pipe.vae.device == torch.device("cpu")
        pinned = make()
        assert walks == []
    assert np.array_equal(pinned, plain)
    assert pipe._execution_device == pipe.unet.device == torch.device("cpu") and walks  # searched again
