"""UI fixtures: a qasync loop that runs whenever pytest-qt spins Qt, and a real main window."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.core.environment import GeneratorEnvironment
from studio.core.paths import studio_paths
from studio.core.settings import Settings, load_settings
from studio.plugin_host.registry import builtin_registry
from studio.services.history_store import HistoryStore
from studio.services.jobs import JobService
from studio.services.outputs import OutputStore


@pytest.fixture(scope="session", autouse=True)
def clipboard_emptied_at_the_end(qapp) -> Iterator[None]:  # noqa: ANN001
    """Tests put pictures over numpy arrays on the clipboard (qt_images' converters, without the copy the window
    makes); left there, Qt released them after Python had finished, and the run crashed on exit (code 139)."""
    yield
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().clear()


@pytest.fixture(autouse=True)
def quitting_is_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A window closed with jobs still queued or unsaved canvas work asks first, from a task, and closes once
    answered; in tests that do not answer themselves (``window.asks_before_closing = True`` and their own
    ``confirm_quit``, ``confirm_unsaved_work``), closing quits and discards at once, as answering Quit and Discard
    would, instead of waiting on a box nobody sees."""
    from studio.ui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "asks_before_closing", False, raising=False)
    monkeypatch.setattr(MainWindow, "confirm_quit", lambda self, question: True, raising=False)


@pytest.fixture(scope="session")
def qt_loop(qapp) -> Iterator[asyncio.AbstractEventLoop]:  # noqa: ANN001
    """One qasync loop for the session (as in the app), marked running so tasks advance while
    qtbot waits, just as they do under app.exec()."""
    import qasync

    from studio.ui.theme import apply_dark_theme

    apply_dark_theme(qapp)  # as the app does: widgets are tested (and screenshotted) as people see them
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    loop.stop()
    loop.close()  # also shuts down the executor behind asyncio.to_thread
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


@pytest.fixture
def settings(studio_home: Path, tiny_model_dir: Path) -> Settings:
    settings = load_settings(studio_paths())
    settings.extra_model_paths = [tiny_model_dir]
    settings.generation.model = str(tiny_model_dir.resolve())
    settings.generation.width = settings.generation.height = 64
    settings.generation.steps = 4
    return settings


@pytest.fixture
def window(qtbot, qt_loop, settings: Settings):  # noqa: ANN001
    from studio.ui.main_window import MainWindow

    paths = studio_paths()
    history = HistoryStore(paths.data_dir / "history.db")
    service = JobService(builtin_registry(), GeneratorEnvironment("cpu", paths.data_dir, paths.cache_dir),
                         OutputStore(settings.outputs_dir), history=history)
    win = MainWindow(settings, service, paths.data_dir, history, paths.cache_dir)
    win.resize(1440, 900)  # a desktop's window; the offscreen screen is 800x800, and the first size fits a screen
    qtbot.addWidget(win)
    win.show()
    win.start()
    service.start()
    # The engine preloads the picked model; while diffusers loads, accelerate patches nn.Module for every thread
    # (empty weights), so a test building torch modules of its own waits until that is over.
    qtbot.waitUntil(lambda: win.status.model_label.text() == "tiny-sd", timeout=120_000)
    yield win
    win.close()  # before the store closes: a visible gallery still reads from it
    service.cancel_all()
    service.shutdown(timeout=10)
    history.close()
