"""A decode that runs out of GPU memory is retried in tiles on the same latents: the picture is not made again from
the start (ComfyUI does the same). On the CPU with a tiny pipeline and a pretend CUDA device; the GPU's own
out-of-memory is stood in for by a decode that raises it while untiled."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from studio.engine.device import DeviceInfo, select_device
from studio.engine.loader import load_model
from studio.engine.tiled_retry import TILED_NOTE, vae_tiled_on_oom

DECODED = TILED_NOTE.format(what="decoding", done="decoded")
PRETEND_CUDA = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")


@pytest.fixture
def pipe(tiny_model_dir):  # noqa: ANN001, ANN201
    return load_model(tiny_model_dir, select_device("cpu")).text2img


def picture(pipe, **kwargs) -> np.ndarray:  # noqa: ANN001
    image = pipe(prompt="a red fox", num_inference_steps=2, width=64, height=64, output_type="pil",
                 generator=torch.Generator("cpu").manual_seed(3), **kwargs).images[0]
    return np.asarray(image, np.int16)


def untiled_runs_out_of_memory(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """The VAE's ``method`` (decode, encode) runs out of GPU memory while untiled; the list counts those tries."""
    run, tries = getattr(AutoencoderKL, method), []

    def short_of_memory(self, *args, **kwargs):  # noqa: ANN001, ANN202
        if not self.use_tiling:
            tries.append(1)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.50 GiB")
        return run(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKL, method, short_of_memory)
    return tries


def test_a_decode_out_of_gpu_memory_is_made_again_in_tiles_not_the_whole_picture(pipe, monkeypatch):
    expected = picture(pipe)
    steps: list[int] = []
    untiled_tries = untiled_runs_out_of_memory(monkeypatch, "decode")
    notes: list[str] = []
    with vae_tiled_on_oom(pipe, PRETEND_CUDA, notes.append):
        first = picture(pipe, callback_on_step_end=lambda p, i, t, k: steps.append(i) or {})
        second = picture(pipe)
    assert steps == [0, 1]  # the steps ran once: only the decode was made again
    assert untiled_tries == [1, 1] and notes == [DECODED]  # said once a job
    assert np.abs(first - expected).max() <= 2 and np.array_equal(first, second)  # the tiny VAE fits one tile
    assert not pipe.vae.use_tiling and "decode" not in pipe.vae.__dict__  # as it was after the job


def test_a_canvas_picture_whose_encode_runs_out_of_gpu_memory_is_encoded_in_tiles(pipe, monkeypatch):
    untiled_tries = untiled_runs_out_of_memory(monkeypatch, "encode")
    canvas = torch.zeros(1, 3, 64, 64)
    notes: list[str] = []
    with vae_tiled_on_oom(pipe, PRETEND_CUDA, notes.append):
        latents = pipe.vae.encode(canvas).latent_dist.mean
    assert latents.shape == (1, 4, 8, 8) and untiled_tries == [1]
    assert notes == [TILED_NOTE.format(what="encoding", done="encoded")]
    assert not pipe.vae.use_tiling and "encode" not in pipe.vae.__dict__


