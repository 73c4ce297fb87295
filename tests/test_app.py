"""Start-up: the window paints before torch is imported, and quickly."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def _env(studio_home) -> dict[str, str]:  # noqa: ANN001
    return {**os.environ, "STUDIO_HOME": str(studio_home), "QT_QPA_PLATFORM": "offscreen"}


def test_window_modules_do_not_import_torch(studio_home) -> None:  # noqa: ANN001
    code = ("import sys, studio.app, studio.cli, studio.ui.main_window; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(studio_home), capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# Modules the first frame must not wait for: the engine's (imported on its thread once the window shows), the
# ControlNet preprocessors' OpenCV (at the first Canny), filelock (at the first autosave), packaging (when plugin
# manifests are read, after the first frame) and Pillow's PNG plugin (at the first picture saved or opened).
NOT_BEFORE_FIRST_FRAME = ("torch", "diffusers", "transformers", "accelerate", "safetensors", "huggingface_hub", "peft",
                          "spandrel", "cv2", "filelock", "packaging", "PIL.PngImagePlugin")


def test_first_frame_is_shown_quickly_without_torch(studio_home) -> None:  # noqa: ANN001
    # Checked once the window has closed again: what is not loaded then was not loaded at the first frame either.
    code = ("import sys; from studio.cli import main; rc = main(['--print-startup-time']); "
            f"print('loaded:', sorted(m for m in {NOT_BEFORE_FIRST_FRAME!r} if m in sys.modules)); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], env=_env(studio_home), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    match = re.search(r"First frame ([\d.]+) s after process start", out.stdout)
    assert match, out.stdout
    assert "loaded: []" in out.stdout, out.stdout
    # The target is 1 s on a quiet machine; CI machines are shared, so only a generous bound is asserted.
    assert float(match.group(1)) < 5.0


def test_the_process_start_is_read_to_the_clock_tick_not_to_the_whole_second(studio_home) -> None:  # noqa: ANN001
    # /proc/stat's btime is whole seconds: measuring from it added up to a second to every start-up figure.
    import time

    before = time.time()
    code = "from studio.app import process_start_time; print(repr(process_start_time()))"
    out = subprocess.run([sys.executable, "-c", code], env=_env(studio_home), capture_output=True, text=True,
                         check=True)
    after = time.time()
    started = float(out.stdout)
    tick = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0
    assert before - 2 * tick - 0.005 <= started <= after


def test_a_missing_x11_library_is_named_instead_of_a_qt_abort(monkeypatch) -> None:  # noqa: ANN001
    import ctypes.util

    from studio.app import missing_display_library

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert "libxcb-cursor0" in missing_display_library()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.0")
    assert missing_display_library() is None
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert missing_display_library() is None


def test_the_window_keeps_ticking_while_the_engine_starts() -> None:
    """The engine imports torch, transformers and diffusers beside the window: collector passes over what they
    make, and torch's libraries opened under the GIL, held the window up 0.2-0.3 s at a time; now 11-34 ms."""
    from pathlib import Path

    probe = Path(__file__).parent / "benchmarks" / "startup_probe.py"
    out = subprocess.run([sys.executable, str(probe), "--runs", "1"], capture_output=True, text=True, timeout=240,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    match = re.search(r"ready [\d.]+ s after the first frame; \d+ ticks: max gap ([\d.]+) ms", out.stdout)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) < 100, out.stdout  # a shared CI machine's noise stays far below the stalls


QUIT_WITH_AN_EVENT_UNREAD = """
import asyncio, sys
sys.path.insert(0, {benchmarks!r})
from real_window import real_window

async def quit_as_an_event_arrives(window):
    window.start()
    await asyncio.sleep(0.3)
    window.jobs._stream.put(object())  # the window's reader of the engine's events is woken; the loop ends first

with real_window() as (window, _service, run):
    run(quit_as_an_event_arrives(window))
print("ended")
"""


def test_tasks_still_waiting_at_the_end_are_ended_before_python_exits(studio_home) -> None:  # noqa: ANN001
    """The window's tasks (its reader of the engine's events, the autosave) left pending when the loop ends were
    finalised after asyncio's own state had gone as Python exited, and it crashed (code 139): ``end_pending_tasks``
    ends them first, as ``asyncio.run`` does."""
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parent / "benchmarks"
    done = subprocess.run([sys.executable, "-c", QUIT_WITH_AN_EVENT_UNREAD.format(benchmarks=str(benchmarks))],
                          env=_env(studio_home), capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "ended"), done.stderr[-2000:]
