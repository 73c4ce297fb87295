"""What diffusers and peft log or warn while one thread calls them, kept off the terminal and put in Studio's log as
one entry; what other threads log or warn meanwhile goes where it always went.

The engine thread loads LoRAs while the window's thread runs, so nothing here is process-wide for the time of a
call: log records are told apart by their thread, and so are warnings, through one ``warnings.showwarning`` that
hands every other thread's on. (``warnings.catch_warnings`` would take all threads' warnings, and two threads
restoring it out of order leave the warnings module sending everything to a list nobody reads.)

The warnings taken are those shown, as the process's warning filters let through: Python shows a UserWarning
once per line of code that warns (a second load warning the same from the same place adds nothing to its entry)
and no DeprecationWarning raised in library code. Warning filters are process-wide, so making every warning of
one thread's load shown would change what other threads show meanwhile.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

log = logging.getLogger(__name__)

# diffusers logs through its own stderr handler (its logger does not propagate). peft logs nothing: it says
# everything with warnings.warn, which the warnings part takes.
LIBRARY_LOGGERS = ("diffusers",)
# peft warns so on every adapter after the first; several adapters are the point of a LoRA load.
EXPECTED_WARNINGS = ("Already found a `peft_config` attribute",)


class _KeptRecords(logging.Filter):
    """Keeps (and stops) the records logged on one thread; other threads' records pass as they were."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread:
            return True
        if not self.records or self.records[-1] is not record:  # once, though several handlers ask
            self.records.append(record)
        return False


class _WarningsByThread:
    """``warnings.showwarning`` while any thread keeps its warnings: a keeping thread's go to its list, every other
    thread's to the showwarning that was in place before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[int, list[str]] = {}
        self._passed_on: Callable[..., Any] = warnings.showwarning

    def show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        kept = self._kept.get(threading.get_ident())
        if kept is None:
            self._passed_on(message, category, filename, lineno, file, line)
        elif not str(message).startswith(EXPECTED_WARNINGS):
            kept.append(f"{category.__name__}: {message}")

    @contextmanager
    def keeping(self) -> Iterator[list[str]]:
        """The warnings shown on this thread meanwhile, as "Category: message" lines."""
        thread, kept = threading.get_ident(), []
        with self._lock:
            outer = self._kept.get(thread)
            if warnings.showwarning != self.show:  # put in again where someone's catch_warnings took it out
                self._passed_on = warnings.showwarning
                warnings.showwarning = self.show
            self._kept[thread] = kept
        try:
            yield kept
        finally:
            with self._lock:
                if outer is None:
                    del self._kept[thread]
                else:
                    self._kept[thread] = outer
                # Only while it is still ours: another showwarning put in since must stay.
                if not self._kept and warnings.showwarning == self.show:
                    warnings.showwarning = self._passed_on


_warnings_by_thread = _WarningsByThread()


@contextmanager
def library_output_to_studio_log(what: str) -> Iterator[None]:
    """What diffusers and peft log or warn on this thread meanwhile goes to Studio's log as one entry ("While
    ``what``: …"), not to the terminal: a LoRA that does not fit makes diffusers log its whole state-dict error
    there (a "size mismatch" line per layer), while Studio says what happened in a sentence."""
    kept = _KeptRecords()
    # On the handlers: a logger's own filters never see what its child loggers (diffusers.loaders.peft) log.
    handlers = [handler for name in LIBRARY_LOGGERS for handler in logging.getLogger(name).handlers]
    for handler in handlers:
        handler.addFilter(kept)
    warned: list[str] = []
    try:
        with _warnings_by_thread.keeping() as warned:
            yield
    finally:
        for handler in handlers:
            handler.removeFilter(kept)
        lines = [f"{record.name} {record.levelname}: {record.getMessage()}" for record in kept.records]
        if lines := lines + warned:
            log.warning("While %s:\n%s", what, "\n".join(lines))
