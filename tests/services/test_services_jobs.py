"""JobService as the asyncio side sees it, with fake generators registered like plugins (no torch)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from studio_testing import (
    EVENT_TIMEOUT,
    GatedGenerator,
    collect_until_done,
    fake_registry,
    fake_request,
    make_env,
    of_job,
    run,
    running_service,
    terminal,
)

from studio.core.errors import InvalidRequest, StudioError
from studio.core.held_memory import IN_USE, HeldModel, MemoryFreed
from studio.core.events import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobQueued,
    JobStarted,
)
from studio.core.requests import PostStep
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution
from studio.services.jobs import EventStream, JobService


def gated(registry, env) -> GatedGenerator:  # noqa: ANN001
    """The registry's one GatedGenerator instance (the same object the engine thread will use)."""
    return registry.instance(GENERATOR, "gated", env)


def test_event_stream_yields_in_order_and_ends_when_closed():
    async def scenario():
        stream = EventStream()
        for i in range(5):
            stream.put(i)
        stream.close()
        stream.put("after close")  # never seen: the stream already ended
        return [event async for event in stream]

    assert run(scenario()) == [0, 1, 2, 3, 4]


def test_event_stream_waits_for_events_put_later():
    async def scenario():
        stream = EventStream()
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, stream.put, "late")
        loop.call_later(0.02, stream.close)
        return [event async for event in stream]

    assert run(scenario()) == ["late"]


def test_events_are_delivered_on_the_loop_thread_while_the_generator_runs_on_the_engine_thread(tmp_path,
                                                                                               monkeypatch):
    put_threads: set[int] = set()
    real_put = EventStream.put

    def recording_put(self, event):  # noqa: ANN001, ANN202
        put_threads.add(threading.get_ident())
        real_put(self, event)

    monkeypatch.setattr(EventStream, "put", recording_put)
    registry, env = fake_registry(), make_env(tmp_path)
    generator = gated(registry, env)
    generator.release.set()

    async def scenario():
        loop_thread = threading.get_ident()
        async with running_service(env, registry) as service:
            stream = service.subscribe()
            job = service.submit(fake_request())
            received_on = set()

            def on_event(event: object) -> None:
                received_on.add(threading.get_ident())

            events = await collect_until_done(stream, [job], on_event=on_event)
            return loop_thread, received_on, events, job

    loop_thread, received_on, events, job = run(scenario())
    assert put_threads == {loop_thread}  # queues are only touched on the loop's own thread
    assert received_on == {loop_thread}
    assert generator.threads == ["studio-engine"]
    assert isinstance(terminal(events, job), JobFinished)


def test_each_job_s_events_come_in_order(tmp_path):
    registry, env = fake_registry(), make_env(tmp_path)
    gated(registry, env).release.set()

    async def scenario():
        async with running_service(env, registry) as service:
            stream = service.subscribe()
            jobs = [service.submit(fake_request(seed=s, batch_count=2)) for s in (1, 2, 3)]
            return await collect_until_done(stream, jobs), jobs

    events, jobs = run(scenario())
    for job in jobs:
        kinds = [type(e).__name__ for e in of_job(events, job)]
        assert kinds == ["JobQueued", "JobStarted",
                         "JobProgress", "JobPreview", "JobProgress", "JobOutput",
                         "JobProgress", "JobPreview", "JobProgress", "JobOutput",
                         "JobFinished"]
        seeds = [o.output.recipe.seed for o in of_job(events, job, JobOutput)]
        assert seeds == [o.recipe.seed for o in terminal(events, job).outputs]
    assert [terminal(events, job).outputs[1].recipe.seed for job in jobs] == [2, 3, 4]
    # Jobs do not interleave: each one ends before the next starts.
    starts_and_ends = [(type(e).__name__, e.job_id) for e in events if isinstance(e, (JobStarted, JobFinished))]
    assert starts_and_ends == [(kind, job) for job in jobs for kind in ("JobStarted", "JobFinished")]


