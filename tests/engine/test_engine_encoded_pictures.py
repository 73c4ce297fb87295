"""Pictures the VAE has encoded, kept with it: the real engine on the tiny pipelines, and the cache itself."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from studio_testing import DirectContext, tiny_request

from studio.core.environment import GeneratorEnvironment
from studio.core.inpaint import InpaintOptions
from studio.core.requests import GenerationRequest
from studio.engine.device import select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.encoded_pictures import encodings_cached
from studio.engine.loader import load_model

CANVAS = Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")


def new_generator(root: Path) -> DiffusersGenerator:
    return DiffusersGenerator(GeneratorEnvironment("cpu", root / "data", root / "cache", root / "models"))


def request(model: Path, **kwargs) -> GenerationRequest:  # noqa: ANN003
    values = dict(init_image=CANVAS, strength=0.7, steps=3, seed=21)
    values.update(kwargs)
    return tiny_request(model, prepared=True, **values)


def make(generator: DiffusersGenerator, req: GenerationRequest) -> list[np.ndarray]:
    return [np.asarray(image, dtype=np.int16) for image, _recipe in generator.generate(req, DirectContext())]


class EncoderRuns:
    """How many times the VAE's encoder ran, on the generator's model."""

    def __init__(self, generator: DiffusersGenerator) -> None:
        self.count = 0
        generator._model.text2img.vae.encoder.register_forward_hook(lambda *_: self.ran())

    def ran(self) -> None:
        self.count += 1

    def taken(self) -> int:
        count, self.count = self.count, 0
        return count


def test_img2img_encodes_the_canvas_once_for_a_batch_and_the_jobs_after_it(tiny_model_dir, tmp_path):
    generator = new_generator(tmp_path / "kept")
    make(generator, tiny_request(tiny_model_dir, prepared=True, prompt="loads the model"))
    runs = EncoderRuns(generator)

    batch = make(generator, request(tiny_model_dir, batch_count=3))
    assert runs.taken() == 1
    again = make(generator, request(tiny_model_dir, seed=23, prompt="another prompt, the same canvas"))
    assert runs.taken() == 0
    fresh = new_generator(tmp_path / "fresh")
    assert np.array_equal(batch[2], make(fresh, request(tiny_model_dir, seed=23))[0])  # same seed, never kept
    assert not np.array_equal(again[0], batch[2])  # (another prompt: another picture, from the same latents)

    other = CANVAS.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    make(generator, request(tiny_model_dir, init_image=other))
    assert runs.taken() == 1  # another canvas is encoded
    make(generator, request(tiny_model_dir))
    assert runs.taken() == 0  # and the first one is still kept
    assert "encode" not in vars(generator._model.text2img.vae)  # the VAE is left as it was


def test_an_inpainting_model_encodes_the_picture_and_its_masked_part_once_for_a_batch(tiny_inpaint_model_dir,
                                                                                        tmp_path):
    generator = new_generator(tmp_path)
    mask = Image.new("L", CANVAS.size, 0)
    mask.paste(255, (20, 20, 44, 44))
    options = InpaintOptions(masked_only=False, feather=4, fill="original")
    make(generator, tiny_request(tiny_inpaint_model_dir, prepared=True, prompt="loads the model"))
    runs = EncoderRuns(generator)
    make(generator, request(tiny_inpaint_model_dir, mask=mask, inpaint=options, batch_count=2))
    assert runs.taken() == 2  # the picture and its masked part, for the first picture only
    make(generator, request(tiny_inpaint_model_dir, mask=mask, inpaint=options, seed=40))
    assert runs.taken() == 0


@pytest.fixture
def vae(tiny_model_dir):  # noqa: ANN201 - the tiny pipeline's AutoencoderKL
    return load_model(tiny_model_dir, select_device("cpu")).text2img


def test_the_kept_encoding_samples_as_a_new_one_and_other_settings_encode_again(vae):
    pipe = vae
    calls = Counter()
    pipe.vae.encoder.register_forward_hook(lambda *_: calls.update(["run"]))
    picture = torch.rand(1, 3, 64, 64) * 2 - 1

    def sample(seed: int) -> torch.Tensor:
        with torch.inference_mode():
            return pipe.vae.encode(picture.clone()).latent_dist.sample(torch.Generator().manual_seed(seed))

    truth = [sample(seed) for seed in (1, 2)]
    with encodings_cached(pipe):
        kept = [sample(seed) for seed in (1, 2, 1)]
        assert calls["run"] == 3  # two outside, one inside
        assert torch.equal(kept[0], truth[0]) and torch.equal(kept[1], truth[1]) and torch.equal(kept[2], truth[0])
        with torch.inference_mode():
            pipe.vae.encode(picture).latent_dist.mean.fill_(9.0)  # what a pipeline does to its own copy
        assert torch.equal(sample(1), truth[0])

        pipe.vae.enable_tiling()  # tiled encoding gives other values: encoded again
        sample(1)
        pipe.vae.disable_tiling()
        pipe.vae.to(torch.bfloat16)  # so does another precision
        with torch.inference_mode():
            pipe.vae.encode(picture.to(torch.bfloat16))
        pipe.vae.to(torch.float32)
        assert calls["run"] == 5
        with torch.inference_mode():
            pipe.vae.encode(picture, return_dict=False)  # a plain tuple is passed through, never kept
        assert calls["run"] == 6
    assert "encode" not in vars(pipe.vae)


def test_encodings_kept_while_the_vae_s_weights_were_elsewhere_go_when_the_next_job_starts(vae):
    """Model CPU offload (Low VRAM) keeps the VAE's weights on the CPU outside its encode, so a job with it looks its
    canvas up under another key than a job without: what one kind of job kept, the other can never take, yet it holds
    the picture and its latents on the GPU (up to four per VAE). A job lets them go as it starts; what was kept with
    the weights where they are stays. The meta device stands in for the place the weights moved to."""
    import weakref

    from studio.engine import encoded_pictures

    pipe = vae
    with encodings_cached(pipe), torch.inference_mode():
        pipe.vae.encode(torch.rand(1, 3, 64, 64) * 2 - 1)
    (entry,) = encoded_pictures._kept[pipe.vae]
    held = weakref.ref(entry.picture)
    del entry
    with encodings_cached(pipe):  # the next job, the weights where they were
        assert held() is not None
    pipe.vae.to("meta")  # the weights moved (this job offloads, or the one before did)
    with encodings_cached(pipe):
        assert held() is None and encoded_pictures._kept[pipe.vae] == []


def test_a_vae_with_its_own_encode_is_kept_for_too_and_gets_it_back(vae):
    """The fast path's bfloat16 VAE copy (SDXL on a GPU) casts in an encode of its own."""
    from studio.engine.fast_layout import bf16_copy

    pipe = vae
    pipe.vae = twin = bf16_copy(pipe.vae)
    own = vars(twin)["encode"]
    calls = Counter()
    twin.encoder.register_forward_hook(lambda *_: calls.update(["run"]))
    picture = torch.rand(1, 3, 64, 64, dtype=torch.float16)
    with encodings_cached(pipe), torch.inference_mode():
        with encodings_cached(pipe):  # (inside a job's block: nothing wrapped twice)
            first = twin.encode(picture).latent_dist.parameters
        second = twin.encode(picture).latent_dist.parameters
    assert calls["run"] == 1 and first.dtype == torch.bfloat16 and torch.equal(first, second)
    assert vars(twin)["encode"] is own


