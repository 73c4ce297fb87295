"""How ``studio generate`` follows its job on the terminal (studio.cli_job): run on Studio's job service with a
quick stand-in for the diffusers generator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image
from studio_testing import studio_here, three_pictures_of_which_one_was_written

import studio.cli_generate as cli_generate
from studio.cli_exit import EXIT_CANCELLED, EXIT_FAILED
from studio.core.errors import JobCancelledError
from studio.core.environment import GeneratorEnvironment
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest
from studio.plugin_host.registry import GENERATOR, Contribution, Registry


class FailsOnSecondPicture:
    """Stands in for the diffusers generator: a flat picture for the first seed, then an error."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def generate(self, request: GenerationRequest, context: Any  # noqa: ANN401 - the engine's JobContext
                 ) -> Iterator[tuple[Image.Image, Recipe]]:
        seed = request.seed_for(0)
        context.report_progress(request.steps, request.steps, 0)
        yield Image.new("RGB", (request.width, request.height), (seed % 256, 0, 0)), Recipe(
            request.prompt, request.negative_prompt, request.steps, request.scheduler, request.cfg_scale, seed,
            request.width, request.height, "quick")
        raise RuntimeError("the GPU fell over")


class CancelledAfter:
    """Stands in for the diffusers generator: flat pictures for the first ``KEPT`` seeds, then the cancel a
    person asked for (looked at between pictures), without a Ctrl+C."""

    KEPT = 2

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def generate(self, request: GenerationRequest, context: Any  # noqa: ANN401 - the engine's JobContext
                 ) -> Iterator[tuple[Image.Image, Recipe]]:
        for index in range(self.KEPT):
            seed = request.seed_for(index)
            yield Image.new("RGB", (request.width, request.height), (seed % 256, 0, 0)), Recipe(
                request.prompt, request.negative_prompt, request.steps, request.scheduler, request.cfg_scale, seed,
                request.width, request.height, "quick")
        raise JobCancelledError()


