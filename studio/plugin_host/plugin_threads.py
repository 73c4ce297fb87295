"""Threads a plugin started and left running: Python cannot stop a thread, so switching a plugin off or removing it
leaves them running until Studio quits. Counted here so that the person is told, not left to wonder.

A thread counts as the plugin's when the code it was started to run (its target, a Timer's function, or the ``run``
of a Thread subclass) is defined in one of the plugin's packages. A thread a plugin started through a library
(a thread pool of concurrent.futures, say) runs the library's code and is not counted.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable


def threads_running_code_of(packages: Iterable[str]) -> list[threading.Thread]:
    """The live threads whose code is defined in one of these top-level packages."""
    tops = set(packages)
    if not tops:
        return []
    return [thread for thread in threading.enumerate()
            if thread.is_alive() and _module_of(thread).partition(".")[0] in tops]


def _module_of(thread: threading.Thread) -> str:
    if isinstance(thread, threading.Timer):
        code: object = thread.function
    elif type(thread).run is not threading.Thread.run:
        code = type(thread).run
    else:
        code = getattr(thread, "_target", None)  # CPython keeps it while the thread runs (and drops it after)
    while isinstance(code, functools.partial):
        code = code.func
    module = getattr(code, "__module__", None)
    return module if isinstance(module, str) else ""
