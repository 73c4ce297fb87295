"""Inpainting and outpainting through the real engine (JobService + loader + diffusers) on tiny models.

Both kinds of model: an ordinary one (4-channel UNet, inpainting through diffusers' inpaint pipeline
with latent blending) and an inpainting model (9-channel UNet: latents + mask + masked picture).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from studio_testing import collect_until_done, make_env, of_job, run, running_service, terminal

from studio.core.events import JobCancelled, JobFinished, JobPreview, JobProgress, JobStarted
from studio.core.inpaint import InpaintOptions, extend_canvas
from studio.core.mask import bounding_box, feather
from studio.core.requests import SCHEDULER_NAMES, GenerationRequest
from studio.engine.device import select_device
from studio.engine.loader import LoadedModel, load_model

SLOW_STEPS = 400  # long enough that a cancel clearly lands mid-run on any machine
WIDTH, HEIGHT = 150, 110  # not multiples of 8, on purpose
SQUARE = (118, 6, 138, 26)  # a small masked square near the top-right corner
FEATHER = 6
OUTPAINT = (0, 0, 40, 16)  # left, top, right, bottom


def picture(width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def square_mask(width: int = WIDTH, height: int = HEIGHT, box: tuple[int, int, int, int] = SQUARE) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box)
    return mask


def request(model: Path, **kwargs) -> GenerationRequest:  # noqa: ANN003
    values = dict(model=str(model), prompt="a red fox, snow", negative_prompt="blurry", steps=3, cfg_scale=5.0,
                  seed=11, scheduler="Euler")
    values.update(kwargs)
    return GenerationRequest(**values)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module", params=["4-channel", "9-channel"])
def model_dir(request) -> Path:  # noqa: ANN001
    return request.getfixturevalue("tiny_model_dir" if request.param == "4-channel" else "tiny_inpaint_model_dir")


@pytest.fixture(scope="module")
def jobs(model_dir, tmp_path_factory) -> SimpleNamespace:  # noqa: ANN001
    """One service per model runs every kind of job once; the tests below look at the results."""
    extended, outpaint_mask = extend_canvas(picture(), None, *OUTPAINT)
    requests = {
        "masked": request(model_dir, init_image=picture(), mask=square_mask(), strength=0.8, steps=4,
                          inpaint=InpaintOptions(masked_only=True, padding=16, feather=FEATHER, fill="original")),
        "whole": request(model_dir, init_image=picture(), mask=square_mask(), strength=1.0,
                         inpaint=InpaintOptions(masked_only=False, feather=FEATHER, fill="noise")),
        "outpaint": request(model_dir, init_image=extended, mask=Image.fromarray(outpaint_mask, "L"), strength=0.9,
                            inpaint=InpaintOptions(masked_only=True, feather=FEATHER, fill="blurred")),
        "txt2img": request(model_dir, width=64, height=96),
        "img2img": request(model_dir, width=96, height=64, init_image=picture(), strength=0.5, steps=4),
    }

    async def scenario():
        async with running_service(make_env(tmp_path_factory.mktemp("engine"))) as service:
            stream = service.subscribe()
            ids = {name: service.submit(req) for name, req in requests.items()}
            return await collect_until_done(stream, ids.values()), ids

    events, ids = run(scenario())
    return SimpleNamespace(events=events, ids=ids, requests=requests, extended=extended, outpaint_mask=outpaint_mask)


def finished(jobs: SimpleNamespace, name: str) -> JobFinished:
    end = terminal(jobs.events, jobs.ids[name])
    assert isinstance(end, JobFinished), end
    assert len(end.outputs) == 1
    return end


@pytest.mark.parametrize("name", ["masked", "whole"])
def test_pixels_outside_the_feathered_mask_are_the_picture_bit_for_bit(jobs, name):
    out = finished(jobs, name).outputs[0].image
    assert out.size == (WIDTH, HEIGHT) and out.mode == "RGB"
    feathered = feather(np.asarray(square_mask()), FEATHER)
    result, original = pixels(out), pixels(picture())
    keep = feathered == 0
    assert np.array_equal(result[keep], original[keep])
    # Everything that changed lies within the feathered mask's box: the crop went back where it came from.
    changed = (result != original).any(axis=2)
    assert bounding_box(changed.astype(np.uint8)) is not None
    x0, y0, x1, y1 = bounding_box(changed.astype(np.uint8))
    fx0, fy0, fx1, fy1 = bounding_box(feathered)
    assert fx0 <= x0 and fy0 <= y0 and x1 <= fx1 and y1 <= fy1
    # ... and the masked square really was regenerated.
    inside = feathered >= 192
    assert inside.sum() > 150
    assert changed[inside].mean() > 0.95
    assert np.abs(result - original)[inside].mean() > 10


def test_outpainting_keeps_the_old_picture_and_fills_the_new_border(jobs):
    out = finished(jobs, "outpaint").outputs[0].image
    left, top, right, bottom = OUTPAINT
    assert out.size == (WIDTH + left + right, HEIGHT + top + bottom)
    result, start = pixels(out), pixels(jobs.extended)
    feathered = feather(jobs.outpaint_mask, FEATHER)
    keep = feathered == 0
    assert keep[top:top + HEIGHT, left:left + WIDTH].mean() > 0.5  # most of the old picture is outside the mask
    assert np.array_equal(result[keep], start[keep])
    assert np.array_equal(start[top:top + HEIGHT, left:left + WIDTH], pixels(picture()))
    # The new area was painted over (it started as the old edge stretched outward).
    new_area = feathered == 255
    assert new_area[:, WIDTH + left:].all()
    assert np.abs(result - start)[new_area].mean() > 10


def test_the_recipe_records_the_inpaint_settings_and_the_picture_size(jobs):
    masked = finished(jobs, "masked").outputs[0].recipe
    assert (masked.width, masked.height) == (WIDTH, HEIGHT)
    assert (masked.strength, masked.mask_blur, masked.inpaint_area, masked.masked_padding, masked.masked_content) \
        == (0.8, FEATHER, "Only masked", 16, "original")
    assert masked.seed == 11 and masked.steps == 4
    whole = finished(jobs, "whole").outputs[0].recipe
    assert (whole.strength, whole.mask_blur, whole.inpaint_area, whole.masked_padding, whole.masked_content) \
        == (1.0, FEATHER, "Whole picture", None, "noise")
    outpaint = finished(jobs, "outpaint").outputs[0].recipe
    assert (outpaint.width, outpaint.height) == (WIDTH + 40, HEIGHT + 16)
    assert outpaint.masked_content == "blurred"
    # The A1111 text carries them too, and reads back the same.
    text = masked.to_parameters()
    assert "Mask blur: 6" in text and "Inpaint area: Only masked" in text and "Masked area padding: 16" in text
    assert type(masked).from_parameters(text).inpaint_area == "Only masked"


@pytest.mark.parametrize("name", ["masked", "whole", "outpaint"])
def test_progress_and_previews_run_as_for_txt2img_and_previews_cover_the_working_box(jobs, name):
    job = jobs.ids[name]
    req = jobs.requests[name]
    progress = of_job(jobs.events, job, JobProgress)
    strength_steps = int(req.steps * req.strength)
    assert [p.step for p in progress] == list(range(1, strength_steps + 1))
    assert {p.total for p in progress} == {strength_steps}
    previews = of_job(jobs.events, job, JobPreview)
    # How many steps get one depends on timing (the throttle, tested with a fake clock); the last always does.
    assert {p.step for p in previews} <= {p.step for p in progress} and strength_steps in {p.step for p in previews}
    width, height = req.init_image.size
    for preview in previews:
        assert preview.image.mode == "RGBA"  # transparent where the picture will not change
        x0, y0, x1, y1 = preview.box
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert preview.image.width / preview.image.height == pytest.approx((x1 - x0) / (y1 - y0), rel=0.15)
        if name == "whole":
            assert preview.box == (0, 0, width, height)
        else:
            mask_box = bounding_box(np.asarray(req.mask))
            assert x0 <= mask_box[0] and y0 <= mask_box[1] and mask_box[2] <= x1 and mask_box[3] <= y1
            assert (x1 - x0) * (y1 - y0) < width * height or name == "outpaint"
    kinds = [type(e) for e in of_job(jobs.events, job)]
    assert kinds.index(JobStarted) < kinds.index(JobProgress) and kinds[-1] is JobFinished


def test_without_a_mask_txt2img_and_img2img_work_with_either_kind_of_model(jobs):
    """A 9-channel model runs them as AUTOMATIC1111 does: a full mask over a grey (txt2img) or the init picture."""
    txt = finished(jobs, "txt2img").outputs[0]
    assert txt.image.size == (64, 96)
    assert txt.recipe.strength is None and txt.recipe.inpaint_area is None and txt.recipe.mask_blur is None
    img = finished(jobs, "img2img").outputs[0]
    assert img.image.size == (96, 64)
    assert img.recipe.strength == 0.5 and img.recipe.inpaint_area is None
    assert of_job(jobs.events, jobs.ids["img2img"], JobProgress)[-1].total == 2  # 4 steps at strength 0.5
    for name in ("txt2img", "img2img"):
        previews = of_job(jobs.events, jobs.ids[name], JobPreview)
        assert previews and all(p.box is None and p.image.mode == "RGB" for p in previews)


def test_loading_an_inpainting_model_folder(tiny_model_dir, tiny_inpaint_model_dir):
    cpu = select_device("cpu")
    ordinary, inpainting = load_model(tiny_model_dir, cpu), load_model(tiny_inpaint_model_dir, cpu)
    assert (ordinary.unet_channels, ordinary.is_inpainting) == (4, False)
    assert (inpainting.unet_channels, inpainting.is_inpainting) == (9, True)
    assert ordinary.native_size == inpainting.native_size == 32 * 8  # sample_size x VAE scale (512 for SD 1.5)
    for model in (ordinary, inpainting):
        pipe = model.pipeline(inpaint=True)
        assert type(pipe).__name__ == "StableDiffusionInpaintPipeline"
        assert pipe.unet is model.text2img.unet and pipe.vae is model.text2img.vae  # shared, not reloaded
        assert model.pipeline(inpaint=True) is pipe
        assert "latents" in pipe._callback_tensor_inputs


@pytest.mark.parametrize("kind", ["4-channel", "9-channel"])
def test_cancel_stops_a_running_inpaint_within_a_step_and_the_next_job_runs(kind, request, tmp_path):
    model = request.getfixturevalue("tiny_model_dir" if kind == "4-channel" else "tiny_inpaint_model_dir")
    timings: dict[str, float] = {}
    inpaint = dict(init_image=picture(64, 64), mask=square_mask(64, 64, (8, 8, 24, 24)), strength=1.0)

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            slow = service.submit(request_(model, steps=SLOW_STEPS, **inpaint))
            after = service.submit(request_(model, **inpaint))

            def on_event(event: object) -> None:
                if isinstance(event, JobProgress) and event.job_id == slow and "cancel" not in timings:
                    timings["cancel"] = time.perf_counter()
                    assert service.cancel(slow)
                if isinstance(event, JobCancelled) and event.job_id == slow:
                    timings["cancelled"] = time.perf_counter()

            return await collect_until_done(stream, [slow, after], on_event=on_event), slow, after

    events, slow, after = run(scenario())
    end = terminal(events, slow)
    assert isinstance(end, JobCancelled) and end.was_running and end.outputs == ()
    assert timings["cancelled"] - timings["cancel"] < 5.0
    assert len(of_job(events, slow, JobProgress)) < SLOW_STEPS // 4
    assert isinstance(terminal(events, after), JobFinished)


request_ = request  # the cancel test's ``request`` parameter is pytest's


def test_every_scheduler_inpaints_with_an_ordinary_model(tiny_model_dir, tmp_path):
    """The 4-channel path re-noises the kept latents at every step: each scheduler must support that."""
    inpaint = dict(init_image=picture(64, 64), mask=square_mask(64, 64, (8, 8, 40, 40)),
                   inpaint=InpaintOptions(masked_only=False, feather=0))

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            jobs = {service.submit(request(tiny_model_dir, scheduler=name, strength=strength, **inpaint)): name
                    for name in SCHEDULER_NAMES for strength in (0.7, 1.0)}
            return await collect_until_done(stream, jobs), jobs

    events, jobs = run(scenario())
    keep = np.asarray(square_mask(64, 64, (8, 8, 40, 40))) == 0
    for job, name in jobs.items():
        end = terminal(events, job)
        assert isinstance(end, JobFinished), (name, end)
        assert np.array_equal(pixels(end.outputs[0].image)[keep], pixels(picture(64, 64))[keep]), name


def test_too_few_steps_for_the_strength_are_refused_with_one_sentence_before_the_job(tiny_model_dir, tmp_path):
    from studio.core.errors import InvalidRequest

    async def scenario() -> None:
        async with running_service(make_env(tmp_path)) as service:
            service.submit(request(tiny_model_dir, steps=2, strength=0.3, init_image=picture(), mask=square_mask()))

    with pytest.raises(InvalidRequest) as err:
        run(scenario())
    assert str(err.value) == "With 2 steps and a strength of 0.3 no denoising step would run; raise the steps or " \
                             "the strength."


class IdentityPipeline:
    """Stands in for the inpaint pipeline: 'generates' exactly the picture it was given."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.scheduler = None

    def __call__(self, *, image, mask_image, width, height, callback_on_step_end, **kwargs):  # noqa: ANN001, ANN003, ANN204
        self.calls.append(dict(image=image, mask_image=mask_image, width=width, height=height, **kwargs))
        assert image.size == mask_image.size == (width, height)
        callback_on_step_end(self, 0, 999, {"latents": torch.zeros(1, 4, height // 8, width // 8)})
        return SimpleNamespace(images=[image.copy()])


def test_with_a_model_that_changes_nothing_the_engine_returns_the_picture(tiny_model_dir, tmp_path, monkeypatch):
    """The engine's crop, working size and paste-back agree: an identity 'model' gives the picture back."""
    fake = IdentityPipeline()
    real = LoadedModel.pipeline
    monkeypatch.setattr(LoadedModel, "pipeline",
                        lambda self, img2img=False, inpaint=False: fake if inpaint else real(self, img2img))
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    smooth = np.stack([128 + 100 * np.sin(x / 3), 128 + 100 * np.sin(y / 3), 128 + 100 * np.sin((x + y) / 4)], -1)
    original = Image.fromarray(smooth.round().astype(np.uint8), "RGB")
    boxes = [SQUARE, (0, 90, 30, 110), (20, 50, 140, 56)]

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            ids = [service.submit(request(tiny_model_dir, init_image=original, mask=square_mask(box=box),
                                          inpaint=InpaintOptions(padding=12, feather=3)))
                   for box in boxes]
            return await collect_until_done(stream, ids), ids

    events, ids = run(scenario())
    assert len(fake.calls) == len(boxes)
    for job, box, call in zip(ids, boxes, fake.calls, strict=True):
        end = terminal(events, job)
        assert isinstance(end, JobFinished), end
        x0, y0, x1, y1 = box
        error = np.abs(pixels(end.outputs[0].image) - pixels(original))[y0:y1, x0:x1]
        assert error.mean() < 3, (box, error.mean())
        # The pipeline got the crop at a working size near the model's native area, and a cell-aligned mask.
        assert call["width"] % 8 == 0 and call["height"] % 8 == 0
        assert 0.5 < call["width"] * call["height"] / 256**2 < 2
        cells = np.asarray(call["mask_image"]).reshape(call["height"] // 8, 8, call["width"] // 8, 8)
        assert (cells.min(axis=(1, 3)) == cells.max(axis=(1, 3))).all()
        assert call["strength"] == 0.75 and "padding_mask_crop" not in call
