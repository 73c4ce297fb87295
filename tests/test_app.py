"""Start-up: the window paints before torch is imported, and quickly; what it opens, and what it does where it may
not write."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


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
    # Checked as the first frame is logged: closing the window saves the settings, under a file lock (filelock).
    code = ("import logging, sys; from studio.cli import main\n"
            "class AtFirstFrame(logging.Handler):\n"
            "    def emit(self, record):\n"
            "        if record.getMessage().startswith('First frame'):\n"
            f"            print('loaded:', sorted(m for m in {NOT_BEFORE_FIRST_FRAME!r} if m in sys.modules))\n"
            "logging.getLogger('studio').addHandler(AtFirstFrame())\n"
            "sys.exit(main(['--print-startup-time']))")
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


NO_DISPLAY = ("studio: there is no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set); the "
              "command line (studio generate …) works without one.\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY and WAYLAND_DISPLAY are Linux's")
@pytest.mark.parametrize("args", [["--open", "x.png"], ["--print-startup-time"]])
def test_no_display_is_one_sentence_and_exit_2_not_a_qt_abort(args, studio_home, tmp_path) -> None:  # noqa: ANN001
    # Qt aborted the process (exit 134) with "no Qt platform plugin could be initialized. Reinstalling the
    # application may fix this problem."
    env = {name: value for name, value in os.environ.items()
           if name not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")} | {"STUDIO_HOME": str(studio_home),
                                                                                 "PYTHONIOENCODING": "utf-8"}
    out = subprocess.run([sys.executable, "-m", "studio", *args], env=env, cwd=tmp_path, capture_output=True,
                         text=True, encoding="utf-8", timeout=60)
    assert (out.returncode, out.stderr, out.stdout) == (2, NO_DISPLAY, "")


def test_a_platform_that_needs_no_display_is_qt_s_to_use(monkeypatch) -> None:  # noqa: ANN001
    from studio.app import no_display

    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert no_display() is not None
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert no_display() is not None
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert no_display() is None
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert no_display() is None


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


READ_ONLY_WINDOW = """
import asyncio, json, sys
sys.path.insert(0, {tests!r})
from pathlib import Path

import pytest

import qasync
from PySide6.QtWidgets import QApplication
from studio_testing import collect_until_done, fake_registry, fake_request, run, terminal

from studio.app import end_pending_tasks, open_history
from studio.core.environment import GeneratorEnvironment
from studio.core.paths import studio_paths
from studio.core.settings import load_settings
from studio.plugin_host.registry import GENERATOR
from studio.services.jobs import JobService
from studio.services.outputs import OutputStore
from studio.ui.main_window import MainWindow

paths = studio_paths()
settings = load_settings(paths)
shown, recorded = open_history(paths)  # as run_app opens it
app = QApplication(sys.argv)
loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)
engine = Path({engine!r})
env = GeneratorEnvironment("cpu", engine, engine)
registry = fake_registry()
registry.instance(GENERATOR, "gated", env).release.set()
said = {{"read_only": shown.read_only, "path": str(shown.path), "recorded": recorded is not None}}


async def until(done):
    async with asyncio.timeout(60):
        while not done():
            await asyncio.sleep(0.02)


async def job(service):
    stream = service.subscribe()
    job_id = service.submit(fake_request(seed=7, prompt="a new picture"))
    end = terminal(await collect_until_done(stream, [job_id]), job_id)
    service.unsubscribe(stream)
    return {{"end": type(end).__name__, "notes": [*getattr(end, "warnings", ()), *end.notes],
            "saved": [str(o.path) if o.path else None for o in end.outputs]}}


