"""``studio models download`` with no hub to reach, and ``list`` with a download stopped half-way: the command line's
own words (its commands), where the window names its buttons."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hub_server import isolated_hub_client
from studio_testing import studio_here


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
