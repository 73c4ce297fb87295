"""A picture copied to the clipboard outlives the window and Python itself (Qt lets go of the clipboard last):
it must be in Qt's own memory. One over a numpy array (the converters' own) was released after the interpreter
had gone, and Studio crashed on quitting after Copy Picture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import asyncio, sys
sys.path.insert(0, {benchmarks!r})
from real_window import real_window
from PIL import Image

async def copy(window):
    window.document.set_image(Image.new("RGB", (64, 48), (200, 30, 30)), "Open")
    await window.actions_.copy_picture()
    from PySide6.QtGui import QGuiApplication
    assert QGuiApplication.clipboard().image().size().width() == 64

with real_window() as (window, _service, run):
    run(copy(window))
print("copied")
"""


def test_studio_quits_cleanly_with_its_picture_on_the_clipboard(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(benchmarks=str(ROOT / "tests" / "benchmarks"))],
                          env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "copied"), done.stderr[-2000:]
