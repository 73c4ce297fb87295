"""Ctrl+C and ``studio generate``: a job that has finished keeps its status, a cancelled batch keeps the pictures
it finished, written where ``-o`` asked, and one pressed before the job starts is a cancel, not a traceback. The
command runs in this process (Ctrl+C is a real SIGINT, which asyncio.run turns into the job's cancel) on Studio's
job service, with a quick stand-in for the diffusers generator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image
from studio_testing import ctrl_c_as_at_a_terminal, sigint_as_at_a_terminal, three_pictures_of_which_one_was_written

import studio.cli_generate as cli_generate
from studio.cli import main
from studio.cli_exit import EXIT_CANCELLED
from studio.core.environment import GeneratorEnvironment
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution, Registry
from studio.services.history_store import HistoryStore, default_history_path
from studio.services.jobs import JobService


class QuickGenerator:
    """Stands in for the diffusers generator: a flat picture a seed, the cancel looked at before each."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def generate(self, request: GenerationRequest, context: Any  # noqa: ANN401 - the engine's JobContext
                 ) -> Iterator[tuple[Image.Image, Recipe]]:
        for index in range(request.batch_count):
            context.check_cancelled()
            seed = request.seed_for(index)
            context.report_progress(request.steps, request.steps, index)
            yield Image.new("RGB", (request.width, request.height), (seed % 256, 0, 0)), Recipe(
                request.prompt, request.negative_prompt, request.steps, request.scheduler, request.cfg_scale, seed,
                request.width, request.height, "quick")


class CtrlCFilter:
    """A filter during which the person presses Ctrl+C: it finishes the picture anyway (the cancel came too late
    for it), once the job is cancelled."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def process(self, image: Image.Image, params: Mapping[str, Any], context: Any) -> Image.Image:  # noqa: ANN401
        press_ctrl_c()
        context.status(message="Finishing")  # wakes the command's event loop, whose thread takes the signal
        waited = time.monotonic()
        while not context.is_cancelled():
            assert time.monotonic() - waited < 30, "the job was not cancelled"
            threading.Event().wait(0.01)
        return image


@pytest.fixture(autouse=True)
def _ctrl_c_reaches_python() -> Iterator[None]:
    """Each test's Ctrl+C is taken as at a terminal, also where pytest was started with SIGINT ignored."""
    with ctrl_c_as_at_a_terminal():
        yield


@pytest.fixture
def quick_engine(studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``studio generate`` with a registry whose "diffusers" generator makes flat pictures at once (the model
    folder is still checked, as for any job), and the filter "ctrl-c"."""
    registry = Registry()
    registry.add(Contribution(GENERATOR, "diffusers", "Quick generator", f"{__name__}:QuickGenerator"))
    registry.add(Contribution(POSTPROCESSOR, "ctrl-c", "Ctrl+C", f"{__name__}:CtrlCFilter"))
    monkeypatch.setattr(cli_generate, "open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))


def press_ctrl_c() -> None:
    """SIGINT to this process, as a terminal sends it; asyncio.run's handler must be the one that takes it."""
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    signal.raise_signal(signal.SIGINT)


def test_a_ctrl_c_once_the_job_has_finished_keeps_its_status(quick_engine, tiny_model_dir, tmp_path, monkeypatch,
                                                              capsys):
    # Pressed while the engine shut down, after the pictures were written and said, it made the command say
    # "cancelled." and exit 130.
    stop = JobService.shutdown

    def shutdown(self: JobService, timeout: float = 5.0) -> bool:
        press_ctrl_c()
        return stop(self, timeout)

    monkeypatch.setattr(JobService, "shutdown", shutdown)
    output = tmp_path / "fox.png"
    code = main(["generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--size", "64x64", "--seed", "4",
                 "--batch-count", "2", "-o", str(output)])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "cancelled" not in said.err
    for index, seed in ((1, 4), (2, 5)):
        assert f"Saved {tmp_path / f'fox-{index}.png'} (seed {seed}, 64x64)" in said.out
        assert (tmp_path / f"fox-{index}.png").is_file()


def test_a_ctrl_c_during_a_batch_writes_the_pictures_it_finished_and_says_where(quick_engine,
                                                                                tiny_model_dir, tmp_path, capsys):
    # The first picture, finished as the cancel came, went to the outputs folder and the history, but not to -o:
    # the command stopped listening to the job at once, and said only "cancelled.".
    code, said, first = three_pictures_of_which_one_was_written(tiny_model_dir, tmp_path, capsys, "--post", "ctrl-c")
    assert code == EXIT_CANCELLED
    assert said.err.splitlines()[-1] == f"studio: cancelled; 1 of 3 pictures was kept: {first}."
    history = HistoryStore(default_history_path())  # kept there too, as before
    try:
        # And that the rest was cancelled (it was not said in the history), as the window's Cancel records it.
        assert [(entry.outcome, entry.seed, entry.message) for entry in history.search()] == [
            ("cancelled", 4, "The job was cancelled after 1 of 3 pictures."), ("ok", 4, "")]
    finally:
        history.close()


def test_ctrl_c_on_the_command_line_keeps_the_finished_pictures(tiny_model_dir, tmp_path):
    """``studio generate`` as a person runs it, on the tiny model: Ctrl+C once the second picture has begun."""
    home, output = tmp_path / "home", tmp_path / "fox.png"
    env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_DEVICE="cpu", PYTHONIOENCODING="utf-8")
    command = [sys.executable, "-m", "studio", "generate", "--model", str(tiny_model_dir), "--prompt", "a fox",
               "--size", "64x64", "--steps", "400", "--seed", "7", "--batch-count", "3", "-o", str(output)]
    with subprocess.Popen(command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, encoding="utf-8",
                          preexec_fn=sigint_as_at_a_terminal) as process:
        try:
            shown = ""
            while "Image 2/3" not in shown:  # the bar says so once the first picture was handed over
                char = process.stderr.read(1)
                assert char, f"the command ended first: {shown}"
                shown += char
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
    first = tmp_path / "fox-1.png"
    assert process.returncode == EXIT_CANCELLED, err
    assert sorted(path.name for path in tmp_path.glob("fox*")) == ["fox-1.png"]
    assert f"Saved {first} (seed 7, 64x64)" in out.splitlines()
    assert err.strip().splitlines()[-1] == f"studio: cancelled; 1 of 3 pictures was kept: {first}."


def interrupted(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt  # as Python raises a Ctrl+C outside an event loop


@pytest.mark.parametrize("command, where", [
    (["generate", "--model", "some-model", "--prompt", "a fox"], "studio.cli_request.resolve_model"),
    (["postprocess", "{picture}", "--method", "color"], "studio.cli_generate.open_host"),
])
def test_a_ctrl_c_before_the_job_starts_is_a_cancel_not_a_traceback(command, where, studio_home, tmp_path,
                                                                     monkeypatch, capsys):
    # While the request was built (models looked up, plugins read), a Ctrl+C ended the command with a traceback.
    picture = tmp_path / "picture.png"
    Image.new("RGB", (16, 16)).save(picture)
    monkeypatch.setattr(where, interrupted)
    try:
        code = main([text.format(picture=picture) for text in command] + ["-o", str(tmp_path / "out.png")])
    except KeyboardInterrupt:
        pytest.fail("the Ctrl+C reached the interpreter, which prints a traceback")
    assert (code, capsys.readouterr().err) == (EXIT_CANCELLED, "studio: cancelled.\n")
    assert not (tmp_path / "out.png").exists()
