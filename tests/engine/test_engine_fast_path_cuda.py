"""The fast path for real, on a CUDA GPU: capture, replay, recapture, and pictures within the stated tolerance.

Skipped where PyTorch sees no CUDA device (CI). The rest of the fast path (eligibility, fallbacks, the
stand-in capture on the CPU) is tested in test_engine_fast_path.py; full-size speed is ``studio bench``'s.
Run on the GPU machine: tests/benchmarks/gpu/run_on_gpu.sh.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from studio_testing import DirectContext
from PIL import Image
from tiny_loras import lora_state, save_lora, tiny_unet
from tiny_models import build_tiny_ip_adapter, build_tiny_sdxl

from studio.core.environment import GeneratorEnvironment
from studio.core.requests import GenerationRequest, LoraChoice
from studio.engine import fast_path_choices, fast_path_state
from studio.engine.bench_measures import TOLERANCE
from studio.engine.device import select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.loader import load_model
from studio.engine.memory import model_bytes
from studio.engine.schedulers import make_scheduler

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_DEVICE", "cuda")  # the suite's conftest defaults it to the CPU
    monkeypatch.delenv(fast_path_choices.ENV, raising=False)


def request(model: Path, **kwargs) -> GenerationRequest:
    values = {"model": str(model), "prompt": "a red fox, snow", "negative_prompt": "blurry", "width": 64,
              "height": 64, "steps": 4, "cfg_scale": 5.0, "seed": 7, "scheduler": "Euler"}
    values.update(kwargs)
    return GenerationRequest(**values)


def plain(pipe, req: GenerationRequest, seed: int, **extra) -> np.ndarray:
    pipe.scheduler = make_scheduler(req.scheduler, pipe.scheduler.config)
    image = pipe(prompt=req.prompt, negative_prompt=req.negative_prompt, num_inference_steps=req.steps,
                 guidance_scale=req.cfg_scale, width=req.width, height=req.height, output_type="pil",
                 generator=torch.Generator("cpu").manual_seed(seed), **extra).images[0]
    return np.asarray(image, np.int16)


def test_a_unet_whose_graphs_were_let_go_captures_its_step_again(cuda, tmp_path, tiny_model_dir):
    """As a model kept aside and switched back to does. First in this file: the process's first capture leaves
    cuBLAS's workspace in its memory pool, which a capture into that pool again would trip on (an internal assert)."""
    generator = DiffusersGenerator(GeneratorEnvironment("cuda", tmp_path / "data", tmp_path / "cache"))
    (first, _), = generator.generate(request(tiny_model_dir), DirectContext())
    unet = generator._model.text2img.unet
    state = fast_path_state.state_for(unet)
    fast_path_state.let_graphs_go(unet)
    assert len(state.cache) == 0
    context = DirectContext()
    (again, _), = generator.generate(request(tiny_model_dir), context)
    assert not [n for n in context.notes if "fast path" in n or "captured UNet step" in n], context.notes
    assert len(state.captures) == 2 and len(state.cache) == 1
    diff = np.abs(np.asarray(again, np.int16) - np.asarray(first, np.int16))
    assert diff.mean() <= TOLERANCE[0] and diff.max() <= TOLERANCE[1], (diff.mean(), diff.max())


def test_the_unet_step_is_captured_once_replayed_every_step_and_close_to_plain_diffusers(cuda, tmp_path,
                                                                                         tiny_model_dir):
    generator = DiffusersGenerator(GeneratorEnvironment("cuda", tmp_path / "data", tmp_path / "cache"))
    req = request(tiny_model_dir, batch_count=2)
    context = DirectContext()
    images = [np.asarray(image, np.int16) for image, _recipe in generator.generate(req, context)]
    # No fallback and no eager job (on a GPU every job also notes its memory plan).
    assert not [n for n in context.notes if "fast path" in n or "captured UNet step" in n], context.notes
    state = fast_path_state.state_for(generator._model.text2img.unet)
    assert [key for key, _seconds in state.captures] == ["4x8x8 latents, 2 rows, float16"]
    assert state.replays == 2 * req.steps
    assert all(seconds < 10 for _key, seconds in state.captures)
    reference = load_model(tiny_model_dir, select_device("cuda")).text2img
    for index, image in enumerate(images):
        diff = np.abs(image - plain(reference, req, req.seed_for(index)))
        assert diff.mean() <= TOLERANCE[0] and diff.max() <= TOLERANCE[1], (diff.mean(), diff.max())

    again = [np.asarray(image, np.int16) for image, _recipe in generator.generate(req, DirectContext())]
    assert len(state.captures) == 1  # the next job replays the same graph
    # The same graph replays the same kernels; the eager VAE decode may pick another cuDNN algorithm.
    assert all(np.abs(a - b).max() <= 1 for a, b in zip(images, again, strict=True))

    list(generator.generate(request(tiny_model_dir, width=96), DirectContext()))  # a new latent shape
    assert [key for key, _seconds in state.captures][1:] == ["4x8x12 latents, 2 rows, float16"]


