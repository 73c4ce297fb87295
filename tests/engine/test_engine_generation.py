"""The real engine end to end: JobService + builtin_registry + the real loader, on a tiny random model."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from studio_testing import collect_until_done, make_env, of_job, run, running_service, terminal, tiny_request

import studio.engine.batch_run as batch_run
import studio.engine.diffusion as diffusion
from studio.core.events import (
    EngineStatus,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobStarted,
)
from studio.core.images import read_recipe
from studio.core.requests import SCHEDULER_NAMES, GenerationRequest
from studio.services.outputs import OutputStore

SLOW_STEPS = 400  # long enough that a cancel clearly lands mid-run on any machine


def request(model: Path, **kwargs) -> GenerationRequest:  # noqa: ANN003
    return tiny_request(model, prepared=False, **kwargs)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_txt2img_and_img2img_make_images_of_the_asked_size(tiny_model_dir, tmp_path):
    init = Image.new("RGB", (80, 48), (200, 30, 30))
    init.paste((20, 20, 220), (0, 0, 40, 48))

    async def scenario():
        async with running_service(make_env(tmp_path), warm_up=True) as service:
            stream = service.subscribe()
            txt = service.submit(request(tiny_model_dir, width=96, height=64))
            img = service.submit(request(tiny_model_dir, width=64, height=96, init_image=init, strength=0.6,
                                         steps=4))
            return await collect_until_done(stream, [txt, img]), txt, img

    events, txt, img = run(scenario())
    for job_id, size in ((txt, (96, 64)), (img, (64, 96))):
        end = terminal(events, job_id)
        assert isinstance(end, JobFinished), end
        assert len(end.outputs) == 1
        out = end.outputs[0]
        assert out.image.size == size
        assert out.image.mode == "RGB"
        assert (out.recipe.width, out.recipe.height) == size
        assert out.recipe.model_name == tiny_model_dir.name
        assert len(out.recipe.model_hash) == 10
    assert terminal(events, txt).outputs[0].recipe.strength is None
    assert terminal(events, img).outputs[0].recipe.strength == 0.6
    # img2img with strength 0.6 of 4 steps runs only the last steps of the schedule.
    img_progress = of_job(events, img, JobProgress)
    assert img_progress and img_progress[-1].step == img_progress[-1].total < 4
    # Warm-up reported the device before any job ran.
    statuses = [e for e in events if isinstance(e, EngineStatus)]
    assert any(s.device.startswith("CPU") for s in statuses)
    assert all(s.device_kind == "cpu" for s in statuses if s.device)  # what the window decides by, not the words
    assert any(s.model == tiny_model_dir.name for s in statuses)


def test_same_seed_same_pixels_and_batches_use_consecutive_seeds(tiny_model_dir, tmp_path):
    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            batch = service.submit(request(tiny_model_dir, seed=41, batch_count=2))
            single_41 = service.submit(request(tiny_model_dir, seed=41))
            single_42 = service.submit(request(tiny_model_dir, seed=42))
            events = await collect_until_done(stream, [batch, single_41, single_42])
            return events, batch, single_41, single_42

    events, batch, single_41, single_42 = run(scenario())
    batch_end, end_41, end_42 = (terminal(events, j) for j in (batch, single_41, single_42))
    assert all(isinstance(e, JobFinished) for e in (batch_end, end_41, end_42))
    assert [o.recipe.seed for o in batch_end.outputs] == [41, 42]
    # Same seed, same pixels, in a batch or alone (A1111's convention for batches).
    assert np.array_equal(pixels(batch_end.outputs[0].image), pixels(end_41.outputs[0].image))
    assert np.array_equal(pixels(batch_end.outputs[1].image), pixels(end_42.outputs[0].image))
    # ... and a different seed gives a different picture, so the comparison above means something.
    assert not np.array_equal(pixels(end_41.outputs[0].image), pixels(end_42.outputs[0].image))
    # One JobOutput per image, in order, as each one is done.
    outputs = of_job(events, batch, JobOutput)
    assert [o.index for o in outputs] == [0, 1]
    assert [o.output.recipe.seed for o in outputs] == [41, 42]


def test_progress_counts_up_to_the_total_and_previews_are_images(tiny_model_dir, tmp_path):
    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            job = service.submit(request(tiny_model_dir, steps=3, batch_count=2))
            return await collect_until_done(stream, [job]), job

    events, job = run(scenario())
    assert isinstance(terminal(events, job), JobFinished)
    progress = of_job(events, job, JobProgress)
    assert [(p.image_index, p.step) for p in progress] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    assert {p.total for p in progress} == {3}
    assert {p.image_count for p in progress} == {2}
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(b.elapsed >= a.elapsed for a, b in zip(progress, progress[1:]))
    previews = of_job(events, job, JobPreview)
    # How many steps get one depends on timing (the throttle's cost budget; tested with a fake clock in
    # test_engine_preview.py); each image's last step always does, and each preview is of a step that ran.
    assert {(p.image_index, p.step) for p in previews} <= {(p.image_index, p.step) for p in progress}
    assert {(0, 3), (1, 3)} <= {(p.image_index, p.step) for p in previews}
    for preview in previews:
        assert isinstance(preview.image, Image.Image)
        assert preview.image.mode == "RGB"
        assert preview.image.size == (8, 8)  # latent resolution: 1/8 of 64x64
    # Events of the job come in their documented order.
    kinds = [type(e) for e in of_job(events, job)]
    assert kinds.index(JobStarted) < kinds.index(JobProgress)
    assert kinds[-1] is JobFinished


def test_cancel_stops_a_running_job_within_a_step_and_the_next_job_runs(tiny_model_dir, tmp_path):
    timings: dict[str, float] = {}

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            slow = service.submit(request(tiny_model_dir, steps=SLOW_STEPS))
            after = service.submit(request(tiny_model_dir))

            def on_event(event: object) -> None:
                if isinstance(event, JobProgress) and event.job_id == slow and "cancel" not in timings:
                    timings["cancel"] = time.perf_counter()
                    assert service.cancel(slow)
                if isinstance(event, JobCancelled) and event.job_id == slow:
                    timings["cancelled"] = time.perf_counter()

            events = await collect_until_done(stream, [slow, after], on_event=on_event)
            return events, slow, after

    events, slow, after = run(scenario())
    end = terminal(events, slow)
    assert isinstance(end, JobCancelled)
    assert end.was_running is True
    assert end.outputs == ()
    assert timings["cancelled"] - timings["cancel"] < 5.0
    assert len(of_job(events, slow, JobProgress)) < SLOW_STEPS // 4
    # The engine thread survived and took the next job.
    assert isinstance(terminal(events, after), JobFinished)


def test_removing_a_waiting_job_cancels_it_without_starting_it(tiny_model_dir, tmp_path):
    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            first = service.submit(request(tiny_model_dir, seed=1))
            removed = service.submit(request(tiny_model_dir, seed=2))
            last = service.submit(request(tiny_model_dir, seed=3))
            assert service.cancel(removed)
            assert not service.cancel(removed)  # already gone
            events = await collect_until_done(stream, [first, removed, last])
            return events, first, removed, last

    events, first, removed, last = run(scenario())
    end = terminal(events, removed)
    assert isinstance(end, JobCancelled) and end.was_running is False
    assert of_job(events, removed, (JobStarted, JobProgress, JobOutput)) == []
    assert isinstance(terminal(events, first), JobFinished)
    assert isinstance(terminal(events, last), JobFinished)
    assert [e.job_id for e in events if isinstance(e, JobStarted)] == [first, last]


def test_cancel_all_cancels_the_running_job_and_empties_the_queue(tiny_model_dir, tmp_path):
    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            running = service.submit(request(tiny_model_dir, steps=SLOW_STEPS))
            waiting = [service.submit(request(tiny_model_dir, seed=s)) for s in (5, 6)]

            def on_event(event: object) -> None:
                if isinstance(event, JobProgress) and event.job_id == running and event.step == 1:
                    service.cancel_all()

            events = await collect_until_done(stream, [running, *waiting], on_event=on_event)
            assert service.jobs == {}
            # The service still works after cancel_all.
            again = service.submit(request(tiny_model_dir))
            events += await collect_until_done(stream, [again])
            return events, running, waiting, again

    events, running, waiting, again = run(scenario())
    assert terminal(events, running) == JobCancelled(running, was_running=True)
    for job in waiting:
        assert terminal(events, job) == JobCancelled(job, was_running=False)
        assert of_job(events, job, JobStarted) == []
    assert isinstance(terminal(events, again), JobFinished)


def test_queue_order_is_kept_and_outputs_carry_their_recipe(tiny_model_dir, tmp_path):
    store = OutputStore(tmp_path / "outputs")

    async def scenario():
        async with running_service(make_env(tmp_path), outputs=store) as service:
            stream = service.subscribe()
            jobs = [service.submit(request(tiny_model_dir, seed=seed, prompt=f"job {seed}, red: \"fox\"\nü"))
                    for seed in (30, 10, 20)]
            return await collect_until_done(stream, jobs), jobs

    events, jobs = run(scenario())
    assert [e.job_id for e in events if isinstance(e, JobStarted)] == jobs
    assert [e.job_id for e in events if isinstance(e, JobFinished)] == jobs
    saved = []
    for job, seed in zip(jobs, (30, 10, 20)):
        out = terminal(events, job).outputs[0]
        assert out.path is not None and out.path.is_file()
        assert out.path.name.endswith(f"-{seed}.png")
        assert read_recipe(out.path) == out.recipe
        assert out.recipe.seed == seed
        assert out.recipe.prompt == f"job {seed}, red: \"fox\"\nü"
        assert out.recipe.negative_prompt == "blurry"
        assert (out.recipe.steps, out.recipe.sampler, out.recipe.cfg_scale) == (2, "Euler", 5.0)
        with Image.open(out.path) as img:
            assert np.array_equal(pixels(img), pixels(out.image))
        saved.append(out.path.name)
    assert saved == sorted(saved)  # numbered in the order they were made


def test_an_exception_inside_a_job_fails_it_and_the_next_job_succeeds(tiny_model_dir, tmp_path, monkeypatch):
    real_preview = batch_run.latents_to_preview
    calls = {"n": 0}

    def preview_that_breaks_once(latents, family="sd"):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 2:  # in the middle of the first job's denoising loop
            raise RuntimeError("boom in the middle of step 2")
        return real_preview(latents, family)

    monkeypatch.setattr(batch_run, "latents_to_preview", preview_that_breaks_once)

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            broken = service.submit(request(tiny_model_dir, steps=3))
            fine = service.submit(request(tiny_model_dir, steps=3))
            return await collect_until_done(stream, [broken, fine]), broken, fine

    events, broken, fine = run(scenario())
    end = terminal(events, broken)
    assert isinstance(end, JobFailed)
    assert end.message == "The job failed with an unexpected error: boom in the middle of step 2"
    assert "Traceback" in end.detail and "RuntimeError" in end.detail
    ok = terminal(events, fine)
    assert isinstance(ok, JobFinished) and ok.outputs[0].image.size == (64, 64)


def test_a_model_that_fails_to_load_fails_its_job_and_the_next_job_succeeds(tiny_model_dir, tmp_path):
    broken_model = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken_model)
    (broken_model / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64)

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            broken = service.submit(request(broken_model))
            fine = service.submit(request(tiny_model_dir))
            return await collect_until_done(stream, [broken, fine]), broken, fine

    events, broken, fine = run(scenario())
    end = terminal(events, broken)
    assert isinstance(end, JobFailed)
    assert end.message.startswith("The model broken-model has a damaged weights file, unet/")
    assert "\n" not in end.message
    assert isinstance(terminal(events, fine), JobFinished)


def test_the_loop_stays_responsive_while_the_engine_computes(tiny_model_dir, tmp_path):
    """The engine runs on its own thread: loop callbacks keep running during a long job."""
    ticks: list[float] = []

    async def ticker():
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            job = service.submit(request(tiny_model_dir, steps=40))
            task = asyncio.create_task(ticker())
            events = await collect_until_done(stream, [job])
            task.cancel()
            return events, job

    events, job = run(scenario())
    assert isinstance(terminal(events, job), JobFinished)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 5
    assert max(gaps) < 2.0, f"the loop was blocked for {max(gaps):.2f} s"


def test_every_scheduler_runs(tiny_model_dir, tmp_path):
    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            jobs = {service.submit(request(tiny_model_dir, scheduler=name, steps=3)): name
                    for name in SCHEDULER_NAMES}
            return await collect_until_done(stream, jobs), jobs

    events, jobs = run(scenario())
    for job, name in jobs.items():
        end = terminal(events, job)
        assert isinstance(end, JobFinished), (name, end)
        assert end.outputs[0].recipe.sampler == name
        progress = of_job(events, job, JobProgress)
        assert progress[-1].step == progress[-1].total, name


def test_out_of_memory_fails_with_advice_frees_the_model_and_the_next_job_works(tiny_model_dir, tmp_path,
                                                                                 monkeypatch):
    real_preview = batch_run.latents_to_preview
    calls = {"n": 0}

    def preview_that_runs_out_of_memory_once(latents, family="sd"):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_preview(latents, family)

    monkeypatch.setattr(batch_run, "latents_to_preview", preview_that_runs_out_of_memory_once)
    loads = []
    real_load = diffusion.load_model
    monkeypatch.setattr(diffusion, "load_model", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            broken = service.submit(request(tiny_model_dir, width=128, height=96))
            fine = service.submit(request(tiny_model_dir))
            return await collect_until_done(stream, [broken, fine]), broken, fine

    events, broken, fine = run(scenario())
    end = terminal(events, broken)
    assert isinstance(end, JobFailed)
    assert end.message == ("The GPU ran out of memory making a 128x96 image; switch Memory to Low VRAM in Settings "
                           "(CPU offload and VAE tiling), or make a smaller image. Studio freed its cached models, "
                           "so the next job starts clean.")
    assert isinstance(terminal(events, fine), JobFinished)
    assert len(loads) == 2  # the model was let go after the failure and loaded afresh


def test_an_unknown_memory_setting_is_refused():
    import pytest

    from studio.core.errors import InvalidRequest
    from studio.core.requests import prepare_request

    with pytest.raises(InvalidRequest, match="memory setting must be one of auto, high, low"):
        prepare_request(request(Path("m"), memory="huge"), check_model_exists=False)
