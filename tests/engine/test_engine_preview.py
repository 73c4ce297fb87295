"""Live previews: linear colours, throttling, TAESD when installed (and a fallback when broken), and cost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from studio_testing import (
    DirectContext,
    collect_until_done,
    of_job,
    run,
    running_service,
    terminal,
)

import studio.engine.batch_run as batch_run
import studio.engine.diffusion as diffusion
import studio.engine.preview as preview
from studio.core.environment import GeneratorEnvironment
from studio.core.events import JobFinished, JobPreview, JobProgress
from studio.core.requests import GenerationRequest
from studio.engine.preview import (
    LivePreviews,
    PREVIEW_RATE,
    PreviewThrottle,
    fit_preview,
    latents_to_preview,
    latents_to_rgb,
)
from studio.engine.taesd import FOLDERS, find_taesd, forget_decoders, taesd_decoder

# ComfyUI's published factors (comfy/latent_formats.py), written out again so a typo in the module shows.
SD_ROW0 = (0.3512, 0.2297, 0.3227)
SDXL_BIAS = (0.1084, -0.0175, -0.0011)


def expected(values: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(int((min(1.0, max(-1.0, v)) + 1) * 127.5) for v in values)


def flat_latents(channels: tuple[float, ...], height: int = 6, width: int = 10) -> torch.Tensor:
    return torch.tensor(channels, dtype=torch.float32).view(1, 4, 1, 1).expand(2, 4, height, width).clone()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_decoders():
    forget_decoders()
    preview._taesd_seconds.clear()  # what TAESD cost on a device is kept for the session
    preview._taesd_refused.clear()  # and where the log said it never fits
    yield
    forget_decoders()
    preview._taesd_seconds.clear()
    preview._taesd_refused.clear()


@pytest.fixture
def previews_unbudgeted(monkeypatch):
    """TAESD used at every preview, whatever it costs: for what is about TAESD itself, not its cost."""
    monkeypatch.setattr(preview, "PREVIEW_BUDGET", 1e9)


def save_tiny_taesd(folder: Path) -> Path:
    """A random-weight AutoencoderTiny with TAESD's layout (8x upsampling), a few kB instead of 10 MB."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                    num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1)).save_pretrained(folder)
    return folder


# -- the linear approximation -------------------------------------------------------------------------

def test_linear_previews_of_known_latents_give_the_published_colours():
    zero = flat_latents((0.0, 0.0, 0.0, 0.0))
    assert set(latents_to_preview(zero, "sd").getdata()) == {(127, 127, 127)}
    assert set(latents_to_preview(zero, "sdxl").getdata()) == {expected(SDXL_BIAS)}
    first = flat_latents((1.0, 0.0, 0.0, 0.0))
    assert set(latents_to_preview(first, "sd").getdata()) == {expected(SD_ROW0)}
    # Channel 4 pulls towards blue-less dark in SD latents, and colours saturate instead of wrapping.
    assert set(latents_to_preview(flat_latents((0.0, 0.0, 0.0, -10.0)), "sd").getdata()) == {(255, 255, 255)}
    assert set(latents_to_preview(flat_latents((0.0, 0.0, 0.0, 10.0)), "sd").getdata()) == {(0, 0, 0)}


def test_linear_previews_are_rgb_at_latent_size_and_stay_on_the_latents_device():
    latents = torch.randn(1, 4, 16, 24)
    rgb = latents_to_rgb(latents, "sdxl")
    assert rgb.shape == (16, 24, 3) and rgb.dtype == torch.uint8 and rgb.device == latents.device
    image = latents_to_preview(latents.half(), "sd")
    assert image.mode == "RGB" and image.size == (24, 16)


def test_big_previews_are_scaled_down_on_the_device_and_small_ones_are_left_alone():
    big = torch.full((1024, 768, 3), 200, dtype=torch.uint8)
    fitted = fit_preview(big)
    assert fitted.shape == (512, 384, 3) and fitted.dtype == torch.uint8 and int(fitted[0, 0, 0]) == 200
    small = torch.zeros((64, 64, 3), dtype=torch.uint8)
    assert fit_preview(small) is small


# -- throttling ---------------------------------------------------------------------------------------

