"""``studio bench``'s engine side: the options it reports are the ones its jobs ran with."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from studio_testing import ReplayOnCpu

from studio.engine import bench, fast_path, fast_path_choices


@pytest.mark.parametrize("compile_step", [False, True])
def test_the_jobs_run_with_the_fast_path_options_the_bench_reports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                   compile_step: bool) -> None:
    # The fast path as on CUDA, with a stand-in capture; torch.compile recorded, not run (minutes on a GPU).
    monkeypatch.delenv(fast_path_choices.ENV, raising=False)
    monkeypatch.setattr(fast_path, "platform_reason", lambda kind, options: None)
    monkeypatch.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: compiled.append(kwargs) or fn)
    result = bench.run_bench(bench.BenchConfig(runs=1, compile=compile_step), tmp_path, say=lambda _text: None)
    studio = result["studio"]
    assert result["compile"] is compile_step
    assert studio["fast_path"] and studio["notes"] == []
    assert [c["input"] for c in studio["captures"]] == ["4x8x8 latents, 2 rows, float32"]
    assert studio["replays"] == 2 * result["steps"]  # the warm-up and one timed run, one capture between them
    assert compiled == ([{"mode": fast_path.COMPILE_MODE}] if compile_step else [])
    assert result["same_seed_difference"]["within_tolerance"]
