"""Work survives a crash: a killed Studio's autosave is found and restored at the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.paths import studio_paths
from studio.core.settings import load_settings
from studio.plugin_host.registry import builtin_registry
from studio.services.autosave import find_recoverable
from studio.services.jobs import JobService


def _wait_for(predicate, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_killed_studio_is_restored_at_the_next_start(qtbot, qt_loop, studio_home, tmp_path, monkeypatch):  # noqa: ANN001
    import threading

    from studio.ui import canvas as canvas_module
    from studio.ui import main_window as main_window_module

    picture = Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    path = tmp_path / "work.png"
    picture.save(path)
    env = {**os.environ, "STUDIO_HOME": str(studio_home), "QT_QPA_PLATFORM": "offscreen",
           "STUDIO_AUTOSAVE_SECONDS": "0.3", "STUDIO_DEVICE": "cpu"}
    process = subprocess.Popen([sys.executable, "-m", "studio", "--open", str(path)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    autosave_root = studio_paths().data_dir / "autosave"
    try:
        saved = _wait_for(lambda: any(autosave_root.glob("*/document.json")), timeout=60)
        assert saved, process.stderr.read().decode() if process.poll() is not None else "no autosave in 60 s"
        assert not find_recoverable(autosave_root)  # the running Studio holds its lock: nothing to recover yet
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL

    from studio.ui.main_window import MainWindow

    paths = studio_paths()
    settings = load_settings(paths)
    service = JobService(builtin_registry(), GeneratorEnvironment("cpu", paths.data_dir, paths.cache_dir),
                         warm_up=False)
    window = MainWindow(settings, service, paths.data_dir)
    qtbot.addWidget(window)
    offered: list[Path] = []
    threads: list[str] = []
    real_find = main_window_module.find_recoverable

    def finding(root):  # noqa: ANN001, ANN202
        threads.append(threading.current_thread().name)
        return real_find(root)

    def on_this_thread(image):  # noqa: ANN001, ANN202
        raise AssertionError("the restored picture was converted on the window's thread")

    monkeypatch.setattr(main_window_module, "find_recoverable", finding)
    monkeypatch.setattr(canvas_module, "pil_to_qpixmap", on_this_thread)
    window.start(recovery_choice=lambda found: offered.append(found.folder) or True)
    service.start()
    try:
        qtbot.waitUntil(window.recovery.done, timeout=10_000)
        assert window.recovery.result() is True
        assert len(offered) == 1 and threads and threading.main_thread().name not in threads
        np.testing.assert_array_equal(np.asarray(window.document.image), np.asarray(picture))
        assert window.document.history_labels() == ["Restore after a crash"]
        assert not offered[0].exists()  # offered once, not again at every start
    finally:
        window.close()
        service.shutdown()
    assert not list(autosave_root.glob("*/document.json"))  # a clean exit leaves nothing behind
