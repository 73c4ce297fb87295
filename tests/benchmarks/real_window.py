"""Studio's real main window for the benchmarks: offscreen unless a display is set, in a throwaway STUDIO_HOME,
on a qasync loop as in the app (the engine thread starts only when the benchmark starts the service)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "ui")]


@contextmanager
def real_window(model: Path | None = None, size: int = 512, steps: int = 20,
                device: str = "auto") -> Iterator[tuple[Any, Any, Any]]:
    """Yields (window, service, run) where run(coroutine) runs it on the window's loop until it ends."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["STUDIO_HOME"] = tempfile.mkdtemp(prefix="studio-benchmark-")

    import qasync
    from PySide6.QtWidgets import QApplication

    from studio.core.environment import GeneratorEnvironment
    from studio.core.paths import studio_paths
    from studio.app import end_pending_tasks
    from studio.core.settings import load_settings
    from studio.plugin_host.registry import builtin_registry
    from studio.services.history_store import HistoryStore
    from studio.services.jobs import JobService
    from studio.services.outputs import OutputStore
    from studio.ui.main_window import MainWindow
    from studio.ui.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(sys.argv)
    apply_dark_theme(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    paths = studio_paths()
    settings = load_settings(paths)
    if model is not None:
        settings.extra_model_paths = [model]
        settings.generation.model = str(model.resolve())
    settings.generation.width = settings.generation.height = size
    settings.generation.steps = steps
    history = HistoryStore(paths.data_dir / "history.db")
    service = JobService(builtin_registry(), GeneratorEnvironment(device, paths.data_dir, paths.cache_dir),
                         OutputStore(settings.outputs_dir), history=history)
    window = MainWindow(settings, service, paths.data_dir, history, paths.cache_dir)
    window.resize(1400, 1000)
    window.show()

    def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
        with loop:
            try:
                return loop.run_until_complete(coroutine)
            finally:
                end_pending_tasks(loop)

    try:
        yield window, service, run
    finally:
        window.close()
        service.shutdown(timeout=10)
        history.close()
