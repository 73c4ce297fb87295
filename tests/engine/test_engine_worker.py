"""The engine thread on its own, with plain handlers (no torch): queue, cancel, failures, shutdown."""

from __future__ import annotations

import gc
import queue
import threading
from contextlib import contextmanager

import pytest
from PIL import Image

from studio.core.errors import JobCancelledError, ModelError, StudioError
from studio.core.events import (
    GeneratedImage,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobProgress,
    JobQueued,
    JobStarted,
)
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest
from studio.engine.worker import WARM_UP_FAILED, EngineWorker, describe_exception

TIMEOUT = 30


class Recorder:
    """A thread-safe emit target: events land in a queue that the test reads with a timeout."""

    def __init__(self) -> None:
        self.events: queue.Queue[object] = queue.Queue()
        self.seen: list[object] = []
        self.threads: set[str] = set()

    def __call__(self, event: object) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.put(event)

    def until_done(self, *job_ids: int) -> list[object]:
        pending = set(job_ids)
        while pending:
            event = self.events.get(timeout=TIMEOUT)
            self.seen.append(event)
            if isinstance(event, (JobFinished, JobFailed, JobCancelled)):
                pending.discard(event.job_id)
        return self.seen

    def next_of(self, kind: type, job_id: int) -> object:
        while True:
            event = self.events.get(timeout=TIMEOUT)
            self.seen.append(event)
            if isinstance(event, kind) and event.job_id == job_id:
                return event


def req(seed: int = 1, batch_count: int = 1) -> GenerationRequest:
    return GenerationRequest(model="m", prompt="p", seed=seed, batch_count=batch_count)


def output(seed: int) -> GeneratedImage:
    return GeneratedImage(Image.new("RGB", (8, 8)), Recipe("p", "", 1, "Euler", 7, seed, 8, 8, "m"))


@pytest.fixture
def gate():
    return threading.Event()


def held_at(gate: threading.Event):  # noqa: ANN201
    """A handler whose job reports a step, then waits for ``gate`` (or a cancel), then makes one picture."""

    def handler(job, context):  # noqa: ANN001, ANN202
        context.report_progress(1, 2)
        while not gate.wait(0.01):
            context.check_cancelled()
        yield output(1)

    return handler


def make_worker(handler, recorder: Recorder) -> EngineWorker:  # noqa: ANN001
    worker = EngineWorker(handler, recorder)
    worker.start()
    return worker


def test_jobs_run_one_at_a_time_in_submit_order_on_the_engine_thread():
    recorder = Recorder()
    running = []
    overlap = []

    def handler(job, context):  # noqa: ANN001, ANN202
        running.append(job.id)
        overlap.append(len(running) > 1)
        context.report_progress(1, 1)
        yield output(job.request.seed)
        running.remove(job.id)

    worker = make_worker(handler, recorder)
    ids = [worker.submit(req(seed)) for seed in (3, 1, 2)]
    events = recorder.until_done(*ids)
    assert worker.shutdown(TIMEOUT)
    assert [e.job_id for e in events if isinstance(e, JobQueued)] == ids
    assert [e.job_id for e in events if isinstance(e, JobStarted)] == ids
    assert [e.outputs[0].recipe.seed for e in events if isinstance(e, JobFinished)] == [3, 1, 2]
    assert not any(overlap)
    assert recorder.threads == {"studio-engine", threading.current_thread().name}


def test_a_failing_job_becomes_a_failed_event_and_the_thread_goes_on(caplog):  # noqa: ANN001
    caplog.set_level("INFO", logger="studio.engine.worker")
    recorder = Recorder()

    def handler(job, context):  # noqa: ANN001, ANN202
        yield output(1)
        if job.request.seed == 1:
            raise ZeroDivisionError("division by zero")
        if job.request.seed == 2:
            raise ModelError("The model x is broken.")
        if job.request.seed == 4:
            try:
                {}["unet"]
            except KeyError as missing:
                raise ModelError("The model y could not be loaded.") from missing
        if job.request.seed == 3:
            raise ValueError("")

    worker = make_worker(handler, recorder)
    ids = [worker.submit(req(seed)) for seed in (1, 2, 3, 5, 4)]
    events = recorder.until_done(*ids)
    assert worker.shutdown(TIMEOUT)
    ends = {e.job_id: e for e in events if isinstance(e, (JobFinished, JobFailed))}
    assert ends[ids[0]].message == "The job failed with an unexpected error: division by zero"
    assert "ZeroDivisionError" in ends[ids[0]].detail
    assert len(ends[ids[0]].outputs) == 1  # the image made before the failure is kept
    assert ends[ids[1]].message == "The model x is broken."
    assert ends[ids[2]].message == "The job failed with an unexpected error: ValueError"
    assert isinstance(ends[ids[3]], JobFinished)
    # the log keeps a traceback for what nobody planned for, and just the sentence for a refusal
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert [r.exc_info[0] for r in tracebacks] == [ZeroDivisionError, ValueError, ModelError]
    # A sentence over an error underneath keeps its traceback in the log.
    assert ends[ids[4]].message == "The model y could not be loaded."
    assert any(r.getMessage().endswith("The model x is broken.") for r in caplog.records)


