"""The last model is loaded while the person writes the first prompt, through Studio's real generator."""

from __future__ import annotations

import asyncio
from pathlib import Path

from studio_testing import collect_until_done, make_env, run

from studio.core.events import EngineStatus, JobFinished
from studio.core.requests import GenerationRequest
from studio.plugin_host.registry import builtin_registry
from studio.services.jobs import JobService


def _first_job_after_preload(tmp_path: Path, preload: Path | None, model: Path,
                             wait_for: str = "model") -> list[object]:
    async def scenario() -> list[object]:
        service = JobService(builtin_registry(), make_env(tmp_path), warm_up=True)
        stream = service.subscribe()
        service.prefer_model(preload)
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


def test_without_a_preload_or_with_a_missing_model_the_first_job_loads_it(tmp_path, tiny_model_dir):  # noqa: ANN001
    for preload in (None, tmp_path / "deleted-since-last-time"):
        events = _first_job_after_preload(tmp_path / "home", preload, tiny_model_dir, wait_for="device")
        assert isinstance(events[-1], JobFinished) and _loading(events) == [f"Loading {tiny_model_dir.name}…"]
