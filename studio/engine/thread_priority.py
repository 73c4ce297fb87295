"""The engine thread asks the operating system to let the window's thread go first.

When both want a core (a CPU job, or a GPU job beside a busy desktop), the scheduler otherwise shares time
evenly, and the window's timer ticks and paints wait behind the engine's slices. A lower priority costs the
engine nothing while a core is free: it only decides who runs first when they compete. Threads the engine
thread starts afterwards (torch's CPU worker pool, on Linux) inherit it, so the whole engine yields.

No torch here: this runs first thing on the engine thread.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

ENGINE_NICENESS = 10  # Linux: nice 10 weighs about a tenth of nice 0 when both are runnable
THREAD_PRIORITY_BELOW_NORMAL = -1  # Windows' SetThreadPriority level one step below the window's thread


def lower_this_threads_priority(platform: str = sys.platform) -> str:
    """Lower the calling thread's scheduling priority; says what was done (for the log and tests).

    Best effort: a platform that refuses (a container's policy, a sandbox) leaves the priority as it was.
    macOS is left alone: a lower quality-of-service class there moves a thread to the efficiency cores,
    which would slow every job rather than only yield to the window.
    """
    try:
        if platform.startswith("linux"):
            thread = threading.get_native_id()
            before = os.getpriority(os.PRIO_PROCESS, thread)  # per thread on Linux: a thread id is a task id
            after = min(19, before + ENGINE_NICENESS)
            os.setpriority(os.PRIO_PROCESS, thread, after)
            return f"nice {before} -> {after}"
        if platform == "win32":
            kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]  # only on Windows
            if not kernel32.SetThreadPriority(kernel32.GetCurrentThread(), THREAD_PRIORITY_BELOW_NORMAL):
                raise OSError("SetThreadPriority refused")
            return "below normal"
    except (OSError, AttributeError) as exc:
        log.info("The engine thread keeps its priority: %s", exc)
        return f"unchanged ({exc})"
    return "unchanged (no per-thread priority on this platform)"
