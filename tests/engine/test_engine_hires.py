"""Hires fix end to end on the tiny model: two passes per picture through the real service, loader and pipelines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from studio_testing import collect_until_done, make_env, of_job, run, running_service, terminal, tiny_request

import studio.engine.diffusion as diffusion
from studio.core.events import EngineStatus, JobCancelled, JobFailed, JobFinished, JobProgress
from studio.core.hires import HiresFix
from studio.core.images import read_recipe
from studio.services.outputs import OutputStore


def _jobs(tiny_model_dir: Path, tmp_path: Path, *requests, outputs: OutputStore | None = None,
          cancel_at: int | None = None):
    async def scenario():
        async with running_service(make_env(tmp_path), outputs=outputs) as service:
            stream = service.subscribe()
            ids = [service.submit(r) for r in requests]

            def cancel_late(event: object) -> None:
                if cancel_at is not None and isinstance(event, JobProgress) and event.step >= cancel_at:
                    service.cancel(ids[0])

            return await collect_until_done(stream, ids, on_event=cancel_late), ids

    return run(scenario())


def test_each_picture_is_made_small_enlarged_and_redrawn(tiny_model_dir, tmp_path, monkeypatch):
    passes = []
    original = diffusion.DiffusersGenerator._generate

    def spy(self, request, context, start=None):  # noqa: ANN001, ANN202
        passes.append(request)
        return original(self, request, context, start)

    monkeypatch.setattr(diffusion.DiffusersGenerator, "_generate", spy)
    hires = HiresFix(scale=2.0, steps=4, strength=0.5)
    outputs = OutputStore(tmp_path / "outputs")
    events, (job,) = _jobs(tiny_model_dir, tmp_path, tiny_request(
        tiny_model_dir, width=64, height=80, steps=3, seed=7, batch_count=2, hires=hires), outputs=outputs)
    end = terminal(events, job)
    assert isinstance(end, JobFinished), end
    assert [out.image.size for out in end.outputs] == [(128, 160), (128, 160)]
    # Two passes per picture: the first at its size from noise, the second image to image at twice it.
    assert [(p.width, p.height, p.init_image is not None, p.seed) for p in passes] == [
        (64, 80, False, 7), (128, 160, True, 7), (64, 80, False, 8), (128, 160, True, 8)]
    second = passes[1]
    assert (second.steps, second.strength, second.hires, second.batch_count) == (4, 0.5, None, 1)
    assert second.init_image.size == (128, 160)
    # The recipe is written as A1111 writes a hires picture: the first pass's size and steps, then the hires fix.
    recipe = end.outputs[0].recipe
    assert (recipe.width, recipe.height, recipe.steps, recipe.seed, recipe.strength) == (64, 80, 3, 7, None)
    assert recipe.hires == hires
    saved = read_recipe(end.outputs[0].path)
    assert saved.hires == hires
    assert "Size: 64x80" in saved.to_parameters() and "Hires upscale: 2, Hires steps: 4" in saved.to_parameters()
    assert "Denoising strength: 0.5" in saved.to_parameters()
    # One count of steps over both passes: 3 + int(4 x 0.5) for each picture, never going back.
    progress = [(e.image_index, e.step, e.total) for e in of_job(events, job, JobProgress)]
    assert {total for _, _, total in progress} == {5}
    for index in (0, 1):
        steps = [step for i, step, _ in progress if i == index]
        assert steps == sorted(steps) and steps[-1] == 5
    # The status bar says which pass runs: never a stale "Enlarging…" through the redraw and the next picture.
    said = [e.message for e in events if isinstance(e, EngineStatus) and e.message]
    assert said.count("Making the picture at 64x80…") == 2 and said.count("Redrawing at 128x160…") == 2
    assert said.index("Enlarging to 128x160…") < said.index("Redrawing at 128x160…")


def test_the_same_seed_makes_the_same_hires_picture(tiny_model_dir, tmp_path):
    ask = tiny_request(tiny_model_dir, seed=3, hires=HiresFix(scale=1.5, strength=0.6))
    events, ids = _jobs(tiny_model_dir, tmp_path, ask, ask)
    first, again = (np.asarray(terminal(events, i).outputs[0].image) for i in ids)
    assert first.shape == (96, 96, 3)
    assert np.array_equal(first, again)


def test_a_missing_upscaler_fails_the_job_with_a_sentence(tiny_model_dir, tmp_path):
    events, (job,) = _jobs(tiny_model_dir, tmp_path, tiny_request(
        tiny_model_dir, hires=HiresFix(upscaler="4x-UltraSharp")))
    end = terminal(events, job)
    assert isinstance(end, JobFailed)
    assert "No upscaler called '4x-UltraSharp'" in end.message
    assert not of_job(events, job, JobProgress)  # said before the first pass, not after it


def test_an_upscaler_model_enlarges_before_the_second_pass(tiny_model_dir, tmp_path, monkeypatch):
    seen = []

    def upscale(self, image, params, context):  # noqa: ANN001, ANN202 - a stand-in for spandrel's network
        seen.append((image.size, dict(params)))
        return image.resize((image.width * 4, image.height * 4), Image.Resampling.NEAREST)

    monkeypatch.setattr(diffusion.Upscale, "process", upscale)
    monkeypatch.setattr(diffusion, "import_spandrel", lambda: None)
    folder = make_env(tmp_path).models_root / "upscalers"
    folder.mkdir(parents=True)
    (folder / "4x-UltraSharp.safetensors").write_bytes(b"")  # found by name; the stand-in above never reads it
    events, (job,) = _jobs(tiny_model_dir, tmp_path, tiny_request(
        tiny_model_dir, hires=HiresFix(scale=2.0, upscaler="4x-UltraSharp")))
    end = terminal(events, job)
    assert isinstance(end, JobFinished), end
    assert seen == [((64, 64), {"model": "4x-UltraSharp", "outscale": 2.0})]
    assert end.outputs[0].image.size == (128, 128)  # the upscaler's 4x taken down to the asked 2x


def test_a_cancel_in_the_second_pass_stops_the_job(tiny_model_dir, tmp_path):
    ask = tiny_request(tiny_model_dir, steps=2, hires=HiresFix(scale=2.0, steps=200, strength=1.0))
    events, (job,) = _jobs(tiny_model_dir, tmp_path, ask, cancel_at=4)
    assert isinstance(terminal(events, job), JobCancelled)
    assert max(e.step for e in of_job(events, job, JobProgress)) < 202


def test_an_inpainting_model_makes_hires_pictures_too(tiny_inpaint_model_dir, tmp_path):
    events, (job,) = _jobs(tiny_inpaint_model_dir, tmp_path, tiny_request(
        tiny_inpaint_model_dir, hires=HiresFix(scale=1.5, strength=0.5)))
    end = terminal(events, job)
    assert isinstance(end, JobFinished), end
    assert end.outputs[0].image.size == (96, 96)
    notes = end.notes
    assert len(notes) == len(set(notes))  # the second pass does not say again what the first said


def test_a_latent_upscaler_enlarges_the_first_pictures_latents(tiny_model_dir, tmp_path, monkeypatch):
    starts = []
    original = diffusion.DiffusersGenerator._start_from_latents

    def spy(run, request, model, start, context):  # noqa: ANN001, ANN202
        original(run, request, model, start, context)
        starts.append(run.per_seed(0)["image"])

    monkeypatch.setattr(diffusion.DiffusersGenerator, "_start_from_latents", staticmethod(spy))
    latent = tiny_request(tiny_model_dir, seed=4, hires=HiresFix(scale=2.0, strength=0.6, upscaler="Latent"))
    lanczos = tiny_request(tiny_model_dir, seed=4, hires=HiresFix(scale=2.0, strength=0.6))
    events, ids = _jobs(tiny_model_dir, tmp_path, latent, latent, lanczos)
    ends = [terminal(events, i) for i in ids]
    assert all(isinstance(end, JobFinished) for end in ends), ends
    pictures = [np.asarray(end.outputs[0].image) for end in ends]
    assert pictures[0].shape == (128, 128, 3)
    assert np.array_equal(pictures[0], pictures[1])  # the same seed, the same picture
    assert not np.array_equal(pictures[0], pictures[2])  # the latents, not the Lanczos picture, were redrawn
    # The pipeline got 4-channel latents at the second size, 128x128 pixels.
    assert [tuple(s.shape) for s in starts] == [(1, 4, 16, 16)] * 2
    assert ends[0].outputs[0].recipe.hires_upscaler == "Latent"


def test_an_inpainting_model_redraws_the_lanczos_picture_for_a_latent_upscaler(tiny_inpaint_model_dir, tmp_path):
    events, (job,) = _jobs(tiny_inpaint_model_dir, tmp_path, tiny_request(
        tiny_inpaint_model_dir, hires=HiresFix(scale=1.5, upscaler="Latent (nearest-exact)")))
    end = terminal(events, job)
    assert isinstance(end, JobFinished), end
    assert any("instead of Latent (nearest-exact)" in note for note in end.notes)


def test_a_chain_step_that_changes_the_size_keeps_the_generations_size_in_the_recipe(tiny_model_dir, tmp_path,
                                                                                     monkeypatch):
    """Run again, the chain makes the same size again: the recipe's size is the generation's (a hires fix's first
    pass), as A1111 keeps it through its upscalers."""
    import torch
    from safetensors.torch import save_file

    from studio.core.requests import PostStep
    from studio.engine import upscale

    folder = make_env(tmp_path).models_root / "upscalers"
    folder.mkdir(parents=True)
    save_file({"weight": torch.zeros(1)}, str(folder / "x2.safetensors"))
    monkeypatch.setattr(upscale, "load_upscaler", lambda path, device: upscale.Upscaler(
        torch.nn.Upsample(scale_factor=2, mode="nearest"), path.name, 2, 3, 1, 0, True, torch.float32))
    chain = (PostStep("upscale", {"model": "x2"}),)
    hires = tiny_request(tiny_model_dir, hires=HiresFix(scale=2.0), post=chain)
    plain = tiny_request(tiny_model_dir, post=chain)
    events, ids = _jobs(tiny_model_dir, tmp_path, hires, plain)
    (made_hires,), (made_plain,) = (terminal(events, i).outputs for i in ids)
    assert made_hires.image.size == (256, 256) and made_plain.image.size == (128, 128)
    assert (made_hires.recipe.width, made_hires.recipe.height, made_hires.recipe.hires_scale) == (64, 64, 2.0)
    assert (made_plain.recipe.width, made_plain.recipe.height) == (64, 64)
    assert "Size: 64x64" in made_hires.recipe.to_parameters()


def test_progress_never_goes_back_with_a_sampler_that_calls_the_model_twice_a_step(tiny_model_dir, tmp_path):
    ask = tiny_request(tiny_model_dir, steps=4, scheduler="Heun", hires=HiresFix(scale=1.5, steps=4, strength=0.5))
    events, (job,) = _jobs(tiny_model_dir, tmp_path, ask)
    assert isinstance(terminal(events, job), JobFinished)
    progress = [(e.step, e.total) for e in of_job(events, job, JobProgress)]
    steps = [step for step, _ in progress]
    assert steps == sorted(steps) and steps[-1] == 6 and {total for _, total in progress} == {6}
    assert steps.count(4) <= 2  # the first pass ends at its share (4 of 6), not at the whole bar


def test_a_hires_fix_and_an_upscale_step_share_one_upscaler(tmp_path):
    """The hires fix loaded a second copy of the same network beside the Upscale filter's."""
    from studio.plugin_host.registry import builtin_registry

    registry, env = builtin_registry(), make_env(tmp_path)
    generator = registry.instance("generator", "diffusers", env)
    assert generator._upscaler() is registry.instance("postprocessor", "upscale", env)