def test_cancel_running_and_waiting_jobs(gate):
    recorder = Recorder()

    def handler(job, context):  # noqa: ANN001, ANN202
        yield output(job.request.seed)
        context.report_progress(1, 2)
        while not gate.wait(0.01):
            context.check_cancelled()
        context.check_cancelled()
        yield output(job.request.seed)

    worker = make_worker(handler, recorder)
    first = worker.submit(req(1))
    second = worker.submit(req(2))
    third = worker.submit(req(3))
    recorder.next_of(JobProgress, first)
    assert worker.current_id() == first
    assert worker.pending_ids() == [second, third]
    assert worker.cancel(second)
    assert worker.pending_ids() == [third]
    assert worker.cancel(first)
    assert not worker.cancel(12345)
    gate.set()
    events = recorder.until_done(first, second, third)
    assert worker.shutdown(TIMEOUT)
    ends = {e.job_id: e for e in events if isinstance(e, (JobFinished, JobFailed, JobCancelled))}
    assert ends[first] == JobCancelled(first, was_running=True, outputs=ends[first].outputs)
    assert len(ends[first].outputs) == 1  # the image finished before the cancel is kept
    assert ends[second] == JobCancelled(second, was_running=False)
    assert isinstance(ends[third], JobFinished)
    assert [e.job_id for e in events if isinstance(e, JobStarted)] == [first, third]
    assert [e.index for e in events if isinstance(e, JobOutput) and e.job_id == third] == [0, 1]


def test_cancelled_error_raised_directly_by_a_handler_is_a_cancel():
    recorder = Recorder()

    def handler(job, context):  # noqa: ANN001, ANN202
        raise JobCancelledError()
        yield  # pragma: no cover

    worker = make_worker(handler, recorder)
    job = worker.submit(req())
    events = recorder.until_done(job)
    assert worker.shutdown(TIMEOUT)
    assert events[-1] == JobCancelled(job, was_running=True)


def test_a_cancelled_or_failed_job_carries_the_notes_made_before_it_ended():
    # "Cancelled during <filter>: the picture was kept without ..." was written to the context and then lost:
    # only a finished job's event carried the notes.
    recorder = Recorder()

    def handler(job, context):  # noqa: ANN001, ANN202
        context.note(f"note of job {job.id}")
        if job.request.seed == 1:
            raise JobCancelledError("Cancelled during Blur: the picture was kept without Blur.")
        raise ValueError("broken")
        yield  # pragma: no cover

    worker = make_worker(handler, recorder)
    cancelled, failed = worker.submit(req(seed=1)), worker.submit(req(seed=2))
    events = recorder.until_done(cancelled, failed)
    assert worker.shutdown(TIMEOUT)
    ends = {e.job_id: e for e in events if isinstance(e, (JobFailed, JobCancelled))}
    # The cancel's own sentence travels as its message, said before the notes.
    assert ends[cancelled] == JobCancelled(cancelled, was_running=True, notes=(f"note of job {cancelled}",),
                                           message="Cancelled during Blur: the picture was kept without Blur.")
    assert isinstance(ends[failed], JobFailed) and ends[failed].notes == (f"note of job {failed}",)


def test_shutdown_cancels_everything_stops_the_thread_and_refuses_new_jobs(gate):
    recorder = Recorder()

    worker = make_worker(held_at(gate), recorder)
    running = worker.submit(req(1))
    waiting = worker.submit(req(2))
    recorder.next_of(JobProgress, running)
    assert worker.shutdown(TIMEOUT)
    assert not worker.thread.is_alive()
    events = recorder.until_done(running, waiting)
    ends = {e.job_id: e for e in events if isinstance(e, JobCancelled)}
    assert ends == {running: JobCancelled(running, was_running=True), waiting: JobCancelled(waiting, was_running=False)}
    with pytest.raises(StudioError, match="shutting down"):
        worker.submit(req(3))


