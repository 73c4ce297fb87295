"""The engine thread: runs jobs one at a time from a queue and reports immutable events.

No torch here: this module is imported at start-up; the work itself arrives as a handler.
"""

from __future__ import annotations

import gc
import itertools
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from PIL import Image

from studio.core.errors import JobCancelledError, StudioError, first_line
from studio.core.events import (
    EngineStatus,
    GeneratedImage,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobQueued,
    JobStarted,
)
from studio.core.requests import GenerationRequest, PostProcessRequest

log = logging.getLogger(__name__)

Emit = Callable[[object], None]
T = TypeVar("T")


@dataclass
class Job:
    id: int
    request: GenerationRequest | PostProcessRequest
    notes: tuple[str, ...] = ()
    cancel_flag: threading.Event = field(default_factory=threading.Event)


class WorkerContext:
    """The JobContext a handler sees: progress, previews, notes and cancellation for one job."""

    def __init__(self, job: Job, emit: Emit, wants_previews: bool = True) -> None:
        self._job = job
        self._emit = emit
        self._wants_previews = wants_previews
        self._started = time.perf_counter()
        self._not_counted = 0.0
        self.notes: list[str] = list(job.notes)
        self.warnings: list[str] = []  # what went wrong without stopping the job: said first, as a problem

    @property
    def elapsed(self) -> float:
        """The job's time so far, less what was spent in ``not_counted``."""
        return time.perf_counter() - self._started - self._not_counted

    @contextmanager
    def not_counted(self) -> Iterator[None]:
        """Time spent inside is not the job's (writing its history, which may wait seconds for another program's
        lock): left out of ``elapsed`` and so of "Finished in …"."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self._not_counted += time.perf_counter() - began

    def report_progress(self, step: int, total: int, image_index: int = 0,
                        preview: Image.Image | None = None,
                        preview_box: tuple[int, int, int, int] | None = None) -> None:
        count = self._job.request.batch_count
        self._emit(JobProgress(self._job.id, step, total, image_index, count, self.elapsed))
        if preview is not None:
            self._emit(JobPreview(self._job.id, preview, step, image_index, preview_box))

    @property
    def wants_previews(self) -> bool:
        return self._wants_previews

    def is_cancelled(self) -> bool:
        return self._job.cancel_flag.is_set()

    def check_cancelled(self) -> None:
        if self._job.cancel_flag.is_set():
            raise JobCancelledError()

    def note(self, text: str) -> None:
        self.notes.append(text)

    def warn(self, text: str) -> None:
        """Something went wrong that did not stop the job (a filter failed: the picture was kept without it). Said
        before "Finished in …", as a problem: among the notes after it, it was cut off the status line."""
        self.warnings.append(text)

    def status(self, *, device: str = "", model: str = "", message: str = "", device_kind: str = "") -> None:
        _emit_status(self._emit, device, model, message, device_kind)


def _emit_status(emit: Emit, device: str, model: str, message: str, device_kind: str) -> None:
    emit(EngineStatus(device=device, model=model, message=message, device_kind=device_kind))


SWITCH_INTERVAL_S = 0.001  # how long a thread running Python keeps the GIL while another waits for it
WARM_UP_FAILED = "Engine ready (its warm-up failed; the first job sets it up)"  # the device label then


def share_the_interpreter() -> None:
    """Make a thread running Python hand the GIL over after 1 ms, not CPython's default 5 ms.

    While the engine thread runs Python (diffusers' step loop, schedulers, a tiny model's layers), the window's
    main thread waits for the GIL before each slot and paint; at 5 ms its 2 ms probe showed p99 gaps of 10-21
    ms on the CPU, past the 8 ms target. The switch only happens when another thread asks, so an engine thread
    alone runs as fast as before. Process-wide, and only ever lowered.

    The engine thread keeps its normal OS priority. Lowering it (nice +10) was measured: beside one busy
    program it helped the window (p99 4-5.5 -> 2.4-2.7 ms), but beside two the thread holding the GIL got
    ~5 % of a core, so the window waited 42-101 ms for the GIL and a 256x256 CPU job took 80-105 s, not 8-11.
    """
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)


_imports_frozen = threading.Event()


@contextmanager
def _imports_uncollected() -> Iterator[None]:
    """Around the first warm-up, once per process: no collector passes while torch, transformers and diffusers
    import, then everything imported is frozen out of later passes, since it lives for the session.

    The imports make ~500k objects; each full pass over them holds the GIL for 0.1-0.26 s, which the window
    waited out five to nine times during start-up, and once more in the first job before the freeze. Pausing
    the collector is process-wide, so the window's own cycles wait too, for the few seconds of the imports;
    reference counting still frees everything else at once.
    """
    if _imports_frozen.is_set():
        yield
        return
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        _imports_frozen.set()
        gc.freeze()
        if collecting:
            gc.enable()


Handler = Callable[[Job, WorkerContext], Iterable[GeneratedImage]]
StatusFn = Callable[..., None]  # status(device=..., model=..., message=..., device_kind=...)
WarmUp = Callable[[StatusFn], None]


def describe_exception(exc: BaseException, what: str = "The job") -> str:
    """One sentence for an exception nobody planned for in ``what`` ("The job", "The engine's warm-up")."""
    if isinstance(exc, StudioError):
        return str(exc)
    if type(exc).__name__ == "OutOfMemoryError":
        return "The GPU ran out of memory; try a smaller size or batch, or close other programs using the GPU."
    text = first_line(exc)
    return f"{what} failed with an unexpected error: {text}"


class EngineWorker:
    """Owns the engine thread and its queue. Thread-safe; events go out through ``emit``."""

    def __init__(self, handler: Handler, emit: Emit, warm_up: WarmUp | None = None,
                 name: str = "studio-engine", preload: WarmUp | None = None, previews: bool = True) -> None:
        self._handler = handler
        self._previews = previews  # False where nobody sees previews (the command line): jobs make none
        self._emit = emit
        self._warm_up = warm_up
        self._preload = preload  # after the warm-up, while no job waits: what the first job will likely need
        self._pending: deque[Job] = deque()
        self._chores: deque[tuple[Callable[[], Any], Future[Any]]] = deque()  # run between jobs, before the next
        self._current: Job | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        share_the_interpreter()
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def submit(self, request: GenerationRequest | PostProcessRequest, notes: tuple[str, ...] = ()) -> int:
        with self._cond:
            if self._stopping:
                raise StudioError("Studio is shutting down; the job was not queued.")
            job = Job(next(self._ids), request, notes)
            self._pending.append(job)
            self._emit(JobQueued(job.id, request, notes))
            self._cond.notify()
        return job.id

    def between_jobs(self, chore: Callable[[], T]) -> Future[T]:
        """Run ``chore`` on the engine thread while no job runs: at once when idle, else right after the current
        job, before the waiting ones (asking what is loaded, freeing memory). Its answer or exception lands in
        the future; a future cancelled before its turn is skipped, and shutting down cancels those waiting."""
        future: Future[T] = Future()
        with self._cond:
            if self._stopping:
                raise StudioError("Studio is shutting down; the engine takes no more requests.")
            self._chores.append((chore, future))
            self._cond.notify()
        return future

    def pending_ids(self) -> list[int]:
        with self._cond:
            return [job.id for job in self._pending]

    def current_id(self) -> int | None:
        with self._cond:
            return self._current.id if self._current else None

    def cancel(self, job_id: int) -> bool:
        """Cancel a running job (it stops within one step) or drop a waiting one."""
        with self._cond:
            if self._current is not None and self._current.id == job_id:
                self._current.cancel_flag.set()
                return True
            for job in self._pending:
                if job.id == job_id:
                    self._pending.remove(job)
                    self._emit(JobCancelled(job.id, was_running=False))
                    return True
        return False

    def cancel_all(self) -> None:
        with self._cond:
            while self._pending:
                self._emit(JobCancelled(self._pending.popleft().id, was_running=False))
            if self._current is not None:
                self._current.cancel_flag.set()

    def shutdown(self, timeout: float | None = 5.0) -> bool:
        """Cancel everything and stop the thread; True when it ended within timeout."""
        with self._cond:
            self._stopping = True
            while self._chores:
                self._chores.popleft()[1].cancel()
        self.cancel_all()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _status(self, *, device: str = "", model: str = "", message: str = "", device_kind: str = "") -> None:
        _emit_status(self._emit, device, model, message, device_kind)

    def _run(self) -> None:
        if self._warm_up is not None:
            with _imports_uncollected():
                said_device = False

                def status(**fields: str) -> None:
                    nonlocal said_device
                    said_device = said_device or bool(fields.get("device"))
                    self._status(**fields)

                try:
                    self._warm_up(status)
                except Exception as exc:  # the engine must come up even if warm-up fails
                    log.exception("Engine warm-up failed")
                    # Without a device said, the window's "Engine starting…" would stay for good.
                    device = "" if said_device else WARM_UP_FAILED
                    self._emit(EngineStatus(device=device, message=describe_exception(exc, "The engine's warm-up")))
        self._preload_unless_busy()
        while True:
            with self._cond:
                while not self._pending and not self._chores and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                chore = self._chores.popleft() if self._chores else None
                if chore is None:
                    job = self._current = self._pending.popleft()
            if chore is not None:
                _run_chore(*chore)
                continue
            try:
                self._run_job(job)
            finally:
                with self._cond:
                    self._current = None

    def _preload_unless_busy(self) -> None:
        """After the import freeze, so a preloaded model can still be collected when a job switches it out;
        skipped when a job already waits (it loads what it names) or the engine is stopping."""
        preload, self._preload = self._preload, None
        with self._cond:
            if preload is None or self._pending or self._stopping:
                return
        try:
            preload(self._status)
        except Exception:  # noqa: BLE001 - the first job loads (and reports) it instead
            log.warning("Preloading the last model failed", exc_info=True)
            self._status(message="")

    def _run_job(self, job: Job) -> None:
        context = WorkerContext(job, self._emit, self._previews)
        outputs: list[GeneratedImage] = []
        self._emit(JobStarted(job.id))
        try:
            context.check_cancelled()
            for output in self._handler(job, context):
                outputs.append(output)
                self._emit(JobOutput(job.id, output, len(outputs) - 1))
        except JobCancelledError as cancelled:
            self._emit(JobCancelled(job.id, was_running=True, outputs=tuple(outputs),
                                    notes=(*context.warnings, *context.notes), message=str(cancelled)))
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an event; the thread lives on
            if isinstance(exc, StudioError) and exc.__cause__ is None:  # a plain refusal: the sentence is all
                log.info("Job %s failed: %s", job.id, exc)
            else:
                log.error("Job %s failed", job.id, exc_info=True)
            self._emit(JobFailed(job.id, describe_exception(exc), traceback.format_exc(), tuple(outputs),
                                 (*context.warnings, *context.notes)))
            if not isinstance(exc, Exception):
                raise
        else:
            self._emit(JobFinished(job.id, tuple(outputs), context.elapsed, tuple(context.notes),
                                   tuple(context.warnings)))


def _run_chore(chore: Callable[[], Any], future: Future[Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return  # whoever asked stopped waiting
    try:
        result = chore()
    except BaseException as exc:  # noqa: BLE001 - handed to whoever asked; the thread lives on
        log.error("A request between jobs failed", exc_info=True)
        future.set_exception(exc)
        if not isinstance(exc, Exception):
            raise
    else:
        future.set_result(result)