def test_throttle_keeps_at_most_the_allowed_rate_and_always_the_last_step():
    clock = FakeClock()
    throttle = PreviewThrottle(rate=10, burst=4, budget=1.0, clock=clock)
    steps, step_time = 200, 0.004  # a fast GPU: 250 steps a second
    due = []
    for step in range(1, steps + 1):
        clock.now += step_time
        if throttle.due(step, steps):
            due.append(step)
    seconds = steps * step_time
    assert due[:4] == [1, 2, 3, 4]  # the first steps, where the picture changes most
    assert len(due) <= 4 + seconds * 10 + 1
    assert len(due) >= seconds * 10 - 1  # ... and it does keep previewing at the rate
    assert due[-1] == steps


def test_throttle_gives_every_step_a_preview_when_steps_are_slow():
    clock = FakeClock()
    throttle = PreviewThrottle(clock=clock)
    due = []
    for step in range(1, 31):
        clock.now += 0.5  # a CPU job: two steps a second
        due.append(throttle.due(step, 30))
    assert all(due)


def test_the_default_throttle_previews_every_step_of_a_fast_gpu_job_up_to_30_steps_a_second():
    for steps_a_second, every_step in ((22, True), (30, True), (80, False)):  # SDXL, SD 1.5 on an H100
        clock = FakeClock()
        throttle = PreviewThrottle(clock=clock)
        due = []
        for step in range(1, 21):
            clock.now += 1 / steps_a_second
            due.append(throttle.due(step, 20))
        assert all(due) is every_step, steps_a_second
        assert sum(due) >= min(20, 4 + 20 / steps_a_second * PREVIEW_RATE - 1)


def test_throttle_holds_previews_to_the_cost_budget_the_first_and_last_included():
    clock = FakeClock()
    throttle = PreviewThrottle(rate=1000, burst=1000, budget=0.05, clock=clock)
    clock.now += 0.01
    assert not throttle.due(1, 100, cost=0.1)  # 10 times the step: not even the first preview
    assert throttle.due(1, 100, cost=0.0001)
    throttle.charge(0.0001)
    made = []
    for step in range(2, 101):
        clock.now += 0.01
        if throttle.due(step, 100, cost=0.01):
            made.append(step)
            clock.now += 0.01
            throttle.charge(0.01)
    assert made and throttle.spent <= 0.05 * (clock.now - 100.0)
    clock.now += 0.01
    assert not throttle.due(100, 100, cost=1.0)  # the last step too, when its preview would pass the budget


def test_live_previews_return_images_only_on_the_steps_the_throttle_allows():
    clock = FakeClock()
    rendered = []

    def render(latents: torch.Tensor, family: str) -> Image.Image:
        rendered.append(family)
        return latents_to_preview(latents, family)

    previews = LivePreviews("sdxl", render, throttle=PreviewThrottle(rate=10, burst=1, clock=clock), clock=clock)
    shown = []
    for step in range(1, 11):
        clock.now += 0.01
        image = previews(torch.randn(1, 4, 8, 8), step, 10)
        shown.append(image is not None)
        if image is not None:
            assert image.mode == "RGB" and image.size == (8, 8)
    assert shown[0] and shown[-1] and not all(shown)
    assert rendered == ["sdxl"] * sum(shown) and previews.made == sum(shown)


def test_a_decoder_that_fails_falls_back_to_linear_with_one_note():
    notes: list[str] = []
    calls = {"n": 0}

    def broken(latents: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        raise RuntimeError("expected 4 channels")

    previews = LivePreviews("sd", decoder=broken, note=notes.append, throttle=PreviewThrottle(budget=1e9))
    images = [previews(torch.randn(1, 4, 8, 8), step, 3) for step in (1, 2, 3)]
    assert all(image is not None and image.size == (8, 8) for image in images)
    assert calls["n"] == 1 and previews.decoder is None
    assert notes == ["A TAESD preview failed (expected 4 channels); Studio shows the quick colour previews instead."]


# -- TAESD --------------------------------------------------------------------------------------------

def test_taesd_is_found_only_where_its_folder_is_installed(tmp_path):
    models = tmp_path / "models"
    assert find_taesd(models, "sd") is None and taesd_decoder(models, "sd") is None
    save_tiny_taesd(models / FOLDERS["sd"])
    assert find_taesd(models, "sd") == models / "taesd"
    assert find_taesd(models, "sdxl") is None  # SDXL latents need taesdxl, not taesd
    assert find_taesd(models, "unknown") is None


def test_taesd_decodes_previews_at_picture_size_and_is_loaded_once(tmp_path, monkeypatch, previews_unbudgeted):
    from diffusers import AutoencoderTiny

    loads = []
    real = AutoencoderTiny.from_pretrained.__func__
    monkeypatch.setattr(AutoencoderTiny, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(a[0]) or real(cls, *a, **k)))
    models = tmp_path / "models"
    save_tiny_taesd(models / "taesdxl")
    for _ in range(2):
        previews = LivePreviews("sdxl", decoder=taesd_decoder(models, "sdxl"))
        image = previews(torch.randn(2, 4, 12, 8), 1, 1)
        assert image.mode == "RGB" and image.size == (64, 96)
    assert len(loads) == 1


