"""Small engine pieces: scheduler names, latent previews, device choice."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.requests import SCHEDULER_NAMES
from studio.engine.device import select_device
from studio.engine.preview import latents_to_preview
from studio.engine.schedulers import make_scheduler

BASE_CONFIG = {
    "_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085,
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1, "prediction_type": "epsilon",
    "use_karras_sigmas": True,  # must not leak into the plain schedulers
}

EXPECTED = {
    "Euler": ("EulerDiscreteScheduler", False),
    "Euler a": ("EulerAncestralDiscreteScheduler", None),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", False),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", True),
    "DPM++ 2M SDE Karras": ("DPMSolverMultistepScheduler", True),
    "DDIM": ("DDIMScheduler", None),
    "UniPC": ("UniPCMultistepScheduler", False),
    "Heun": ("HeunDiscreteScheduler", False),
}


def test_every_request_scheduler_name_has_an_engine_scheduler():
    assert set(SCHEDULER_NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_make_scheduler(name):
    scheduler = make_scheduler(name, BASE_CONFIG)
    cls_name, karras = EXPECTED[name]
    assert type(scheduler).__name__ == cls_name
    assert scheduler.config.beta_schedule == "scaled_linear"  # the model's own config is kept
    assert scheduler.config.steps_offset == 1
    if karras is not None:
        assert scheduler.config.use_karras_sigmas is karras
    if name == "DPM++ 2M SDE Karras":
        assert scheduler.config.algorithm_type == "sde-dpmsolver++"


@pytest.mark.parametrize("config", [BASE_CONFIG, {**BASE_CONFIG, "clip_sample": True, "set_alpha_to_one": True}])
def test_ddim_never_clips_the_predicted_latents(config):
    # SDXL's config (Euler's) says nothing of clipping, and DDIMScheduler's default clips x0 to [-1, 1]: latents
    # are not pictures, so that washed DDIM pictures out (and made bfloat16's rounding swing them by 36 of 255).
    scheduler = make_scheduler("DDIM", config)
    assert scheduler.config.clip_sample is False and scheduler.config.set_alpha_to_one is False
    scheduler.set_timesteps(4)
    sample = torch.full((1, 4, 2, 2), 3.0)
    x0 = scheduler.step(torch.zeros_like(sample), scheduler.timesteps[-1], sample).pred_original_sample
    assert x0.min() > 2.9  # 3 / sqrt(alpha) at the last step, not clipped to 1


def test_unknown_scheduler_is_an_invalid_request():
    with pytest.raises(InvalidRequest, match="Unknown scheduler 'Euler b'"):
        make_scheduler("Euler b", BASE_CONFIG)


@pytest.mark.parametrize("family", ["sd", "sdxl", "unknown"])
def test_latent_preview_is_an_rgb_image_at_latent_size(family):
    latents = torch.randn(2, 4, 12, 8, generator=torch.Generator().manual_seed(0))
    preview = latents_to_preview(latents, family)
    assert isinstance(preview, Image.Image)
    assert preview.mode == "RGB"
    assert preview.size == (8, 12)
    assert len(set(preview.getdata())) > 1  # not a flat colour


def test_latent_preview_of_other_latent_spaces_is_grey():
    preview = latents_to_preview(torch.randn(1, 16, 6, 6), "sd")
    assert preview.mode == "RGB" and preview.size == (6, 6)
    assert all(r == g == b for r, g, b in preview.getdata())


def test_cpu_is_chosen_when_asked(monkeypatch):
    monkeypatch.delenv("STUDIO_DEVICE", raising=False)
    device = select_device("cpu")
    assert device.kind == "cpu"
    assert device.dtype == torch.float32
    assert device.description.startswith("CPU")


def test_studio_device_environment_variable_wins(monkeypatch):
    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    assert select_device("cuda").kind == "cpu"


def test_free_memory_empties_the_engines_caches_and_lets_their_owners_go():
    import gc

    from studio.engine.device import free_memory, on_free_memory
    from studio.engine.upscale import Upscale

    upscale = Upscale(None)
    upscale._cached = ("key", "a loaded upscaler")
    free_memory(None)  # after an out-of-memory error, or switching models
    assert upscale._cached is None
    del upscale
    gc.collect()
    calls = []
    on_free_memory(lambda: calls.append(1))
    free_memory(None)  # the dropped Upscale is not called, nor kept alive
    assert calls == [1]