def test_jobs_tracks_waiting_and_running_jobs(tmp_path):
    registry, env = fake_registry(), make_env(tmp_path)
    generator = gated(registry, env)
    snapshots = {}

    async def scenario():
        async with running_service(env, registry) as service:
            stream = service.subscribe()
            first = service.submit(fake_request(seed=1))
            second = service.submit(fake_request(seed=2, prompt="second"))
            assert service.jobs == {}  # events reach the loop on its next turn, not inside submit

            def on_event(event: object) -> None:
                if isinstance(event, JobProgress) and event.job_id == first and "running" not in snapshots:
                    snapshots["running"] = (
                        {i: info.state for i, info in service.jobs.items()},
                        service.running().id,
                        [info.id for info in service.waiting()],
                        service.jobs[first].progress,
                        service.jobs[second].request.prompt,
                    )
                    generator.release.set()
                if isinstance(event, JobFinished) and event.job_id == first:
                    snapshots["after_first"] = {i: info.state for i, info in service.jobs.items()}

            events = await collect_until_done(stream, [first, second], on_event=on_event)
            snapshots["end"] = dict(service.jobs)
            return events, first, second

    events, first, second = run(scenario())
    states, running_id, waiting_ids, progress, prompt = snapshots["running"]
    assert states == {first: "running", second: "queued"}
    assert running_id == first
    assert waiting_ids == [second]
    assert isinstance(progress, JobProgress) and progress.job_id == first
    assert prompt == "second"
    assert first not in snapshots["after_first"]
    assert snapshots["end"] == {}


def test_run_yields_only_its_own_job_and_stops_at_the_end(tmp_path):
    registry, env = fake_registry(), make_env(tmp_path)
    gated(registry, env).release.set()

    async def scenario():
        async with running_service(env, registry) as service:
            other_stream = service.subscribe()
            other = service.submit(fake_request(seed=100))
            mine = [event async for event in service.run(fake_request(seed=7))]
            await collect_until_done(other_stream, [other])
            return mine, other, len(service._streams)

    mine, other, streams_left = run(scenario())
    job_ids = {e.job_id for e in mine if hasattr(e, "job_id")}
    assert len(job_ids) == 1 and other not in job_ids
    assert isinstance(mine[0], JobQueued)
    assert isinstance(mine[-1], JobFinished)
    assert mine[-1].outputs[0].recipe.seed == 7
    assert streams_left == 1  # run() unsubscribed its own stream


def test_submit_validates_before_queueing(tmp_path):
    registry, env = fake_registry(), make_env(tmp_path)

    async def scenario():
        async with running_service(env, registry) as service:
            stream = service.subscribe()
            with pytest.raises(InvalidRequest, match="Steps must be at least 1"):
                service.submit(fake_request(generator="diffusers", model=str(tmp_path), steps=0))
            with pytest.raises(InvalidRequest, match="does not exist"):
                service.submit(fake_request(generator="diffusers", model=str(tmp_path / "missing")))
            gated(registry, env).release.set()
            job = service.submit(fake_request(width=100, seed=-1))
            events = await collect_until_done(stream, [job])
            return events, job

    events, job = run(scenario())
    assert [e.job_id for e in events if isinstance(e, JobQueued)] == [job]  # the refused ones were never queued
    queued = events[0]
    assert queued.request.width == 104 and queued.request.seed >= 0
    assert queued.notes == ("The width 100 is not a multiple of 8; using 104.",)
    finished = terminal(events, job)
    assert finished.notes == queued.notes
    assert finished.outputs[0].image.size == (104, 64)