def request(model: Path, **kwargs) -> GenerationRequest:  # noqa: ANN003
    values = dict(model=str(model), prompt="a red fox", width=64, height=64, steps=3, seed=1, scheduler="Euler")
    values.update(kwargs)
    return GenerationRequest(**values)


def generate(tmp_path: Path, model: Path, models_dir: Path, **kwargs) -> tuple[list[object], int]:  # noqa: ANN003
    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models_dir)

    async def scenario():
        async with running_service(env) as service:
            stream = service.subscribe()
            job = service.submit(request(model, **kwargs))
            return await collect_until_done(stream, [job]), job

    return run(scenario())


def test_jobs_use_taesd_when_its_folder_exists_and_the_linear_preview_otherwise(tiny_model_dir, tmp_path,
                                                                                previews_unbudgeted):
    models = tmp_path / "models"
    models.mkdir()
    events, job = generate(tmp_path, tiny_model_dir, models, batch_count=2)
    assert isinstance(terminal(events, job), JobFinished)
    assert {p.image.size for p in of_job(events, job, JobPreview)} == {(8, 8)}  # latent size: linear

    save_tiny_taesd(models / "taesd")
    events, job = generate(tmp_path, tiny_model_dir, models, batch_count=2)
    end = terminal(events, job)
    assert isinstance(end, JobFinished) and end.notes == ()
    previews = of_job(events, job, JobPreview)
    assert {p.image.size for p in previews} == {(64, 64)} and {p.image.mode for p in previews} == {"RGB"}
    assert {p.image_index for p in previews} == {0, 1}
    assert previews[-1].step == of_job(events, job, JobProgress)[-1].total  # the last step is always shown


def test_a_broken_taesd_folder_falls_back_to_linear_with_a_note_instead_of_failing(tiny_model_dir, tmp_path,
                                                                                    previews_unbudgeted):
    folder = save_tiny_taesd(tmp_path / "models" / "taesd")
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64)
    events, job = generate(tmp_path, tiny_model_dir, tmp_path / "models", batch_count=2)
    end = terminal(events, job)
    assert isinstance(end, JobFinished) and len(end.outputs) == 2
    assert {p.image.size for p in of_job(events, job, JobPreview)} == {(8, 8)}
    taesd_notes = [n for n in end.notes if "TAESD" in n]
    assert len(taesd_notes) == 1, end.notes  # said once, not once per image
    assert taesd_notes[0].startswith(f"The TAESD decoder in {folder} could not be loaded (")
    assert taesd_notes[0].endswith("; Studio shows the quick colour previews instead.")


def test_a_taesd_that_loads_but_cannot_decode_costs_one_note_per_session(tiny_model_dir, tmp_path,
                                                                          previews_unbudgeted):
    # A TAESD for another latent space (16 channels) loads, then fails at every decode: its note and traceback
    # came once per picture and once per job, as only the current picture's previews dropped it.
    from diffusers import AutoencoderTiny

    models = tmp_path / "models"
    AutoencoderTiny(latent_channels=16, encoder_block_out_channels=(8, 8, 8, 8),
                    decoder_block_out_channels=(8, 8, 8, 8), num_encoder_blocks=(1, 1, 1, 1),
                    num_decoder_blocks=(1, 1, 1, 1)).save_pretrained(models / "taesd")
    notes = []
    for _ in range(2):
        events, job = generate(tmp_path, tiny_model_dir, models, batch_count=2, steps=2)
        end = terminal(events, job)
        assert isinstance(end, JobFinished) and len(end.outputs) == 2
        assert {p.image.size for p in of_job(events, job, JobPreview)} == {(8, 8)}
        notes += [n for n in end.notes if "TAESD" in n]
    assert len(notes) == 1 and notes[0].startswith("A TAESD preview failed (")
    assert taesd_decoder(models, "sd") is None