async def scenario():
    # The window as run_app makes it: its service records in `recorded`, its gallery shows `shown`.
    service = JobService(registry, env, OutputStore(settings.outputs_dir), warm_up=False, history=recorded)
    window = MainWindow(settings, service, paths.data_dir, shown, paths.cache_dir)
    window.show()
    window.start()
    service.start()
    await until(lambda: window.gallery.model.rowCount() == 2 and "picture" in window.gallery.count_label.text())
    said["status"] = window.status.message_label.text()
    said["prompts"] = [window.gallery.model.entry_at(row).prompt for row in range(2)]
    said["writable outputs"] = await job(service)
    await asyncio.sleep(0.5)  # the gallery reloads 0.3 s after a picture arrives
    await window.gallery.reload()
    said["count"] = window.gallery.count_label.text()
    window.close()
    service.shutdown(timeout=10)


async def unsaved():
    # Outputs in the read-only data folder too: the picture is handed on unsaved, with a note.
    service = JobService(registry, env, OutputStore(paths.data_dir / "outputs"), warm_up=False, history=recorded)
    service.start()
    said["read-only outputs"] = await job(service)
    service.shutdown(timeout=10)


with loop:
    loop.run_until_complete(scenario())
    end_pending_tasks(loop)
run(unsaved())
print(json.dumps(said))
"""


def test_a_read_only_data_folder_shows_the_real_history_read_only_and_jobs_still_end_well(studio_home, tmp_path):
    """The window fell back to an empty temporary history where it could not write to the history: the person's
    pictures were gone from the gallery and search for the session. Now the real one is shown, read-only; a new
    picture is saved (in a writable outputs folder, or handed on unsaved with a note), never recorded, and no
    write is tried (which failed once per picture, each with a note)."""
    from studio_testing import why_root_cannot_give_up_writes, without_root_writes

    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings
    from studio.services.history_store import HistoryEntry, HistoryStore

    if why := why_root_cannot_give_up_writes():
        pytest.skip(why)

    paths = studio_paths()
    settings = load_settings(paths)
    settings.outputs_dir = tmp_path / "outputs"  # a writable outputs folder outside the read-only data folder
    save_settings(settings, paths)
    store = HistoryStore(paths.data_dir / "history.db")
    for prompt in ("a red fox", "a grey owl"):
        store.add(HistoryEntry(prompt=prompt, model_path="m", generator="gated", seed=1))
    store.close()
    data = paths.data_dir
    files = sorted(data.rglob("*"))
    before = (data / "history.db").read_bytes()
    for path in [data, *files]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    script = READ_ONLY_WINDOW.format(tests=str(Path(__file__).parent), engine=str(tmp_path / "engine"))
    try:
        done = subprocess.run([sys.executable, "-c", script], env=_env(studio_home), capture_output=True, text=True,
                              timeout=180, preexec_fn=without_root_writes if os.geteuid() == 0 else None)
    finally:
        for path in [data, *files]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout.splitlines()[-1])
    history = data / "history.db"
    assert (said["path"], said["read_only"], said["recorded"]) == (str(history), True, False)
    assert said["prompts"] == ["a grey owl", "a red fox"]  # the person's pictures, newest first
    assert said["status"] == (
        f"The history database {history} could not be opened for writing; check that Studio may write to it and to "
        f"its folder {data}. Studio shows the history read-only: new pictures are saved in the outputs folder "
        "(where Studio may write there) but not added to the history.")
    writable = said["writable outputs"]
    assert (writable["end"], writable["notes"]) == ("JobFinished", [])  # no write tried, no note per picture
    (saved,) = writable["saved"]
    assert Path(saved).parent.parent == tmp_path / "outputs" and Path(saved).is_file()
    assert said["count"] == "2 pictures"
    unsaved = said["read-only outputs"]
    assert (unsaved["end"], unsaved["saved"]) == ("JobFinished", [None])
    (note,) = unsaved["notes"]
    assert note.startswith(f"The image could not be saved in {data / 'outputs'}")
    assert note.endswith(": Permission denied. The picture is only on the canvas: keep it with Save Canvas As… in the "
                         "File menu.")
    assert sorted(data.rglob("*")) == files and history.read_bytes() == before  # nothing written