def test_a_plugin_that_fails_to_import_or_raises_fails_its_job_only(tmp_path):
    registry, env = fake_registry(), make_env(tmp_path)
    gated(registry, env).release.set()

    async def scenario():
        async with running_service(env, registry) as service:
            stream = service.subscribe()
            missing = service.submit(fake_request(generator="missing"))
            failing = service.submit(fake_request(generator="failing"))
            with pytest.raises(InvalidRequest) as unknown:  # refused before it is queued
                service.submit(fake_request(generator="not-installed"))
            fine = service.submit(fake_request())
            return await collect_until_done(stream, [missing, failing, fine]), missing, failing, unknown, fine

    events, missing, failing, unknown, fine = run(scenario())
    missing_end, failing_end = (terminal(events, j) for j in (missing, failing))
    assert isinstance(missing_end, JobFailed)
    assert missing_end.message.startswith("The generator 'Missing generator' from broken-plugin could not be loaded")
    assert isinstance(failing_end, JobFailed)
    assert failing_end.message == "The plugin Test Plugins failed (KeyError: 'no such layer')."
    assert str(unknown.value) == "No generator called 'not-installed' is installed and enabled."
    assert isinstance(terminal(events, fine), JobFinished)


def test_cancel_and_cancel_all_through_the_service(tmp_path):
    registry, env = fake_registry(), make_env(tmp_path)

    async def scenario():
        async with running_service(env, registry) as service:
            stream = service.subscribe()
            running = service.submit(fake_request(seed=1))
            removed = service.submit(fake_request(seed=2))
            rest = [service.submit(fake_request(seed=s)) for s in (3, 4)]
            assert service.cancel(removed)

            def on_event(event: object) -> None:
                if isinstance(event, JobPreview) and event.job_id == running:
                    service.cancel_all()

            events = await collect_until_done(stream, [running, removed, *rest], on_event=on_event)
            return events, running, removed, rest, dict(service.jobs)

    events, running, removed, rest, jobs_left = run(scenario())
    assert terminal(events, running) == JobCancelled(running, was_running=True)
    for job in (removed, *rest):
        assert terminal(events, job) == JobCancelled(job, was_running=False)
    assert [e.job_id for e in events if isinstance(e, JobStarted)] == [running]
    assert jobs_left == {}


def test_a_cancel_during_a_filter_says_what_was_left_out(tmp_path):
    # "Cancelled during <filter>: the picture was kept without ..." was noted, then never reached the person.
    registry, env = fake_registry(), make_env(tmp_path)
    registry.add(Contribution(POSTPROCESSOR, "waits", "Waits", "studio_testing:WaitsForCancelFilter"))
    gated(registry, env).release.set()

    async def scenario():
        async with running_service(env, registry) as service:
            stream = service.subscribe()
            job = service.submit(fake_request(post=(PostStep("waits"),)))

            def on_event(event: object) -> None:
                if isinstance(event, JobProgress) and event.total == 99:
                    service.cancel(job)

            return await collect_until_done(stream, [job], on_event=on_event), job

    events, job = run(scenario())
    cancelled = terminal(events, job)
    assert isinstance(cancelled, JobCancelled) and len(cancelled.outputs) == 1
    # Named as the Filters menu names it: "kept without color" read as if the picture had lost its colours.
    # The cancel's own sentence, not a note found by its words: the window and the command line say it first.
    assert cancelled.message == "Cancelled during Waits: the picture was kept without Waits."
    assert cancelled.notes == ()


def test_shutdown_ends_every_stream_and_refuses_new_jobs(tmp_path):
    registry, env = fake_registry(), make_env(tmp_path)

    async def scenario():
        service = JobService(registry, env, warm_up=False)
        service.start()
        stream = service.subscribe()
        job = service.submit(fake_request())
        seen = []

        async def consume():
            async for event in stream:
                seen.append(event)
                if isinstance(event, JobProgress):
                    assert service.shutdown(timeout=10)
            return "ended"

        ended = await asyncio.wait_for(consume(), 30)
        with pytest.raises(StudioError, match="shutting down"):
            service.submit(fake_request())
        return ended, seen, job

    ended, seen, job = run(scenario())
    assert ended == "ended"  # the stream ended although the job never reached a terminal event on it
    assert [type(e) for e in seen if getattr(e, "job_id", None) == job][:2] == [JobQueued, JobStarted]