def test_a_command_line_job_computes_no_previews_and_a_window_job_does(tiny_model_dir, studio_home, tmp_path,
                                                                       monkeypatch, capsys):
    # `studio generate` shows no previews: it made them anyway, TAESD included (seconds each on a CPU).
    from studio.cli import main

    save_tiny_taesd(studio_home / "data" / "models" / "taesd")
    made = {"linear": 0, "taesd": 0}

    def counted_render(latents: torch.Tensor, family: str) -> Image.Image:
        made["linear"] += 1
        return latents_to_preview(latents, family)

    def counted_decoder(models_root: Path, family: str):  # noqa: ANN202
        decoder = taesd_decoder(models_root, family)
        assert decoder is not None  # installed: previews would use it

        def decode(latents: torch.Tensor) -> torch.Tensor:
            made["taesd"] += 1
            return decoder(latents)
        return decode

    monkeypatch.setattr(batch_run, "latents_to_preview", counted_render)
    monkeypatch.setattr(batch_run, "taesd_decoder", counted_decoder)
    code = main(["generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--size", "64x64", "--steps", "3",
                 "--seed", "4", "--batch-count", "2", "-o", str(tmp_path / "fox.png")])
    assert code == 0, capsys.readouterr().err
    assert made == {"linear": 0, "taesd": 0}

    # The same job where a window listens: previews are made (the engine's default).
    events, job = generate(tmp_path, tiny_model_dir, studio_home / "data" / "models", steps=3, batch_count=2)
    assert isinstance(terminal(events, job), JobFinished) and of_job(events, job, JobPreview)
    assert made["linear"] + made["taesd"] >= 2


