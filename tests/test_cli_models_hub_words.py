"""``studio models download`` with no hub to reach, and ``list`` with a download stopped half-way: the command line's
own words (its commands), where the window names its buttons."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from filelock import FileLock
from hub_server import isolated_hub_client
from studio_testing import studio_here
from unfinished_download import REPO, stop_half_way, vae_hub

from studio.core.units import format_size
from studio.services.download_folders import WORK_DIR
from studio.services.unfinished_downloads import unfinished_downloads


def test_an_unreachable_hub_says_the_import_command(studio_home: Path, tmp_path: Path, capsys,  # noqa: ANN001
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with isolated_hub_client(tmp_path / "hf", monkeypatch):
        result = studio_here(capsys, "models", "download", "tester/tiny-sd", "--endpoint", f"http://127.0.0.1:{port}",
                             "-y")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"studio: Could not reach the model hub at http://127.0.0.1:{port}; Studio may be "
                             "offline. Import a file you already have with `studio models import PATH`.\n")


def test_list_says_each_download_stopped_half_way_on_a_line(studio_home: Path, tmp_path: Path, capsys,  # noqa: ANN001
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A download stopped by a crash left its partial files in models/.downloads, and `list` said nothing of them."""
    models = studio_home / "data" / "models"
    with isolated_hub_client(tmp_path / "hf", monkeypatch), vae_hub() as hub:
        total = stop_half_way(hub, models)
    [stopped] = unfinished_downloads(models)
    result = studio_here(capsys, "models", "list", "--no-hash")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"Unfinished download {REPO}: {format_size(stopped.done_bytes)} of {format_size(total)} downloaded; "
        f"`studio models download {REPO}` resumes it, or delete {stopped.folder} to discard it.")
    assert result.stdout.startswith(f"No models in {models}.")  # and that sentence before it
    only_loras = studio_here(capsys, "models", "list", "--no-hash", "--kind", "lora")
    assert "Unfinished" not in only_loras.stdout  # of no kind yet
    with FileLock(str(stopped.folder / "tiny-vae" / WORK_DIR / "lock")):  # as another Studio downloading it holds it
        running = studio_here(capsys, "models", "list", "--no-hash")
    assert running.returncode == 0, running.stderr
    assert "Unfinished" not in running.stdout  # it is not stopped, and deleting its folder would break it
