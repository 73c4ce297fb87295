"""Studio's own post-processors through the job service: colour transfer with strength and mask, diffusion
restyle on the tiny model, chains in order with their metadata, and missing weights as a sentence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image
from studio_testing import collect_until_done, make_env, run, running_service, terminal
from tiny_loras import lora_state, save_lora, tiny_unet

from studio.core.color_transfer import lab_statistics
from studio.core.events import JobFailed, JobFinished
from studio.core.images import read_recipe
from studio.core.metadata import Recipe
from studio.core.environment import GeneratorEnvironment
from studio.core.requests import GenerationRequest, LoraChoice, PostProcessRequest, PostStep
from studio.services.outputs import OutputStore


def blue() -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(np.clip(rng.normal((70, 120, 210), 20, (64, 80, 3)), 0, 255).astype(np.uint8))


def orange() -> Image.Image:
    rng = np.random.default_rng(4)
    return Image.fromarray(np.clip(rng.normal((220, 130, 50), 15, (40, 40, 3)), 0, 255).astype(np.uint8))


def run_jobs(tmp_path, requests, outputs=None):  # noqa: ANN001, ANN201
    env = make_env(tmp_path)

    async def scenario():
        async with running_service(env, outputs=outputs) as service:
            stream = service.subscribe()
            ids = [service.submit(r) for r in requests]
            return await collect_until_done(stream, ids), ids

    return run(scenario())


def test_colour_transfer_with_strength_and_mask_as_a_canvas_job(tmp_path):
    mask = Image.new("L", (80, 64), 0)
    mask.paste(255, (0, 0, 40, 64))
    source_recipe = Recipe("a lake", "", 20, "Euler a", 7, 5, 80, 64, "tiny-sd")
    events, (full, masked) = run_jobs(tmp_path, [
        PostProcessRequest("color", blue(), {"style": orange()}, source_recipe),
        PostProcessRequest("color", blue(), {"style": orange()}, source_recipe, strength=0.5, mask=mask)])
    result = terminal(events, full).outputs[0]
    assert np.abs(lab_statistics(result.image)[0] - lab_statistics(orange())[0]).max() < 1.5
    (step,) = result.recipe.post
    assert step["processor"] == "color" and step["strength"] == 1.0 and not step["masked"]
    assert step["params"]["style"] == "<picture 40x40>"
    assert result.recipe.prompt == "a lake"  # the picture's recipe, extended by the step
    half = np.asarray(terminal(events, masked).outputs[0].image).astype(int)
    original = np.asarray(blue()).astype(int)
    assert np.array_equal(half[:, 40:], original[:, 40:])  # outside the mask: untouched
    assert np.abs(half[:, :40] - original[:, :40]).mean() > 10


def test_a_chain_runs_in_order_after_each_picture_and_is_recorded(tmp_path, tiny_model_dir):
    chain = (PostStep("histogram", {"style": orange()}), PostStep("color", {"style": blue()}, strength=0.25))
    request = GenerationRequest(model=str(tiny_model_dir), prompt="a chain", width=64, height=64, steps=2, seed=9,
                                post=chain)
    events, (job,) = run_jobs(tmp_path, [request], OutputStore(tmp_path / "outputs"))
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished), getattr(finished, "message", "")
    recipe = read_recipe(finished.outputs[0].path)
    assert [(s["processor"], s["strength"]) for s in recipe.post] == [("histogram", 1.0), ("color", 0.25)]
    assert Recipe.from_json(recipe.to_json()).post == recipe.post  # the round trip keeps the chain


def test_diffusion_restyle_runs_the_tiny_model_as_image_to_image(tmp_path, tiny_model_dir):
    picture = blue()
    params = {"model": str(tiny_model_dir), "prompt": "an oil painting", "steps": 2, "seed": 4, "denoise": 0.6}
    events, (job, again, missing) = run_jobs(tmp_path, [
        PostProcessRequest("restyle", picture, params), PostProcessRequest("restyle", picture, params),
        PostProcessRequest("restyle", picture, {**params, "model": "no-such-model"})])
    first, second = (terminal(events, j).outputs[0].image for j in (job, again))
    assert first.size == picture.size  # worked at 80x64 (multiples of 8), the picture's own size
    assert first.tobytes() == second.tobytes()  # same seed, same picture
    assert first.tobytes() != picture.tobytes()
    failed = terminal(events, missing)
    assert isinstance(failed, JobFailed)
    assert failed.message.startswith("No model file or folder named 'no-such-model' was found")


def test_a_restyle_step_waits_for_the_whole_batch_so_the_jobs_lora_and_scheduler_hold(tmp_path, tiny_model_dir):
    models = tmp_path / "models"
    save_lora(lora_state(tiny_unet(tiny_model_dir)), models / "loras" / "ink.safetensors")
    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models)
    # Strength 0: the step changes no pixel, so the pictures must be the ones the job makes without it.
    restyle = PostStep("restyle", {"model": str(tiny_model_dir), "prompt": "oil", "steps": 2, "seed": 3,
                                   "denoise": 0.5}, strength=0.0)
    job = GenerationRequest(model=str(tiny_model_dir), prompt="a fox", width=64, height=64, steps=2, seed=9,
                            batch_count=2, scheduler="DDIM", loras=(LoraChoice("ink", 1.0),))

    async def scenario():
        async with running_service(env) as service:
            stream = service.subscribe()
            ids = [service.submit(job), service.submit(replace(job, post=(restyle,)))]
            return await collect_until_done(stream, ids), ids

    events, (plain, chained) = run(scenario())
    plain_pictures, chained_pictures = (terminal(events, j).outputs for j in (plain, chained))
    assert [p.image.tobytes() for p in chained_pictures] == [p.image.tobytes() for p in plain_pictures]
    assert [[s["processor"] for s in p.recipe.post] for p in chained_pictures] == [["restyle"], ["restyle"]]


def test_style_transfer_jobs_run_on_the_engine_thread_and_missing_weights_are_a_sentence(tmp_path):
    from style_weights import write_adain, write_vgg19

    from studio.core.events import JobPreview, JobProgress

    picture, style = blue(), orange()
    no_weights = tmp_path / "empty"
    events, ids = run_jobs(no_weights, [PostProcessRequest("neural", picture, {"style": style, "iterations": 2}),
                                        PostProcessRequest("adain", picture, {"style": style})])
    messages = [terminal(events, j).message for j in ids]
    style_dir = no_weights / "data" / "models" / "style"
    assert messages[0].startswith(f"Neural style transfer needs VGG-19 ImageNet weights: put vgg19.safetensors "
                                  f"in {style_dir}")
    assert "studio convert-weights vgg19-dcbb9e9d.pth" in messages[0]
    assert "adain-vgg.safetensors and adain-decoder.safetensors" in messages[1]

    models = tmp_path / "ok" / "data" / "models"
    write_vgg19(models)
    write_adain(models)
    params = {"style": style, "iterations": 4, "resolution": 64, "seed": 3}
    events, ids = run_jobs(tmp_path / "ok", [PostProcessRequest("neural", picture, params),
                                             PostProcessRequest("adain", picture, {"style": style, "resolution": 64},
                                                                strength=0.5)])  # the default 768 takes seconds
    neural, adain = (terminal(events, j) for j in ids)
    assert isinstance(neural, JobFinished) and isinstance(adain, JobFinished), [getattr(e, "message", "") for e in
                                                                                 (neural, adain)]
    assert neural.outputs[0].image.size == picture.size and adain.outputs[0].image.size == picture.size
    progress = [e for e in events if isinstance(e, JobProgress) and e.job_id == ids[0]]
    assert [p.step for p in progress] == [1, 2, 3, 4] and {p.total for p in progress} == {4}
    assert any(isinstance(e, JobPreview) and e.job_id == ids[0] for e in events)
    assert neural.outputs[0].recipe.post[0]["params"]["iterations"] == 4


def test_restyle_with_a_reference_picture_through_ip_adapter(tmp_path, tiny_model_dir):
    from tiny_models import build_tiny_ip_adapter

    picture, reference = blue(), orange()
    params = {"model": str(tiny_model_dir), "prompt": "an oil painting", "steps": 2, "seed": 4, "denoise": 0.8}
    no_adapter = run_jobs(tmp_path / "a", [PostProcessRequest("restyle", picture, {**params, "reference": reference})])
    events, (job,) = no_adapter
    message = terminal(events, job).message
    assert message.startswith("A reference picture needs IP-Adapter weights for SD 1.x models: put "
                              "ip-adapter_sd15.safetensors and the image_encoder/ folder")

    build_tiny_ip_adapter(tmp_path / "b" / "data" / "models", tiny_model_dir)
    events, ids = run_jobs(tmp_path / "b", [
        PostProcessRequest("restyle", picture, params),
        PostProcessRequest("restyle", picture, {**params, "reference": reference, "reference_strength": 1.0}),
        PostProcessRequest("restyle", picture, params)])  # the adapter is off again afterwards
    plain, steered, again = (terminal(events, j) for j in ids)
    assert all(isinstance(e, JobFinished) for e in (plain, steered, again)), [getattr(e, "message", "") for e in
                                                                               (plain, steered, again)]
    assert steered.outputs[0].image.tobytes() != plain.outputs[0].image.tobytes()
    assert again.outputs[0].image.tobytes() == plain.outputs[0].image.tobytes()


def test_upscaling_keeps_strength_and_the_mask_at_the_new_size(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    from studio.engine import upscale

    # spandrel's part (reading the architecture from the weights) stood in for by a 2x nearest upsampler.
    folder = tmp_path / "data" / "models" / "upscalers"
    folder.mkdir(parents=True)
    save_file({"weight": torch.zeros(1)}, str(folder / "x2.safetensors"))
    monkeypatch.setattr(upscale, "load_upscaler", lambda path, device: upscale.Upscaler(
        torch.nn.Upsample(scale_factor=2, mode="nearest"), path.name, 2, 3, 1, 0, True, torch.float32))
    picture, mask = blue(), Image.new("L", (80, 64), 0)
    mask.paste(255, (0, 0, 40, 64))
    events, ids = run_jobs(tmp_path, [PostProcessRequest("upscale", picture, {"tile": 64}),
                                      PostProcessRequest("upscale", picture, {}, strength=0.0),
                                      PostProcessRequest("upscale", picture, {}, mask=mask)])
    full, none, masked = (terminal(events, j) for j in ids)
    assert all(isinstance(e, JobFinished) for e in (full, none, masked)), [getattr(e, "message", "") for e in
                                                                           (full, none, masked)]
    upscaled = picture.resize((160, 128), Image.Resampling.NEAREST)
    enlarged = np.asarray(picture.resize((160, 128), Image.Resampling.LANCZOS))
    assert full.outputs[0].image.tobytes() == upscaled.tobytes()
    assert np.array_equal(np.asarray(none.outputs[0].image), enlarged)  # strength 0: the original, enlarged
    result = np.asarray(masked.outputs[0].image)
    big_mask = np.asarray(mask.resize((160, 128), Image.Resampling.BILINEAR))
    assert np.array_equal(result[big_mask == 0], enlarged[big_mask == 0])  # outside the mask: the original
    assert np.array_equal(result[:, :76], np.asarray(upscaled)[:, :76])  # well inside it: the upscaler's
    (step,) = masked.outputs[0].recipe.post
    assert (step["processor"], step["masked"], masked.outputs[0].recipe.width) == ("upscale", True, 160)


def test_a_picture_that_cannot_be_saved_is_handed_on_unsaved_with_a_note(tmp_path, tiny_model_dir):
    blocker = tmp_path / "outputs"
    blocker.write_text("a file where the outputs folder should be")
    request = GenerationRequest(model=str(tiny_model_dir), prompt="a fox", width=64, height=64, steps=2, seed=3)
    events, (job,) = run_jobs(tmp_path, [request], OutputStore(blocker))
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished), getattr(finished, "message", "")
    (output,) = finished.outputs
    assert output.path is None and output.image.size == (64, 64)  # the picture itself is not lost
    assert finished.warnings[0].startswith("The image could not be saved in ")  # a problem, said first
    assert finished.warnings[0].endswith("The picture is only on the canvas: keep it with Save Canvas As… in the "
                                         "File menu.")


def test_a_transparent_reference_gives_only_the_colours_that_show(tmp_path):
    """A reference file half red, half transparent (hidden black): its hidden pixels darkened the result, and a
    fully transparent one was taken as black instead of refused."""
    half = np.zeros((32, 32, 4), np.uint8)
    half[:, :16] = (220, 30, 30, 255)
    Image.fromarray(half, "RGBA").save(tmp_path / "half.png")
    Image.fromarray(np.zeros((32, 32, 4), np.uint8), "RGBA").save(tmp_path / "clear.png")
    requests = [PostProcessRequest(method, blue(), {"style": str(tmp_path / name)}, None)
                for method in ("color", "histogram") for name in ("half.png", "clear.png")]
    events, ids = run_jobs(tmp_path, requests)
    for job in ids[0::2]:  # the visible red alone
        result = np.asarray(terminal(events, job).outputs[0].image.convert("RGB")).reshape(-1, 3).mean(0)
        assert result[0] > 180 and result[1:].max() < 60, result
    for job in ids[1::2]:
        failed = terminal(events, job)
        assert isinstance(failed, JobFailed) and "fully transparent" in failed.message
