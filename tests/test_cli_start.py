"""What every ``studio`` command does at its start: what it prints reaches a terminal whose encoding lacks its
characters (LC_ALL=C, PYTHONIOENCODING=latin-1) as escapes, never as a UnicodeEncodeError after the work was done;
a STUDIO_HOME that cannot be Studio's folder is said once, before anything looks inside it."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from studio.cli import main
from studio_testing import studio_here


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_prompt_the_terminal_cannot_show_is_printed_escaped(tmp_path: Path, monkeypatch, encoding: str):
    # `studio inspect` (and `history search`, and generate's "Saved …/✓3.png") ended in UnicodeEncodeError, exit 1.
    picture = tmp_path / "fox.png"
    text = PngImagePlugin.PngInfo()
    text.add_text("parameters", "a fox ü ✓ 狐\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 8x8")
    Image.new("RGB", (8, 8)).save(picture, pnginfo=text)
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    terminal = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(terminal, encoding=encoding))
    code = main(["inspect", str(picture)])
    sys.stdout.flush()
    shown = terminal.getvalue().decode(encoding)
    expected = "a fox ü \\u2713 \\u72d0" if encoding == "latin-1" else "a fox \\xfc \\u2713 \\u72d0"
    assert (code, expected in shown, "Seed" in shown) == (0, True, True), shown


@pytest.mark.parametrize("inside", [False, True])
@pytest.mark.parametrize("command", [["models", "list"], ["history", "search"]])
def test_a_studio_home_that_is_a_file_is_said_once_before_any_command(tmp_path, monkeypatch, capsys, command,
                                                                       inside):
    # "The history database …/afile/data/history.db could not be looked at: Not a directory.", or a models list
    # of ".../afile/data/models" that could never hold one.
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    home = afile / "studio" if inside else afile
    monkeypatch.setenv("STUDIO_HOME", str(home))
    done = studio_here(capsys, *command)
    said = (f"studio: STUDIO_HOME {home} is inside {afile}, which is a file, not a folder; point it at a folder.\n"
            if inside else f"studio: STUDIO_HOME {afile} is a file, not a folder; point it at a folder.\n")
    assert (done.returncode, done.stdout, done.stderr) == (2, "", said)