def test_a_canvas_encoded_in_tiles_after_running_out_of_memory_is_kept_as_a_tiled_encoding(tiny_model_dir, tmp_path,
                                                                                          monkeypatch):
    """The job's retry in tiles (tiled_retry) is not kept as the untiled encoding: a later job with the memory to
    encode whole encodes whole, as a fresh engine would; one short of memory again takes the tiled one."""
    from diffusers import AutoencoderKL

    from studio.engine import batch_run
    from studio.engine.device import DeviceInfo
    from studio.engine.tiled_retry import vae_tiled_on_oom

    pretend_cuda = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")
    monkeypatch.setattr(batch_run, "vae_tiled_on_oom",
                        lambda pipe, _device, *rest, **named: vae_tiled_on_oom(pipe, pretend_cuda, *rest, **named))
    encode, short = AutoencoderKL.encode, [True]

    def short_of_memory(self, *args, **kwargs):  # noqa: ANN001, ANN202
        if short[0] and not self.use_tiling:
            raise torch.OutOfMemoryError("CUDA out of memory.")
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKL, "encode", short_of_memory)
    generator = new_generator(tmp_path)
    make(generator, tiny_request(tiny_model_dir, prepared=True, prompt="loads the model"))
    runs = EncoderRuns(generator)
    make(generator, request(tiny_model_dir))
    assert runs.taken() == 1  # in tiles
    short[0] = False
    make(generator, request(tiny_model_dir))
    assert runs.taken() == 1  # whole: the tiled encoding is not the whole one
    short[0] = True
    make(generator, request(tiny_model_dir, seed=5))
    assert runs.taken() == 0  # short again: the tiled one, kept
