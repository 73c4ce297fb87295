"""The engine thread yields the CPU to the window's thread: a lower scheduling priority, best effort."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from studio.engine import thread_priority
from studio.engine.thread_priority import ENGINE_NICENESS, lower_this_threads_priority

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")


def _niceness(native_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, native_id)


def _in_a_thread(work):  # noqa: ANN001, ANN202
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join(10)
    return result[0]


@linux_only
def test_on_linux_only_the_calling_thread_and_the_threads_it_starts_get_a_lower_priority():
    window_thread = _niceness(threading.get_native_id())

    def engine() -> tuple[str, int, int]:
        said = lower_this_threads_priority()
        helper = _in_a_thread(lambda: _niceness(threading.get_native_id()))  # torch's pool starts like this
        return said, _niceness(threading.get_native_id()), helper

    said, engine_niceness, helper_niceness = _in_a_thread(engine)
    expected = min(19, window_thread + ENGINE_NICENESS)
    assert engine_niceness == helper_niceness == expected
    assert said == f"nice {window_thread} -> {expected}"
    assert _niceness(threading.get_native_id()) == window_thread  # the window's thread keeps its own


@linux_only
def test_the_engine_worker_lowers_its_own_thread():
    from studio.engine.worker import EngineWorker

    started = threading.Event()
    worker = EngineWorker(lambda job, context: iter(()), lambda event: None,
                          warm_up=lambda status: started.set())
    worker.start()
    assert started.wait(10)
    try:
        assert _niceness(worker.thread.native_id) == min(19, _niceness(threading.get_native_id()) + ENGINE_NICENESS)
    finally:
        worker.shutdown()


def test_a_platform_that_refuses_leaves_the_priority_and_says_so(monkeypatch):  # noqa: ANN001
    def refuse(*args: object) -> None:
        raise PermissionError("Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    monkeypatch.setattr(os, "getpriority", lambda *args: 0)
    assert lower_this_threads_priority("linux") == "unchanged (Operation not permitted)"


def test_on_windows_it_asks_for_below_normal_and_on_macos_it_changes_nothing(monkeypatch):  # noqa: ANN001
    calls: list[tuple[object, int]] = []

    class Kernel32:
        refuse = False

        def GetCurrentThread(self) -> str:  # noqa: N802 - the Windows API's name
            return "this thread"

        def SetThreadPriority(self, thread: object, level: int) -> int:  # noqa: N802
            calls.append((thread, level))
            return 0 if self.refuse else 1

    kernel32 = Kernel32()
    monkeypatch.setattr(thread_priority.ctypes, "WinDLL", lambda name: kernel32, raising=False)
    assert lower_this_threads_priority("win32") == "below normal"
    assert calls == [("this thread", thread_priority.THREAD_PRIORITY_BELOW_NORMAL)]
    kernel32.refuse = True
    assert lower_this_threads_priority("win32") == "unchanged (SetThreadPriority refused)"
    assert lower_this_threads_priority("darwin") == "unchanged (no per-thread priority on this platform)"