def test_a_request_between_jobs_runs_at_once_when_idle_else_after_the_running_job_before_the_waiting_ones(gate):
    recorder = Recorder()
    order: list[str] = []

    def handler(job, context):  # noqa: ANN001, ANN202
        order.append(f"job {job.request.seed} starts")
        context.report_progress(1, 2)
        if job.request.seed == 1:
            gate.wait(TIMEOUT)
        order.append(f"job {job.request.seed} ends")
        yield output(job.request.seed)

    worker = make_worker(handler, recorder)
    assert worker.between_jobs(threading.current_thread).result(TIMEOUT).name == "studio-engine"  # idle: at once
    running = worker.submit(req(1))
    waiting = worker.submit(req(2))
    recorder.next_of(JobProgress, running)
    asked = worker.between_jobs(lambda: order.append("between") or "answer")
    failing = worker.between_jobs(lambda: 1 / 0)
    skipped = worker.between_jobs(lambda: order.append("skipped"))
    assert skipped.cancel() and not asked.done()  # nothing runs beside a job
    gate.set()
    assert asked.result(TIMEOUT) == "answer"
    with pytest.raises(ZeroDivisionError):
        failing.result(TIMEOUT)
    recorder.until_done(running, waiting)  # the engine went on after the failure
    assert order == ["job 1 starts", "job 1 ends", "between", "job 2 starts", "job 2 ends"]
    assert worker.shutdown(TIMEOUT)


def test_shutting_down_cancels_the_requests_waiting_for_a_job_to_end(gate):
    recorder = Recorder()

    worker = make_worker(held_at(gate), recorder)
    running = worker.submit(req(1))
    recorder.next_of(JobProgress, running)
    waiting = worker.between_jobs(lambda: "never")
    assert worker.shutdown(TIMEOUT)
    assert waiting.cancelled()
    with pytest.raises(StudioError, match="shutting down"):
        worker.between_jobs(lambda: "after")


def test_a_failing_warm_up_is_reported_and_jobs_still_run():
    recorder = Recorder()

    def warm_up(status):  # noqa: ANN001, ANN202
        status(device="Test device")
        raise RuntimeError("no GPU driver")

    def handler(job, context):  # noqa: ANN001, ANN202
        yield output(1)

    worker = EngineWorker(handler, recorder, warm_up)
    worker.start()
    job = worker.submit(req())
    events = recorder.until_done(job)
    assert worker.shutdown(TIMEOUT)
    messages = [getattr(e, "message", None) for e in events]
    assert "The engine's warm-up failed with an unexpected error: no GPU driver" in messages
    assert any(getattr(e, "device", "") == "Test device" for e in events)
    assert not any(getattr(e, "device", "") == WARM_UP_FAILED for e in events)  # its device was said: kept
    assert isinstance(events[-1], JobFinished)


def test_a_warm_up_failing_before_it_says_the_device_still_ends_engine_starting():
    """The window's device label reads "Engine starting…" until a status names a device: a warm-up that failed
    before naming one left it there for the whole session."""
    recorder = Recorder()

    def warm_up(status):  # noqa: ANN001, ANN202
        raise RuntimeError("no GPU driver")

    worker = EngineWorker(lambda job, context: iter(()), recorder, warm_up)
    worker.start()
    try:
        first = recorder.events.get(timeout=TIMEOUT)
    finally:
        assert worker.shutdown(TIMEOUT)
    assert (first.device, first.message) == (WARM_UP_FAILED,
                                             "The engine's warm-up failed with an unexpected error: no GPU driver")


def test_the_last_model_is_preloaded_after_the_warm_up_unless_a_job_comes_first(gate, monkeypatch):  # noqa: ANN001
    import studio.engine.worker as worker_module

    order: list[str] = []
    @contextmanager
    def imports_uncollected():  # noqa: ANN202
        yield
        order.append("freeze")

    # After the import freeze: a model frozen with the imports would never be collected once switched out.
    monkeypatch.setattr(worker_module, "_imports_uncollected", imports_uncollected)

    def warm_up(status):  # noqa: ANN001, ANN202
        order.append("warm-up")
        gate.wait(TIMEOUT)  # a job is submitted meanwhile in the second run

    def preload(status):  # noqa: ANN001, ANN202
        order.append("preload")
        status(message="Loading m…")

    def handler(job, context):  # noqa: ANN001, ANN202
        order.append("job")
        yield output(1)

    gate.set()
    recorder = Recorder()
    worker = EngineWorker(handler, recorder, warm_up, preload=preload)
    worker.start()
    job = worker.submit(req())
    recorder.until_done(job)
    assert worker.shutdown(TIMEOUT)
    assert order == ["warm-up", "freeze", "preload", "job"]

    order.clear()
    gate.clear()
    worker = EngineWorker(handler, Recorder(), warm_up, preload=preload)
    worker.start()
    job = worker.submit(req())  # while the engine warms up: it names its own model, so nothing is preloaded
    gate.set()
    worker._emit.until_done(job)
    assert worker.shutdown(TIMEOUT)
    assert order == ["warm-up", "freeze", "job"]