def test_the_plain_diffusers_setting_runs_without_capturing(cuda, tmp_path, tiny_model_dir):
    generator = DiffusersGenerator(GeneratorEnvironment("cuda", tmp_path / "data", tmp_path / "cache"))
    context = DirectContext()
    list(generator.generate(request(tiny_model_dir, speed="eager"), context))
    state = fast_path_state.state_for(generator._model.text2img.unet)
    assert state.captures == [] and state.replays == 0


def test_a_merged_lora_is_read_by_the_graph_captured_before_it(cuda, tmp_path, tiny_model_dir):
    """Merging writes the weights in place, so the graph captured for the base model replays the LoRA's."""
    folder = tmp_path / "data" / "models" / "loras"
    save_lora(lora_state(tiny_unet(tiny_model_dir), scale=2.0), folder / "ink.safetensors")
    generator = DiffusersGenerator(GeneratorEnvironment("cuda", tmp_path / "data", tmp_path / "cache"))
    base_req, lora_req = request(tiny_model_dir), request(tiny_model_dir, loras=(LoraChoice("ink", 0.8),))
    (base, _), = generator.generate(base_req, DirectContext())
    context = DirectContext()
    (with_lora, _), = generator.generate(lora_req, context)
    assert not [n for n in context.notes if "fast path" in n or "captured UNet step" in n], context.notes
    state = fast_path_state.state_for(generator._model.text2img.unet)
    assert len(state.captures) == 1 and state.replays == 2 * lora_req.steps

    reference = load_model(tiny_model_dir, select_device("cuda")).text2img
    reference.load_lora_weights(str(folder), weight_name="ink.safetensors", adapter_name="ink")
    reference.set_adapters(["ink"], adapter_weights=[0.8])
    diff = np.abs(np.asarray(with_lora, np.int16) - plain(reference, lora_req, lora_req.seed))
    assert diff.mean() <= TOLERANCE[0] and diff.max() <= TOLERANCE[1], (diff.mean(), diff.max())
    assert np.abs(np.asarray(with_lora, np.int16) - np.asarray(base, np.int16)).mean() > 2  # the LoRA showed

    (again, _), = generator.generate(base_req, DirectContext())
    assert len(state.captures) == 1  # the base weights back in place: the same graph again
    assert np.abs(np.asarray(again, np.int16) - np.asarray(base, np.int16)).max() <= 1


def test_a_reference_job_replays_its_own_graph_and_reads_a_new_strength_from_the_weights(cuda, tmp_path,
                                                                                       tiny_model_dir):
    """The adapter's weights stay where the graph captured them, and its strength is written into them."""
    folder = build_tiny_ip_adapter(tmp_path / "data" / "models", tiny_model_dir)
    picture = Image.new("RGB", (64, 64), (240, 140, 20))
    generator = DiffusersGenerator(GeneratorEnvironment("cuda", tmp_path / "data", tmp_path / "cache"))
    (base, _), = generator.generate(request(tiny_model_dir), DirectContext())
    state = fast_path_state.state_for(generator._model.text2img.unet)
    reference = load_model(tiny_model_dir, select_device("cuda")).text2img
    reference.load_ip_adapter(str(folder), subfolder="", weight_name="ip-adapter_sd15.safetensors",
                              image_encoder_folder="image_encoder", local_files_only=True)
    for strength in (0.5, 1.2):
        req = request(tiny_model_dir, reference_image=picture, reference_scale=strength)
        context = DirectContext()
        (image, _), = generator.generate(req, context)
        assert not [n for n in context.notes if "fast path" in n or "captured UNet step" in n], context.notes
        assert [key for key, _seconds in state.captures] == [
            "4x8x8 latents, 2 rows, float16", "4x8x8 latents, 2 rows, float16, with a reference picture"]
        reference.set_ip_adapter_scale(strength)
        diff = np.abs(np.asarray(image, np.int16) - plain(reference, req, req.seed, ip_adapter_image=picture))
        assert diff.mean() <= TOLERANCE[0] and diff.max() <= TOLERANCE[1], (strength, diff.mean(), diff.max())
        assert np.abs(np.asarray(image, np.int16) - np.asarray(base, np.int16)).mean() > 1  # the reference showed