@pytest.fixture
def failing_engine(studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    registry.add(Contribution(GENERATOR, "diffusers", "Failing generator", f"{__name__}:FailsOnSecondPicture"))
    monkeypatch.setattr(cli_generate, "open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))


def test_a_batch_that_fails_part_way_says_which_pictures_it_wrote(failing_engine, tiny_model_dir, tmp_path,
                                                                  capsys):
    # The first picture was written to -o, but the command said only the failure: nobody knew it was there.
    code, said, first = three_pictures_of_which_one_was_written(tiny_model_dir, tmp_path, capsys)
    assert code == EXIT_FAILED
    err = said.err.splitlines()
    failure = next(line for line in err if "the GPU fell over" in line)
    wrote = f"studio: failed after 1 of 3 pictures; wrote {first}."
    assert wrote in err and err.index(failure) < err.index(wrote)


class Boom:
    """A post-processor that fails on every picture."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def process(self, image: Image.Image, params: dict[str, Any], context: Any) -> Image.Image:  # noqa: ANN401
        raise RuntimeError("kaput")


@pytest.fixture
def engine_with_a_failing_step(studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.plugin_host.builtins import BUILTIN_CONTRIBUTIONS
    from studio.plugin_host.registry import POSTPROCESSOR

    registry = Registry()
    registry.add(Contribution(GENERATOR, "diffusers", "Flat pictures", "studio_testing:FlatPictures"))
    registry.add(Contribution(POSTPROCESSOR, "boom", "Boom", f"{__name__}:Boom"))
    for contribution in BUILTIN_CONTRIBUTIONS:
        if contribution.kind == POSTPROCESSOR:
            registry.add(contribution)
    monkeypatch.setattr(cli_generate, "open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))


def test_a_post_step_that_failed_writes_the_pictures_and_exits_1(engine_with_a_failing_step, tiny_model_dir,
                                                                 tmp_path, capsys):
    # It said "The picture was kept without Boom" as a note, and exited 0: a script took the job for done.
    from studio.cli import main

    Image.new("RGB", (8, 8), (0, 90, 200)).save(tmp_path / "ref.png")
    code = main(["generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--steps", "2", "--size", "64x64",
                 "--seed", "5", "--batch-count", "2", "--post", f"color:style={tmp_path / 'ref.png'}", "--post", "boom",
                 "-o", str(tmp_path / "v.png")])
    said = capsys.readouterr()
    assert code == EXIT_FAILED
    assert said.out.splitlines() == [f"Saved {tmp_path / 'v-1.png'} (seed 5, 64x64)",
                                     f"Saved {tmp_path / 'v-2.png'} (seed 6, 64x64)"]
    err = said.err.splitlines()
    assert any(line.startswith("note: ") and "kaput" in line and "kept without Boom" in line for line in err)
    assert err[-1] == (f"studio: {tmp_path / 'v-1.png'} and {tmp_path / 'v-2.png'} were written without Boom: that "
                       "post-processing step did not run.")
    # The colour transfer before it did run: the pictures took the reference's colours.
    assert all(Image.open(tmp_path / f"v-{i}.png").getpixel((0, 0)) == (0, 90, 200) for i in (1, 2))


def test_a_post_step_s_missing_picture_is_refused_before_the_job_as_postprocess_says_it(
        engine_with_a_failing_step, tiny_model_dir, tmp_path, monkeypatch, capsys):
    # The whole job ran, then a note said the step was left out ("choose another picture for it in the
    # post-processing chain", the window's words), and it exited 0.
    from studio.cli import main

    ran: list[object] = []
    monkeypatch.setattr(cli_generate, "run_job", lambda *args, **kwargs: ran.append(args) or 0)
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 64)).save(tmp_path / "in.png")
    assert main(["postprocess", "in.png", "-o", "out.png", "--method", "color", "--style", "nosuch.png"]) == 2
    refused = capsys.readouterr().err.splitlines()
    assert main(["generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--steps", "2",
                 "--post", "color:style=nosuch.png", "-o", "v.png"]) == 2
    assert capsys.readouterr().err.splitlines() == refused == [
        "studio: Colour Transfer: Style picture: the picture nosuch.png does not exist."]
    assert not ran and not (tmp_path / "v.png").exists()


class TimedEvents:
    """The events of a job as the terminal gets them, each at its time on ``clock``."""

    def __init__(self, clock: SimpleNamespace, timed: list[tuple[float, object]]) -> None:
        self.clock = clock
        self.timed = list(timed)

    def __aiter__(self) -> TimedEvents:
        return self

    async def __anext__(self) -> object:
        if not self.timed:
            raise StopAsyncIteration
        self.clock.now, event = self.timed.pop(0)
        return event


def test_the_time_left_comes_from_the_steps_not_the_engine_start_and_model_load(tmp_path, monkeypatch, capsys):
    # 60 quick steps after a 10 s load: "5/60 [00:10<01:50]", for a job that ended 5 s later.
    import asyncio

    import tqdm.std

    import studio.cli_job as cli_job
    from studio.core.events import EngineStatus, JobFinished, JobProgress

    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(tqdm.std, "time", lambda: clock.now)
    loaded = 10.0  # engine start and model load, then 10 steps a second
    timed: list[tuple[float, object]] = [(1.0, EngineStatus(message="Loading tiny-sd…"))]
    # Each picture's 30 steps take 3 s, and its decode half a second.
    at = {(index, step): loaded + index * 3.5 + step / 10 for index in range(2) for step in range(1, 31)}
    timed += [(time, JobProgress(1, step, 30, index, 2, time)) for (index, step), time in at.items()]
    timed.append((loaded + 6.5, JobFinished(1, (), 6.5)))

    class Service:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def start(self) -> None:
            pass

        def shutdown(self) -> None:
            pass

        def subscribe(self) -> TimedEvents:
            return TimedEvents(clock, timed)

        def submit(self, request: object) -> int:
            return 1

        def unsubscribe(self, stream: object) -> None:
            pass

    monkeypatch.setattr(cli_job, "JobService", Service)
    env = GeneratorEnvironment("cpu", tmp_path, tmp_path)
    asyncio.run(cli_job._generate(GenerationRequest(model="m", prompt="p", steps=30, batch_count=2), env, []))
    shown = [line.strip() for line in capsys.readouterr().err.replace("\r", "\n").splitlines()]
    assert any(line.startswith("Loading tiny-sd:") for line in shown)  # the stages before the steps stay shown
    assert any("| 5/60 [00:10<00:05, 10.0 it/s]" in line for line in shown)  # 55 steps left at 10 a second
    assert any("| 40/60 [00:14<00:02, 10.0 it/s]" in line for line in shown)  # the second picture: its own steps


@pytest.mark.parametrize(("kept", "batch", "said"), [
    (2, 4, "studio: cancelled; 2 of 4 pictures were kept: {0} and {1}."),
    (1, 3, "studio: cancelled; 1 of 3 pictures was kept: {0}."),
    (0, 4, "studio: cancelled; none of the 4 pictures was kept."),
    (0, 1, "studio: cancelled."),
])
def test_a_cancelled_batch_says_how_many_of_its_pictures_were_kept(kept, batch, said, studio_home, tiny_model_dir,
                                                                   tmp_path, monkeypatch, capsys):  # noqa: ANN001
    # The command said "cancelled after 2 of 4 pictures; wrote …", or only "cancelled." when none was finished,
    # where the window says "Cancelled: 2 of 4 pictures kept."
    registry = Registry()
    registry.add(Contribution(GENERATOR, "diffusers", "Cancelled generator", f"{__name__}:CancelledAfter"))
    monkeypatch.setattr(cli_generate, "open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))
    monkeypatch.setattr(CancelledAfter, "KEPT", kept)
    done = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--size", "64x64",
                       "--batch-count", str(batch), "-o", str(tmp_path / "fox.png"))
    assert done.returncode == EXIT_CANCELLED, done.stderr
    written = sorted(tmp_path.glob("fox*.png"))
    assert len(written) == kept
    assert done.stderr.splitlines()[-1] == said.format(*written)


def test_once_cancelling_the_label_stays_cancelling_through_the_model_load_and_the_steps(tmp_path):
    # After Ctrl+C during the model load the label went back to "Loading tiny-sd" for seconds, then "Image 1/1".
    import studio.cli_job as cli_job
    from studio.core.events import EngineStatus, JobProgress

    bar = cli_job.progress_bar(0)
    try:
        view = cli_job._JobView(GenerationRequest(model="m", prompt="p"), [], bar, None, cli_job.JobOutcome(),
                                Registry())
        view.show(EngineStatus(message="Loading tiny-sd…"))
        assert bar.desc == "Loading tiny-sd: "
        view.cancel_asked()
        view.show(EngineStatus(message="Loading tiny-sd…"))
        view.show(JobProgress(1, 3, 20, 0, 1, 1.0))
        assert (bar.desc, bar.n) == ("Cancelling (Ctrl+C again to stop at once): ", 3)  # the steps still count
    finally:
        bar.close()


def test_post_processing_a_bfloat16_picture_or_a_plugin_generators_picture_notes_no_precision(monkeypatch):
    """Post-processing runs no diffusion (and has no --speed): the bfloat16 its input's recipe records is not this
    job's precision; a plugin's generator does not run Studio's precision either."""
    from studio.cli_job import precision_notes
    from studio.core.events import GeneratedImage
    from studio.core.requests import PostProcessRequest

    monkeypatch.delenv("STUDIO_CPU_DTYPE", raising=False)
    recipe = Recipe(prompt="a", negative_prompt="", steps=2, sampler="Euler", cfg_scale=7, seed=1, width=64,
                    height=64, model_name="m", precision="bfloat16")
    outputs = (GeneratedImage(Image.new("RGB", (64, 64)), recipe),)
    post = PostProcessRequest(processor="upscale", image=Image.new("RGB", (64, 64)), recipe=recipe)
    assert precision_notes(post, outputs) == ()
    plugin = GenerationRequest(model="", prompt="a", generator="example.gen")
    assert precision_notes(plugin, outputs) == ()
    assert precision_notes(GenerationRequest(model="m", prompt="a"), outputs)  # Studio's own still says it