def test_a_failing_preload_is_logged_and_the_first_job_runs(caplog):  # noqa: ANN001
    def preload(status):  # noqa: ANN001, ANN202
        status(message="Loading gone…")
        raise ModelError("There is no model at /gone.")

    def handler(job, context):  # noqa: ANN001, ANN202
        yield output(1)

    recorder = Recorder()
    worker = EngineWorker(handler, recorder, lambda status: None, preload=preload)
    worker.start()
    worker.thread.join(0.5)  # let the preload fail before the job arrives
    job = worker.submit(req())
    events = recorder.until_done(job)
    assert worker.shutdown(TIMEOUT)
    assert isinstance(events[-1], JobFinished)
    assert "Preloading the last model failed" in caplog.text
    messages = [getattr(e, "message", None) for e in events if not hasattr(e, "job_id")]
    assert messages[-1] == ""  # the "Loading…" line does not stay in the status bar


def test_describe_exception_gives_one_sentence():
    assert describe_exception(ModelError("The model m is gone.")) == "The model m is gone."
    assert describe_exception(RuntimeError("first line\nsecond line")) == \
        "The job failed with an unexpected error: first line"
    oom = type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 2 GiB")
    assert describe_exception(oom).startswith("The GPU ran out of memory")


def _probe_beside_a_python_loop(seconds: float = 0.4, spinning: bool = True) -> float:
    """The median gap (ms) a 2 ms waker gets while another thread runs pure Python the whole time (or,
    with ``spinning`` False, waits)."""
    from studio.engine.thread_probe import ThreadProbe

    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            count += 1
            if not spinning:
                stop.wait()

    spinner = threading.Thread(target=spin, daemon=True)
    probe = ThreadProbe(interval=0.002)
    spinner.start()
    with probe:
        threading.Event().wait(seconds)
    stop.set()
    spinner.join()
    figures = probe.figures()
    assert figures is not None
    return figures.median_ms


def test_starting_the_engine_makes_running_python_hand_the_interpreter_over_within_a_millisecond():
    import sys

    from studio.engine.worker import SWITCH_INTERVAL_S

    control = _probe_beside_a_python_loop(spinning=False)
    if control > 3.0:  # a 2 ms waker alone should see about 2.1 ms
        pytest.skip(f"this machine is too loaded to time thread wake-ups (median {control:.1f} ms with nothing "
                    "running)")
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)  # CPython's default
        held_by_default = _probe_beside_a_python_loop()
        worker = EngineWorker(lambda job, context: iter(()), lambda event: None)
        worker.start()
        worker.shutdown()
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
        shared = _probe_beside_a_python_loop()
    finally:
        sys.setswitchinterval(before)
    # With 5 ms slices a waking thread waits out a whole one (about 7 ms gaps here); with 1 ms, about 3 ms.
    assert shared < 5.0 < held_by_default, (shared, held_by_default)


def test_the_collector_rests_during_the_first_warm_up_and_its_imports_are_frozen_after(monkeypatch):  # noqa: ANN001
    """Full collector passes over the imports held the GIL for 0.1-0.26 s each: the window stalled at start-up."""
    import studio.engine.worker as worker_module

    monkeypatch.setattr(worker_module, "_imports_frozen", threading.Event())  # as in a fresh process
    seen: dict[str, object] = {}
    imported: list[object] = []

    def warm_up(status):  # noqa: ANN001, ANN202
        seen["collecting"] = gc.isenabled()
        imported.append([object()])  # stands in for what the imports make

    def handler(job, context):  # noqa: ANN001, ANN202
        seen["collecting in the job"] = gc.isenabled()
        seen["frozen"] = gc.get_freeze_count()
        yield output(1)

    frozen_before = gc.get_freeze_count()
    try:
        for run in range(2):
            recorder = Recorder()
            worker = EngineWorker(handler, recorder, warm_up)
            worker.start()
            recorder.until_done(worker.submit(req()))
            assert worker.shutdown(TIMEOUT)
            if run == 0:
                assert seen["collecting"] is False and seen["collecting in the job"] is True, seen
                assert seen["frozen"] > frozen_before
            else:  # later warm-ups import nothing new: the collector keeps running
                assert seen["collecting"] is True
    finally:
        gc.unfreeze()  # this test process goes on making and dropping cycles
    assert gc.isenabled()
