"""What a ``studio`` command prints reaches a terminal whose encoding lacks its characters (LC_ALL=C,
PYTHONIOENCODING=latin-1) as escapes, never as a UnicodeEncodeError after the work was done."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from studio.cli import main


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