def test_an_already_tiled_decode_or_another_failure_is_not_retried(pipe, monkeypatch):
    calls = []

    def failing(self, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(self.use_tiling)
        raise torch.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(AutoencoderKL, "decode", failing)
    pipe.vae.enable_tiling()  # the memory plan tiled it from the start (Low VRAM): nothing smaller to try
    with vae_tiled_on_oom(pipe, PRETEND_CUDA, print), pytest.raises(torch.OutOfMemoryError):
        picture(pipe)
    assert calls == [True]
    pipe.vae.disable_tiling()
    calls.clear()
    with vae_tiled_on_oom(pipe, PRETEND_CUDA, print), pytest.raises(torch.OutOfMemoryError):
        picture(pipe)  # out of memory in tiles too: the fast path's retry (or the job's message) takes it from here
    assert calls == [False, True] and not pipe.vae.use_tiling


def test_the_instance_s_own_decode_is_kept_and_the_cpu_is_left_alone(pipe):
    own = pipe.vae.decode
    pipe.vae.decode = own  # as the fast path's bfloat16 copy has its own (it casts what it is given)
    with vae_tiled_on_oom(pipe, PRETEND_CUDA, print):
        assert pipe.vae.decode is not own
    assert pipe.vae.__dict__["decode"] is own
    with vae_tiled_on_oom(pipe, select_device("cpu"), print):
        assert pipe.vae.decode is own  # no GPU memory to run out of


def test_before_a_tiled_decode_the_captured_steps_give_their_memory_back_and_the_next_job_captures_them_again(
        tiny_model_dir, tmp_path, monkeypatch):
    """The captured UNet steps' memory pool is no use to the decode (their temporaries are the graphs' own): with the
    latents made, the graphs go before the tiled try, the rest of the job runs its steps eagerly (captured again, they
    would take the memory back from the next decode), and the next job captures them again. The capture is stood in
    for on the CPU (ReplayOnCpu), as is the GPU's out-of-memory."""
    from studio_testing import DirectContext, ReplayOnCpu

    from studio.core.environment import GeneratorEnvironment
    from studio.core.requests import GenerationRequest
    from studio.engine import batch_run, fast_path, fast_path_state
    from studio.engine.diffusion import DiffusersGenerator

    monkeypatch.setattr(fast_path, "platform_reason", lambda kind, options: None)  # the fast path as on CUDA
    monkeypatch.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    monkeypatch.setattr(batch_run, "vae_tiled_on_oom",
                        lambda pipe, _device, *rest, **named: vae_tiled_on_oom(pipe, PRETEND_CUDA, *rest, **named))
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    req = GenerationRequest(model=str(tiny_model_dir), prompt="a red fox", width=64, height=64, steps=2, seed=5,
                            batch_count=2, scheduler="Euler")
    list(generator.generate(req, DirectContext()))  # the graphs of the model, captured and kept
    state = fast_path_state.state_for(generator._model.text2img.unet)
    captured, replayed = len(state.captures), state.replays
    assert captured == 1 and len(state.cache) == 1

    graphs_at_decode: list[tuple[bool, int]] = []  # (tiled, graphs kept) at each decode
    run = AutoencoderKL.decode

    def short_of_memory(self, *args, **kwargs):  # noqa: ANN001, ANN202
        graphs_at_decode.append((self.use_tiling, len(state.cache)))
        if not self.use_tiling:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.50 GiB")
        return run(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKL, "decode", short_of_memory)
    context = DirectContext()
    assert len(list(generator.generate(req, context))) == 2
    assert graphs_at_decode == [(False, 1), (True, 0), (False, 0), (True, 0)]
    assert context.notes == [DECODED]  # no fast-path failure: the steps were not made again
    assert len(state.captures) == captured and state.replays == replayed + req.steps  # the second picture: eager

    monkeypatch.setattr(AutoencoderKL, "decode", run)
    context = DirectContext()
    list(generator.generate(req, context))
    assert context.notes == [] and len(state.captures) == captured + 1 and len(state.cache) == 1
    assert state.replays == replayed + 3 * req.steps  # captured again, and replayed at every step


def test_a_canvas_encode_out_of_memory_keeps_the_captured_steps_for_the_job_s_pictures(tiny_model_dir, tmp_path,
                                                                                      monkeypatch):
    """An img2img (or inpaint) picture's encode comes before its steps: one that runs out of memory is retried in tiles
    without letting the captured steps go, which would run every step of the job eagerly. The capture is stood in for
    on the CPU (ReplayOnCpu), as is the GPU's out-of-memory."""
    from PIL import Image
    from studio_testing import DirectContext, ReplayOnCpu

    from studio.core.environment import GeneratorEnvironment
    from studio.core.requests import GenerationRequest
    from studio.engine import batch_run, fast_path, fast_path_state
    from studio.engine.diffusion import DiffusersGenerator

    monkeypatch.setattr(fast_path, "platform_reason", lambda kind, options: None)  # the fast path as on CUDA
    monkeypatch.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    monkeypatch.setattr(batch_run, "vae_tiled_on_oom",
                        lambda pipe, _device, *rest, **named: vae_tiled_on_oom(pipe, PRETEND_CUDA, *rest, **named))
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    canvas = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
    req = GenerationRequest(model=str(tiny_model_dir), prompt="a red fox", width=64, height=64, steps=4, seed=5,
                            batch_count=2, scheduler="Euler", init_image=canvas, strength=0.5)
    list(generator.generate(req, DirectContext()))  # the img2img step, captured and kept
    state = fast_path_state.state_for(generator._model.text2img.unet)
    captured, replayed = len(state.captures), state.replays
    assert len(state.cache) == 1 and replayed == 2 * 2  # two pictures of two steps (strength 0.5 of 4)

    untiled_tries = untiled_runs_out_of_memory(monkeypatch, "encode")
    context = DirectContext()
    other = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # (the first canvas's encoding is kept)
    assert len(list(generator.generate(replace(req, init_image=other), context))) == 2
    assert untiled_tries == [1, 1]  # each picture tries it whole (the second then takes the tiled one kept)
    assert context.notes == [TILED_NOTE.format(what="encoding", done="encoded")]
    assert len(state.captures) == captured and len(state.cache) == 1  # kept, and not captured again
    assert state.replays == replayed + 2 * 2  # both pictures replayed every step


def test_tiles_still_out_of_memory_are_tried_again_once_the_models_kept_for_switching_back_have_gone(pipe,
                                                                                                     monkeypatch):
    from studio.engine import tiled_retry

    events: list[str] = []
    kept = [True]  # a model kept for switching back, on the GPU
    tiles_fit = [False]

    def let_spare_go(device: DeviceInfo) -> bool:
        events.append("spare let go")
        went, kept[0] = kept[0], False
        tiles_fit[0] = tiles_fit[0] or went  # its memory was what the tiles needed
        return went

    monkeypatch.setattr(tiled_retry, "release_spare_memory", let_spare_go)
    run = AutoencoderKL.decode

    def short_of_memory(self, *args, **kwargs):  # noqa: ANN001, ANN202
        events.append("tiled" if self.use_tiling else "whole")
        if not (self.use_tiling and tiles_fit[0]):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        return run(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKL, "decode", short_of_memory)
    with vae_tiled_on_oom(pipe, PRETEND_CUDA, print, make_room=lambda: events.append("graphs let go")):
        assert pipe.vae.decode(torch.zeros(1, 4, 8, 8)).sample.shape == (1, 3, 64, 64)
        assert events == ["whole", "graphs let go", "tiled", "spare let go", "tiled"]
        events.clear()
        tiles_fit[0] = False  # another program took the memory meanwhile
        with pytest.raises(torch.OutOfMemoryError):  # nothing more to let go: the caller's retry, or its message
            pipe.vae.decode(torch.zeros(1, 4, 8, 8))
    assert events == ["whole", "graphs let go", "tiled", "spare let go"] and not pipe.vae.use_tiling


def test_the_pipeline_s_own_vae_given_back_mid_job_retries_in_tiles_too(tiny_model_dir, tmp_path, monkeypatch):
    """Where the fast path's bfloat16 copy stands in for the VAE (SDXL on a recent GPU) and the fast path is dropped
    mid-job (here its capture fails), the pipeline gets its own VAE back for the rest of the job: a decode of it that
    runs out of memory is retried in tiles as the copy's would have been, not the job's failure."""
    from studio_testing import DirectContext

    from studio.core.environment import GeneratorEnvironment
    from studio.core.requests import GenerationRequest
    from studio.engine import batch_run, fast_path, fast_path_choices
    from studio.engine.diffusion import DiffusersGenerator

    def failing_capture(step, cache):  # noqa: ANN001, ANN202
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(fast_path, "platform_reason", lambda kind, options: None)  # the fast path as on CUDA
    monkeypatch.setattr(fast_path, "capture_cuda_graph", failing_capture)
    monkeypatch.setattr(fast_path, "choose_dtypes", lambda *args: fast_path_choices.DtypeChoice(
        torch.float16, torch.bfloat16, "bfloat16 VAE, as for SDXL on an Ampere GPU"))
    monkeypatch.setattr(batch_run, "vae_tiled_on_oom",
                        lambda pipe, _device, *rest, **named: vae_tiled_on_oom(pipe, PRETEND_CUDA, *rest, **named))
    decoded_in: list[tuple[torch.dtype, bool]] = []  # (the decoding VAE's precision, tiled) at each decode
    run = AutoencoderKL.decode

    def short_of_memory(self, *args, **kwargs):  # noqa: ANN001, ANN202
        decoded_in.append((self.dtype, self.use_tiling))
        if not self.use_tiling:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.50 GiB")
        return run(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKL, "decode", short_of_memory)
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    req = GenerationRequest(model=str(tiny_model_dir), prompt="a red fox", width=64, height=64, steps=2, seed=5,
                            scheduler="Euler")
    context = DirectContext()
    (image, _recipe), = generator.generate(req, context)
    assert image.size == (64, 64)
    assert decoded_in == [(torch.float32, False), (torch.float32, True)]  # its own VAE, whole then in tiles
    assert context.notes[0].startswith("The fast path failed while capturing the UNet step")
    assert context.notes[1:] == [DECODED]
    vae = generator._model.text2img.vae
    assert vae.dtype == torch.float32 and not vae.use_tiling and "decode" not in vars(vae)