def test_a_latent_start_encodes_in_the_precision_its_pipeline_would(tiny_model_dir, tmp_path):
    """A latent upscaler's picture is encoded as the model's own image-to-image pipeline encodes one: SDXL's float16
    VAE overflows, so its pipelines upcast it to float32 (its config's force_upcast); SD 1.5's encode in float16,
    though its VAE's config says force_upcast too (diffusers' default, which SD's pipelines ignore). Upcast, an SD 1.5
    VAE took float32's weights and activations (twice the memory) for nothing. Models loaded in float16 on the CPU."""
    import torch
    from tiny_models import build_tiny_sdxl

    from studio.engine.device import DeviceInfo
    from studio.engine.hires_pass import LatentStart
    from studio.engine.loader import load_model

    half = DeviceInfo("cpu", torch.device("cpu"), torch.float16, "CPU in float16")
    picture = Image.new("RGB", (64, 64), (200, 90, 30))
    for folder in (tiny_model_dir, build_tiny_sdxl(tmp_path / "tiny-xl")):
        pipe = load_model(folder, half, place=False).pipeline(img2img=True)
        vae, encode, seen = pipe.vae, pipe.vae.encode, []
        assert vae.dtype == torch.float16 and vae.config.force_upcast

        def spy(pixels, *args, _encode=encode, _seen=seen, _vae=vae, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            _seen.append((pixels.dtype, _vae.dtype))
            return _encode(pixels, *args, **kwargs)

        vae.encode = spy
        pixels = pipe.image_processor.preprocess(picture).to(torch.float16)
        with torch.inference_mode():
            pipe.prepare_latents(pixels, torch.tensor([500]), 1, 1, torch.float16, torch.device("cpu"),
                                 torch.Generator().manual_seed(0))  # how the pipeline itself encodes a picture
            latents = LatentStart(picture, "Latent", "bilinear", False).latents(pipe, (128, 128))
        assert len(seen) == 2 and seen[1] == seen[0], (type(pipe).__name__, seen)
        upcast = "XL" in type(pipe).__name__
        assert seen[1] == ((torch.float32,) * 2 if upcast else (torch.float16,) * 2), (type(pipe).__name__, seen)
        assert vae.dtype == torch.float16 and latents.dtype == torch.float16 and latents.shape == (1, 4, 16, 16)