def test_img2img_on_the_fast_path_encodes_the_canvas_and_reads_the_prompt_once_per_batch(cuda, tmp_path,
                                                                                      tiny_model_dir, monkeypatch):
    """The prompt and the canvas's encoding are kept on the GPU too, and the pictures stay plain diffusers'."""
    from diffusers.models.autoencoders import vae as vae_module

    encodes: list[int] = []
    encode = vae_module.Encoder.forward
    monkeypatch.setattr(vae_module.Encoder, "forward",
                        lambda self, *args, **kwargs: encodes.append(1) or encode(self, *args, **kwargs))
    canvas = Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
    generator = DiffusersGenerator(GeneratorEnvironment("cuda", tmp_path / "data", tmp_path / "cache"))
    req = request(tiny_model_dir, init_image=canvas, strength=0.75, batch_count=2)
    context = DirectContext()
    images = [np.asarray(image, np.int16) for image, _recipe in generator.generate(req, context)]
    assert not [n for n in context.notes if "fast path" in n or "captured UNet step" in n], context.notes
    assert len(encodes) == 1

    reference = load_model(tiny_model_dir, select_device("cuda")).pipeline(img2img=True)
    reference.scheduler = make_scheduler(req.scheduler, reference.scheduler.config)
    for index, image in enumerate(images):
        expected = reference(prompt=req.prompt, negative_prompt=req.negative_prompt, image=canvas,
                             strength=req.strength, num_inference_steps=req.steps, guidance_scale=req.cfg_scale,
                             output_type="pil", generator=torch.Generator("cpu").manual_seed(req.seed_for(index)))
        diff = np.abs(image - np.asarray(expected.images[0], np.int16))
        assert diff.mean() <= TOLERANCE[0] and diff.max() <= TOLERANCE[1], (index, diff.mean(), diff.max())


def test_the_free_vram_leaves_out_the_captured_step_s_temporaries(cuda, tmp_path, tiny_model_dir):
    """The graph's pool keeps the step's temporaries free between replays, for the graph alone: the memory plan does
    not count them as free (it would plan a job to fit that then runs out of memory in its VAE decode)."""
    from studio.engine.memory import free_vram, graph_pools_free

    generator = DiffusersGenerator(GeneratorEnvironment("cuda", tmp_path / "data", tmp_path / "cache"))
    list(generator.generate(request(tiny_model_dir), DirectContext()))
    assert len(fast_path_state.state_for(generator._model.text2img.unet).cache) == 1
    device = select_device("cuda")
    in_pools = graph_pools_free(device)
    free, _total = torch.cuda.mem_get_info(device.torch_device)
    gpu = device.torch_device
    everything_cached = torch.cuda.memory_reserved(gpu) - torch.cuda.memory_allocated(gpu)
    assert 0 < in_pools <= everything_cached
    assert free_vram(device) == free + everything_cached - in_pools


def test_a_decode_out_of_memory_is_retried_in_tiles_without_making_the_picture_again(cuda, tmp_path, tiny_model_dir,
                                                                                     monkeypatch):
    from diffusers import AutoencoderKL

    from studio.engine.tiled_retry import TILED_NOTE

    decode, untiled = AutoencoderKL.decode, []

    def short_of_memory(self, *args, **kwargs):  # noqa: ANN001, ANN202 - the GPU's out-of-memory, stood in for
        if not self.use_tiling and not untiled:
            untiled.append(1)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.50 GiB")
        return decode(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKL, "decode", short_of_memory)
    generator = DiffusersGenerator(GeneratorEnvironment("cuda", tmp_path / "data", tmp_path / "cache"))
    context = DirectContext()
    req = request(tiny_model_dir)
    (image, _recipe), = generator.generate(req, context)
    assert untiled == [1] and TILED_NOTE.format(what="decoding", done="decoded") in context.notes
    assert not [n for n in context.notes if "fast path" in n or "captured UNet step" in n], context.notes
    state = fast_path_state.state_for(generator._model.text2img.unet)
    assert state.replays == req.steps  # the steps ran once
    assert not generator._model.text2img.vae.use_tiling
    assert len(state.cache) == 0  # the captured step gave its memory pool to the tiled decode
    context = DirectContext()
    list(generator.generate(req, context))  # captured again, in a pool of its own
    assert not [n for n in context.notes if "fast path" in n or "captured UNet step" in n], context.notes
    assert len(state.captures) == 2 and len(state.cache) == 1 and state.replays == 2 * req.steps


def test_the_bfloat16_vae_copy_is_in_the_plan_and_a_low_vram_job_lets_it_go(cuda, tmp_path):
    """SDXL's VAE decodes from a bfloat16 copy on a GPU with bfloat16: the plan counts it with the weights, and an
    offloaded job (which runs plain diffusers) lets it go rather than leave it on the GPU."""
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("this GPU has no fast bfloat16: its VAE decodes in float32, with no copy")
    model = build_tiny_sdxl(tmp_path / "tiny-xl")
    generator = DiffusersGenerator(GeneratorEnvironment("cuda", tmp_path / "data", tmp_path / "cache"))
    list(generator.generate(request(model), DirectContext()))
    pipe = generator._model.text2img
    copy = fast_path_state.state_for(pipe.unet).vae_copy(pipe.vae)
    assert copy is not None and copy.dtype == torch.bfloat16 and copy.device.type == "cuda"
    assert generator._plan.model_bytes == model_bytes(pipe) + sum(p.numel() * 2 for p in copy.parameters())
    copy = weakref.ref(copy)
    list(generator.generate(request(model, memory="low"), DirectContext()))
    assert copy() is None
