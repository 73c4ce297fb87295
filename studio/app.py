"""Composition root for the window: Qt + qasync, the job service, then the engine after the first frame.

torch/diffusers are imported on the engine thread only after the window has painted, so the
window appears in well under a second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from studio.cli_exit import EXIT_BAD_INPUT
from studio.core.environment import GeneratorEnvironment
from studio.core.paths import StudioPaths, log_to_file, studio_paths
from studio.core.settings import load_settings

if TYPE_CHECKING:
    from studio.services.history_store import HistoryStore

log = logging.getLogger("studio")


def process_start_time() -> float:
    """Wall-clock time this process started (Linux: from /proc; elsewhere: now, a lower bound).

    The start is counted in clock ticks since boot; it is set against CLOCK_BOOTTIME now, not against
    /proc/stat's btime, which is whole seconds and would add up to a second to every measure.
    """
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        since_start = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - since_start
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


# Qt's platform plugins that draw on a display server: without one, Qt aborts the process (exit 134) with "no Qt
# platform plugin could be initialized. Reinstalling the application may fix this problem."
_DISPLAY_PLATFORMS = ("xcb", "wayland", "wayland-egl", "wayland-brcm")


def no_display() -> str | None:
    """A sentence when, on Linux, there is no display server to open the window on (neither DISPLAY nor
    WAYLAND_DISPLAY set) and Qt is left to pick a platform that needs one; else None. A platform chosen in
    QT_QPA_PLATFORM that needs none (offscreen, vnc, eglfs…) is Qt's to use."""
    if not sys.platform.startswith("linux") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    chosen = [name.split(":")[0].strip() for name in os.environ.get("QT_QPA_PLATFORM", "").split(";")]
    if any(name and name not in _DISPLAY_PLATFORMS for name in chosen):
        return None
    return ("there is no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set); the command line "
            "(studio generate …) works without one.")


def missing_display_library() -> str | None:
    """A sentence when Qt's X11 plugin would abort for want of libxcb-cursor (Qt >= 6.5), else None."""
    if not sys.platform.startswith("linux") or os.environ.get("WAYLAND_DISPLAY") or not os.environ.get("DISPLAY"):
        return None
    if os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb":
        return None
    import ctypes.util

    if ctypes.util.find_library("xcb-cursor") is None:
        return ("Studio's window needs the system library libxcb-cursor0 on X11; install it "
                "(for example: sudo apt install libxcb-cursor0) and start Studio again.")
    return None


def open_history(paths: StudioPaths) -> tuple[HistoryStore, HistoryStore | None]:
    """The history the window shows, and the one new pictures are recorded in. Where Studio may not write to it (a
    read-only data folder or disk), it is opened read-only: the gallery and search show the person's pictures, and
    new ones are saved but not recorded (None: a write per picture would fail, each with a note). Where it cannot
    be used at all, a temporary one, so Studio still runs. Either way its notice says so."""
    import tempfile

    from studio.services.history_errors import HistoryError, HistoryNotWritable
    from studio.services.history_store import HistoryStore

    path = paths.data_dir / "history.db"
    try:
        store = HistoryStore(path)
        return store, store
    except HistoryNotWritable as exc:
        try:
            shown = HistoryStore(path, read_only=True)
        except HistoryError as unreadable:
            log.error("History unavailable: %s; read-only: %s", exc, unreadable)
            # A schema's sentence says more (made by a newer Studio); "unable to open" again says no more.
            problem: HistoryError = exc if isinstance(unreadable, HistoryNotWritable) else unreadable
        else:
            log.warning("History opened read-only: %s", exc)
            shown.notice = " ".join(filter(None, (
                f"{exc} Studio shows the history read-only: new pictures are saved in the outputs folder (where "
                "Studio may write there) but not added to the history.", shown.notice)))  # and a -wal file's note
            return shown, None
    except HistoryError as exc:
        log.error("History unavailable: %s", exc)
        problem = exc
    store = HistoryStore(Path(tempfile.mkdtemp(prefix="studio-history-")) / "history.db")
    store.notice = f"{problem} This session's history is kept only until Studio closes."
    return store, store


def run_app(print_startup_time: bool = False, open_path: str | None = None, safe_mode: bool = False) -> int:
    started = process_start_time()
    if (nowhere := no_display()) is not None:
        print(f"studio: {nowhere}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = missing_display_library()
    if problem:
        print(f"studio: {problem}", file=sys.stderr)
        return 1
    # Qt-free modules first: once PySide6 is loaded, its import hook reads the source of every module imported after.
    from studio.plugin_host.host import PluginHost
    from studio.services.jobs import JobService
    from studio.services.outputs import OutputStore

    from PySide6.QtWidgets import QApplication

    import qasync

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    app.setDesktopFileName("studio")

    from studio.ui.main_window import MainWindow
    from studio.ui.theme import apply_dark_theme

    paths = studio_paths()
    log_to_file(paths)
    settings = load_settings(paths)
    apply_dark_theme(app)
    env = GeneratorEnvironment.from_settings(settings, paths)
    history, recorded = open_history(paths)
    plugins = PluginHost(paths.plugins_dir, safe_mode=safe_mode)
    service = JobService(None, env, OutputStore(settings.outputs_dir), history=recorded, plugins=plugins)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = MainWindow(settings, service, paths.data_dir, history, paths.cache_dir)

    def on_first_frame() -> None:
        seconds = time.time() - started
        log.info("First frame %.3f s after process start", seconds)
        if print_startup_time:
            print(f"First frame {seconds:.3f} s after process start")
            app.quit()
            return
        plugins.refresh()  # manifests only (no plugin code runs); the picker and Filters menu follow
        if safe_mode:
            window.setWindowTitle("Studio (safe mode)")
            window.status.add_notice("Safe mode: no plugin is loaded this session.")
        window.start()  # subscribe first: no engine event can be missed
        # Engine thread: imports torch and picks the device in the background, then loads the picked model
        # while the person writes a prompt (unless a job comes first).
        service.start()
        if open_path:
            window.actions_.run(window.actions_.open_path(Path(open_path)))

    window.first_frame.connect(on_first_frame)
    window.show()
    try:
        with loop:
            loop.run_forever()
            end_pending_tasks(loop)
    finally:
        service.shutdown(timeout=3.0)
        # The window's close waited for another program's lock already, and said what was not added; entries kept
        # since (a job cancelled at close) are journaled and added at the next open, so this waits only briefly.
        if said := history.close(wait_for_pending=1.0):
            log.info("Closing the history: %s", said)
    return 0


def end_pending_tasks(loop: asyncio.AbstractEventLoop, timeout: float = 3.0) -> None:
    """Cancel the tasks still waiting once the window has closed (the engine events' reader, a thumbnail's read) and
    let them end, as ``asyncio.run`` does. Left pending, they were finalised after asyncio's own state had gone when
    Python exited: a queue's reader woken just before the quit made Python crash on exit (code 139)."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=timeout))
