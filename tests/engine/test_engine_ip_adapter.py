"""A reference picture (IP-Adapter) on the real engine: what is kept between reference jobs, and the strength.

The tiny SD pipeline, loaded through Studio's loader, with a tiny random IP-Adapter laid out as h94's is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from studio_testing import DirectContext, tiny_request
from tiny_models import build_tiny_ip_adapter, build_tiny_sdxl

from studio.core.environment import GeneratorEnvironment
from studio.core.requests import GenerationRequest
from studio.engine import ip_adapter
from studio.engine.device import select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.loader import load_model
from studio.engine.schedulers import make_scheduler

REFERENCE = Image.new("RGB", (64, 64), (240, 140, 20))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reference-models")


@pytest.fixture(scope="module")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    return build_tiny_sdxl(tmp_path_factory.mktemp("reference-sdxl") / "tiny-xl")


@pytest.fixture(scope="module")
def adapter(models, tiny_model_dir, tiny_sdxl_dir) -> Path:
    build_tiny_ip_adapter(models, tiny_sdxl_dir, family="sdxl")  # beside SD 1.x's, under h94's SDXL names
    return build_tiny_ip_adapter(models, tiny_model_dir)


@pytest.fixture
def generator(models, adapter, tmp_path) -> DiffusersGenerator:
    return DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models))


def request(model: Path, **kwargs) -> GenerationRequest:  # noqa: ANN003
    return tiny_request(model, prepared=True, **kwargs)


def make(generator: DiffusersGenerator, req: GenerationRequest) -> np.ndarray:
    ((image, _recipe),) = list(generator.generate(req, DirectContext()))
    return np.asarray(image, dtype=np.int16)


def touch(path: Path) -> None:
    """The file changed on disk, as far as its modification time says."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: type, name: str, calls: list[str]) -> None:
    function = getattr(owner, name)
    original = function.__func__ if hasattr(function, "__func__") else function

    def counted(first, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(name)
        return original(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, classmethod(counted) if hasattr(function, "__func__") else counted)


def test_the_adapter_and_encoder_are_kept_for_the_next_reference_job_and_let_go_by_any_other(
        generator, tiny_model_dir, adapter, monkeypatch):
    from diffusers.loaders.ip_adapter import IPAdapterMixin
    from transformers import CLIPVisionModelWithProjection

    plain = make(generator, request(tiny_model_dir))
    pipe = generator._model.text2img
    encoders: list[str] = []
    adapters: list[str] = []
    count_calls(monkeypatch, CLIPVisionModelWithProjection, "from_pretrained", encoders)
    count_calls(monkeypatch, IPAdapterMixin, "load_ip_adapter", adapters)
    steered = request(tiny_model_dir, reference_image=REFERENCE, reference_scale=1.0)

    first = make(generator, steered)
    assert (len(encoders), len(adapters)) == (1, 1)
    kept = ip_adapter._kept[pipe.unet]
    places = [value.data_ptr() for value in kept.values]
    # Kept aside, not attached: the UNet is as it was, so any other job may run.
    assert pipe.image_encoder is None and pipe.unet.encoder_hid_proj is None
    assert not any("IPAdapter" in type(p).__name__ for p in pipe.unet.attn_processors.values())

    second = make(generator, steered)
    assert (len(encoders), len(adapters)) == (1, 1)  # nothing read: the same objects attached again
    assert np.array_equal(second, first)
    assert ip_adapter._kept[pipe.unet] is kept and [v.data_ptr() for v in kept.values] == places

    assert np.array_equal(make(generator, request(tiny_model_dir)), plain)  # a job without a reference...
    assert pipe.unet not in ip_adapter._kept  # ...lets it all go
    make(generator, steered)
    assert (len(encoders), len(adapters)) == (2, 2)

    touch(adapter / "ip-adapter_sd15.safetensors")  # a new adapter file: loaded, the encoder handed back
    assert np.array_equal(make(generator, steered), first)
    assert (len(encoders), len(adapters)) == (2, 3)
    touch(adapter / "image_encoder" / "config.json")  # a new encoder: both read again
    assert np.array_equal(make(generator, steered), first)
    assert (len(encoders), len(adapters)) == (3, 4)


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_the_strength_in_the_value_weights_makes_the_picture_diffusers_scale_makes(generator, tiny_model_dir,
                                                                                 tiny_sdxl_dir, adapter, family):
    """Studio keeps diffusers' scale at 1 and scales the adapter's value projections: the same picture."""
    model = tiny_sdxl_dir if family == "sdxl" else tiny_model_dir
    weight_name, encoder_folder = ip_adapter.FILES[family]
    reference = load_model(model, select_device("cpu")).text2img
    reference.load_ip_adapter(str(adapter), subfolder="", weight_name=weight_name,
                              image_encoder_folder=encoder_folder, local_files_only=True)
    pictures = {}
    for strength in (0.4, 1.3, 0.0, 0.4):
        req = request(model, reference_image=REFERENCE, reference_scale=strength)
        studio = make(generator, req)
        reference.set_ip_adapter_scale(strength)
        reference.scheduler = make_scheduler(req.scheduler, reference.scheduler.config)
        expected = reference(prompt=req.prompt, negative_prompt=req.negative_prompt, num_inference_steps=req.steps,
                             guidance_scale=req.cfg_scale, width=req.width, height=req.height, output_type="pil",
                             ip_adapter_image=REFERENCE, generator=torch.Generator("cpu").manual_seed(req.seed)
                             ).images[0]
        assert np.abs(studio - np.asarray(expected, np.int16)).max() <= 1, strength  # float32 rounding only
        if strength in pictures:  # set from the weights at strength 1 each time: exactly the same again
            assert np.array_equal(studio, pictures[strength])
        pictures[strength] = studio
    assert np.array_equal(pictures[0.0], make(generator, request(model)))  # strength 0: no reference
    assert np.abs(pictures[1.3] - pictures[0.4]).mean() > 1  # and the strength shows
    kept = ip_adapter._kept.get(generator._model.text2img.unet)
    assert kept is None  # the plain job above let it go


def test_the_picture_is_encoded_once_for_a_batch_and_the_jobs_after_it(generator, tiny_model_dir, adapter,
                                                                        monkeypatch):
    from transformers import CLIPVisionModelWithProjection

    encodings: list[str] = []
    count_calls(monkeypatch, CLIPVisionModelWithProjection, "forward", encodings)
    batch = request(tiny_model_dir, reference_image=REFERENCE, reference_scale=0.8, batch_count=3)
    pictures = [np.asarray(image, np.int16) for image, _ in generator.generate(batch, DirectContext())]
    assert len(encodings) == 1  # once for the three pictures
    again = request(tiny_model_dir, reference_image=REFERENCE.copy(), reference_scale=0.8, seed=batch.seed_for(1))
    assert np.array_equal(make(generator, again), pictures[1]) and len(encodings) == 1  # the same picture: kept

    without_cfg = request(tiny_model_dir, reference_image=REFERENCE, reference_scale=0.8, cfg_scale=1.0)
    studio = make(generator, without_cfg)  # no CFG: the picture's half of the kept embeddings
    assert len(encodings) == 1
    other = Image.new("RGB", (64, 64), (20, 90, 240))
    make(generator, request(tiny_model_dir, reference_image=other, reference_scale=0.8))
    assert len(encodings) == 2  # another picture is encoded

    pipe = load_model(tiny_model_dir, select_device("cpu")).text2img
    pipe.load_ip_adapter(str(adapter), subfolder="", weight_name="ip-adapter_sd15.safetensors",
                         image_encoder_folder="image_encoder", local_files_only=True)
    pipe.set_ip_adapter_scale(0.8)
    pipe.scheduler = make_scheduler(without_cfg.scheduler, pipe.scheduler.config)
    expected = pipe(prompt=without_cfg.prompt, negative_prompt=without_cfg.negative_prompt, num_inference_steps=2,
                    guidance_scale=1.0, width=64, height=64, output_type="pil", ip_adapter_image=REFERENCE,
                    generator=torch.Generator("cpu").manual_seed(without_cfg.seed)).images[0]
    assert np.abs(studio - np.asarray(expected, np.int16)).max() <= 1


def test_the_memory_plan_counts_the_adapter_a_job_will_load_and_not_one_kept_on_the_device(
        generator, tiny_model_dir, monkeypatch):
    from studio.engine import job_memory

    weights: list[int] = []
    plan = job_memory.plan_memory

    def noted(mode, device, model_weights, activations, free):  # noqa: ANN001, ANN202
        weights.append(model_weights)
        return plan(mode, device, model_weights, activations, free)

    monkeypatch.setattr(job_memory, "plan_memory", noted)
    make(generator, request(tiny_model_dir))
    steered = request(tiny_model_dir, reference_image=REFERENCE, reference_scale=0.7)
    make(generator, steered)
    adapter = ip_adapter._kept[generator._model.text2img.unet]
    loaded = [adapter.encoder, adapter.projection, *(p for p in adapter.processors.values()
                                                      if isinstance(p, torch.nn.Module))]
    attached = sum(p.numel() * p.element_size() for module in loaded for p in module.parameters())
    assert weights[1] - weights[0] == attached  # the estimate, from the files' headers, is what was attached
    make(generator, steered)
    assert weights[2] == weights[0]  # kept on the device: counted as used already, not again


def test_a_reference_job_runs_under_attention_slicing_and_the_next_job_is_sliced_again(generator, tiny_model_dir,
                                                                                      monkeypatch):
    """diffusers' IP-Adapter loading fails on sliced attention (it cannot rebuild a SlicedAttnProcessor), and
    taking the adapter off leaves plain SDPA: Studio turns slicing off for the reference job, and on after."""
    from studio.engine import job_memory
    from studio.engine.memory import SLICING, MemoryPlan

    monkeypatch.setattr(job_memory, "plan_memory", lambda *_: MemoryPlan((SLICING,), "Short of memory: slicing."))

    def sliced() -> bool:
        return all("Sliced" in type(p).__name__ for p in generator._model.text2img.unet.attn_processors.values())

    make(generator, request(tiny_model_dir))
    assert sliced()
    context = DirectContext()
    list(generator.generate(request(tiny_model_dir, reference_image=REFERENCE, reference_scale=0.5), context))
    assert context.notes == ["Attention slicing is off for this job: a reference picture's IP-Adapter attention "
                             "cannot be sliced."]
    make(generator, request(tiny_model_dir))
    assert sliced()