class SlowTaesd:
    """A TAESD stand-in that costs ``per_pixel`` seconds a latent pixel on a fake clock (and counts its decodes)."""

    def __init__(self, clock: FakeClock, per_pixel: float) -> None:
        self.clock, self.per_pixel, self.calls = clock, per_pixel, 0

    def __call__(self, latents: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        height, width = latents.shape[-2:]
        self.clock.now += self.per_pixel * height * width
        return torch.zeros((height * 8, width * 8, 3), dtype=torch.uint8)


def job_with_fake_times(clock: FakeClock, taesd: SlowTaesd, step_seconds: float, steps: int = 8, pictures: int = 3,
                        side: int = 64) -> tuple[float, float, list[tuple[int, int]]]:
    """Pictures whose steps take ``step_seconds`` on the fake clock, previewed as a job previews them: the job's
    seconds, the previews' seconds (their share of the clock), and the sizes of the previews shown."""
    started, spent, shown = clock.now, 0.0, []
    for _ in range(pictures):
        previews = LivePreviews("sd", decoder=taesd, clock=clock)
        for step in range(1, steps + 1):
            clock.now += step_seconds
            before = clock.now
            image = previews(torch.zeros(1, 4, side, side), step, steps)
            spent += clock.now - before
            if image is not None:
                shown.append(image.size)
    return clock.now - started, spent, shown


def test_a_slow_taesd_keeps_previews_within_5_percent_of_the_job_first_and_last_included(monkeypatch):
    # TAESD at 512x512 took 3.6-10 s on this CPU against 0.1 s steps: it ran at a picture's first and last step
    # whatever it cost, and a tiny-model job went from 17 s to 25 s.
    clock = FakeClock()
    taesd = SlowTaesd(clock, per_pixel=10.0 / 4096)  # 10 s for 64x64 latents
    seconds, spent, shown = job_with_fake_times(clock, taesd, step_seconds=0.1)
    assert spent <= 0.05 * seconds
    assert taesd.calls == 0  # it never fits: every step gets the quick preview instead
    assert len(shown) == 3 * 8 and set(shown) == {(64, 64)}  # the linear one, at latent size

    # A TAESD whose cost (0.5 s, guessed right) fits now and then in 2 s steps: it shows the steps it fits, the
    # quick preview the others, and the previews still stay within the budget.
    clock = FakeClock()
    monkeypatch.setitem(preview.TAESD_GUESS, "cpu", 0.5 / 4096)
    taesd = SlowTaesd(clock, per_pixel=0.5 / 4096)
    seconds, spent, shown = job_with_fake_times(clock, taesd, step_seconds=2.0)
    assert spent <= 0.05 * seconds
    assert 0 < taesd.calls < 3 * 8 and (512, 512) in shown and (64, 64) in shown


def test_the_log_says_taesd_does_not_fit_only_where_it_never_fits_a_picture(monkeypatch, caplog):
    refused = "more than 5 % of the picture's time allows"
    # 0.5 s TAESD against 2 s steps: the first steps' budget (5 % of 2 s) is too small, later steps afford it. On a
    # GPU every session starts so; the log said TAESD does not fit though the picture showed it.
    clock = FakeClock()
    monkeypatch.setitem(preview.TAESD_GUESS, "cpu", 0.5 / 4096)
    taesd = SlowTaesd(clock, per_pixel=0.5 / 4096)
    with caplog.at_level("DEBUG", logger=preview.__name__):
        job_with_fake_times(clock, taesd, step_seconds=2.0, pictures=1)
    assert taesd.calls > 0 and "not yet within the budget at step 1 of 8" in caplog.text
    assert refused not in caplog.text and not preview._taesd_refused

    # 10 s TAESD against 0.1 s steps: no step of the picture can afford it, said once for the session.
    caplog.clear()
    clock = FakeClock()
    taesd = SlowTaesd(clock, per_pixel=10.0 / 4096)
    with caplog.at_level("INFO", logger=preview.__name__):
        job_with_fake_times(clock, taesd, step_seconds=0.1, pictures=2)
    assert taesd.calls == 0 and caplog.text.count(refused) == 1


def test_a_measured_taesd_cost_decides_later_pictures(monkeypatch):
    clock = FakeClock()
    monkeypatch.setitem(preview.TAESD_GUESS, "cpu", 1e-9)  # guessed as free: the first decode shows the truth
    taesd = SlowTaesd(clock, per_pixel=1.0 / 4096)
    seconds, spent, _ = job_with_fake_times(clock, taesd, step_seconds=0.5, pictures=1)
    assert taesd.calls == 1  # one decode measured 1 s against a 0.2 s budget: none after it
    assert preview.taesd_estimate(torch.zeros(1, 4, 64, 64)) == pytest.approx(1.0)
    seconds, spent, shown = job_with_fake_times(clock, taesd, step_seconds=0.5, pictures=2)
    assert taesd.calls == 1 and spent <= 0.05 * seconds and set(shown) == {(64, 64)}


# -- what previews cost --------------------------------------------------------------------------------



class _NoPreviews:
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        pass

    def __call__(self, latents: torch.Tensor, step: int, total: int) -> None:
        return None


def test_previews_cost_a_small_share_of_a_tiny_model_job(tiny_model_dir, tmp_path, monkeypatch):
    generator = diffusion.DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    job = request(tiny_model_dir, steps=20, batch_count=2)
    spent = []

    class TimedPreviews(LivePreviews):
        def __call__(self, latents: torch.Tensor, step: int, total: int) -> Image.Image | None:
            started = time.perf_counter()
            try:
                return super().__call__(latents, step, total)
            finally:
                spent.append(time.perf_counter() - started)

    def seconds(previews: type, context: DirectContext) -> float:
        monkeypatch.setattr(batch_run, "LivePreviews", previews)
        started = time.perf_counter()
        assert len(list(generator.generate(job, context))) == 2
        return time.perf_counter() - started

    seconds(TimedPreviews, DirectContext())  # loads the model and warms everything up
    on, off = [], []
    for _ in range(3):  # interleaved, best of three: other load on the machine only ever adds time
        spent.clear()
        context = DirectContext()
        on.append((seconds(TimedPreviews, context), sum(spent), context.previews))
        off.append(seconds(_NoPreviews, DirectContext()))
    best_on = min(on)
    ratio = best_on[0] / min(off)
    print(f"\ntiny model, 2 x 20 steps at 64x64 on the CPU: {min(off) * 1000:.0f} ms without previews, "
          f"{best_on[0] * 1000:.0f} ms with {best_on[2]} previews ({ratio:.2f}x); the previews themselves took "
          f"{best_on[1] * 1000:.1f} ms = {best_on[1] / best_on[0]:.1%} of the job")
    assert best_on[2] >= 2  # at least each image's last step
    assert best_on[1] / best_on[0] < 0.05  # the budget, measured directly
    assert ratio < 1.5  # generous: it must not flake when the machine is busy