def test_warm_up_creates_the_generator_on_the_engine_thread(tmp_path, monkeypatch):
    """With warm_up=True the service asks the 'diffusers' generator to warm up, off the loop thread, once torch's
    libraries are set to open without the GIL (its module imports torch)."""
    registry, env = fake_registry(), make_env(tmp_path)
    calls = []

    class FakeDiffusers:
        def __init__(self, env):  # noqa: ANN001
            calls.append("generator")

        def warm_up(self, status):  # noqa: ANN001, ANN202
            calls.append(threading.current_thread().name)
            status(device="Fake device")

    monkeypatch.setattr("studio.plugin_host.registry._load", lambda contribution, *others: FakeDiffusers)
    monkeypatch.setattr("studio.engine.libraries.open_torch_libraries_off_the_gil",
                        lambda: calls.append("libraries"))

    async def scenario():
        async with running_service(env, registry, warm_up=True) as service:
            stream = service.subscribe()
            async with asyncio.timeout(30):
                async for event in stream:
                    if getattr(event, "device", "") == "Fake device":
                        return event

    run(scenario())
    assert calls == ["libraries", "generator", "studio-engine"]


def test_another_models_folder_reaches_the_next_jobs_generators(tmp_path):
    from studio.plugin_host.registry import GENERATOR, builtin_registry
    from studio.services.jobs import JobService

    from studio.core.environment import GeneratorEnvironment

    service = JobService(builtin_registry(), GeneratorEnvironment("cpu", tmp_path, tmp_path, tmp_path / "old"),
                         warm_up=False)
    before = service.registry.instance(GENERATOR, "diffusers", service.env)
    service.use_models_dir(tmp_path / "new")
    after = service.registry.instance(GENERATOR, "diffusers", service.env)
    assert service.env.models_root == tmp_path / "new"
    assert after is not before and after._env.models_root == tmp_path / "new"


def test_memory_is_listed_and_freed_on_the_engine_thread_after_the_running_job_and_said_in_order(tmp_path):
    registry, env = fake_registry(), make_env(tmp_path)
    generator = gated(registry, env)  # a plugin's generator holding a model (MemoryHolder)
    model = HeldModel("gated model", IN_USE, "cpu", "float32", 64)
    holding = [model]
    released_on: list[str] = []

    def release_memory(in_use: bool = False) -> list[HeldModel]:
        released_on.append(threading.current_thread().name)
        let_go = [m for m in holding if in_use]
        holding[:] = [m for m in holding if not in_use]
        return let_go

    generator.held_models = lambda: list(holding)
    generator.release_memory = release_memory

    async def scenario():
        async with running_service(env, registry) as service:
            stream = service.subscribe()
            job = service.submit(fake_request())
            events: list[object] = []
            async with asyncio.timeout(EVENT_TIMEOUT):
                async for event in stream:
                    events.append(event)
                    if isinstance(event, JobProgress):
                        break
                listed = asyncio.ensure_future(service.held_models())
                freed = asyncio.ensure_future(service.release_memory(in_use=True))
                await asyncio.sleep(0)  # both asked while the job still runs
                generator.release.set()  # the job ends; the requests run after it
                answers = (await listed, await freed, await service.held_models())
                async for event in stream:
                    events.append(event)
                    if isinstance(event, MemoryFreed):
                        break
            return answers, events, job

    (listed, freed, after), events, job = run(scenario())
    assert listed == (model,) and after == ()
    # Asked by the engine thread between jobs, on a thread of its own (a plugin's answer may never come).
    assert freed == MemoryFreed((model,), 64) and released_on == ["studio-release_memory"]
    ends = [e for e in events if isinstance(e, (JobFinished, MemoryFreed))]
    assert ends == [terminal(events, job), freed]  # never beside the job: after it, in order with its events
