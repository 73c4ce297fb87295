"""The last model is loaded while the person writes the first prompt, through Studio's real generator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from studio_testing import ReplayOnCpu, collect_until_done, make_env, run

from studio.core.events import EngineStatus, JobEvent, JobFinished
from studio.core.requests import GenerationRequest
from studio.engine import diffusion, fast_path
from studio.plugin_host.registry import builtin_registry
from studio.services.jobs import JobService


def _first_job_after_preload(tmp_path: Path, preload: Path | None, model: Path,
                             wait_for: str = "model") -> list[object]:
    async def scenario() -> list[object]:
        service = JobService(builtin_registry(), make_env(tmp_path), warm_up=True)
        stream = service.subscribe()
        service.prefer(GenerationRequest(model=str(preload), prompt="") if preload is not None else None)
        service.start()
        try:
            async with asyncio.timeout(120):
                async for event in stream:  # the engine is up (and, with a preload, the model loaded)
                    if isinstance(event, EngineStatus) and getattr(event, wait_for):
                        break
            job = service.submit(GenerationRequest(model=str(model), prompt="a fox", width=64, height=64, steps=2,
                                                   seed=1))
            return await collect_until_done(stream, [job])
        finally:
            assert service.shutdown(timeout=30)

    return run(scenario())


def _loading(events: list[object]) -> list[str]:
    return [e.message for e in events if isinstance(e, EngineStatus) and e.message.startswith("Loading")]


def test_the_preloaded_model_is_not_loaded_again_by_the_first_job(tmp_path, tiny_model_dir):  # noqa: ANN001
    events = _first_job_after_preload(tmp_path, tiny_model_dir, tiny_model_dir)
    assert isinstance(events[-1], JobFinished)
    assert _loading(events) == []
    # On the CPU nothing runs ahead: a step would take the processor the window shares, and hides no first use.
    assert not [e for e in events if isinstance(e, EngineStatus) and e.message.startswith("Warming up")]


@pytest.fixture
def as_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine behaves as on a GPU: it runs a warm-up step, and the fast path is on with a stand-in capture."""
    monkeypatch.setattr(diffusion, "warm_up_worthwhile", lambda device: True)
    monkeypatch.setattr(fast_path, "platform_reason", lambda kind, options: None)
    monkeypatch.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    ReplayOnCpu.made.clear()


def test_on_a_gpu_the_likely_jobs_step_is_captured_before_the_first_job_asks(tmp_path, tiny_model_dir,  # noqa: ANN001
                                                                             as_on_a_gpu):
    async def scenario() -> tuple[list[object], list[object], list[object], int]:
        service = JobService(builtin_registry(), make_env(tmp_path), warm_up=True)
        stream = service.subscribe()
        service.prefer(GenerationRequest(model=str(tiny_model_dir), prompt="", width=64, height=64, cfg_scale=5))
        service.start()
        try:
            before: list[object] = []
            async with asyncio.timeout(120):
                async for event in stream:  # until the warm-up run has ended (its message is cleared)
                    before.append(event)
                    warming = [e for e in before if isinstance(e, EngineStatus) and e.message.startswith("Warming")]
                    if warming and isinstance(event, EngineStatus) and event.message == "" and event.model:
                        break
            captured = len(ReplayOnCpu.made)
            same = service.submit(GenerationRequest(model=str(tiny_model_dir), prompt="a fox", width=64, height=64,
                                                    steps=2, seed=1))
            first = await collect_until_done(stream, [same])
            other = service.submit(GenerationRequest(model=str(tiny_model_dir), prompt="a fox", width=96, height=64,
                                                     steps=2, seed=1))
            second = await collect_until_done(stream, [other])
            return before, first, second, captured
        finally:
            assert service.shutdown(timeout=30)

    before, first, second, captured = run(scenario())
    assert [e.message for e in before if isinstance(e, EngineStatus) and e.message.startswith("Warming")] == [
        "Warming up the GPU for 64x64…"]
    assert not [e for e in before if isinstance(e, JobEvent)]  # the warm-up is no job: nothing saved or shown
    assert captured == 1  # the 64x64 step with CFG, captured ahead
    assert isinstance(first[-1], JobFinished) and _loading(first) == []
    assert len(ReplayOnCpu.made) == 2 and isinstance(second[-1], JobFinished)  # the first job captured nothing new
    assert ReplayOnCpu.made[0].replays >= 2  # ... it replayed the step captured ahead


def test_without_a_preload_or_with_a_missing_model_the_first_job_loads_it(tmp_path, tiny_model_dir):  # noqa: ANN001
    for preload in (None, tmp_path / "deleted-since-last-time"):
        events = _first_job_after_preload(tmp_path / "home", preload, tiny_model_dir, wait_for="device")
        assert isinstance(events[-1], JobFinished) and _loading(events) == [f"Loading {tiny_model_dir.name}…"]
