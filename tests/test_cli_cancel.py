"""Ctrl+C and ``studio generate``: a job that has finished keeps its status, a cancelled batch keeps the pictures
it finished, written where ``-o`` asked. The command runs in this process (Ctrl+C is a real SIGINT, which
asyncio.run turns into the job's cancel) on Studio's job service, with a quick stand-in for the diffusers
generator."""

from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
from studio_testing import control_registry

import studio.cli_generate as cli_generate
from studio.cli import main
from studio.services.jobs import JobService


@pytest.fixture
def quick_engine(studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``studio generate`` with a registry whose "diffusers" generator makes flat pictures at once (the model
    folder is still checked, as for any job)."""
    registry = control_registry()
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
