"""``studio bench``'s engine side: the options it reports are the ones its jobs ran with."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from studio_testing import ReplayOnCpu

from studio.engine import bench, fast_path


@pytest.mark.parametrize("compile_step", [False, True])
def test_the_jobs_run_with_the_fast_path_options_the_bench_reports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                   compile_step: bool) -> None:
    # The fast path as on CUDA, with a stand-in capture; torch.compile recorded, not run (minutes on a GPU).
    monkeypatch.delenv(fast_path.ENV, raising=False)
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



@pytest.mark.parametrize(("tiny", "free_gib"), [(False, 22), (True, 6)])
def test_a_cpu_bench_whose_pictures_would_not_fit_is_refused_before_anything_is_built(monkeypatch, tmp_path, tiny,
                                                                                       free_gib):
    # The check counted the pipelines only, and the tiny layout not at all: at --size 100000 the bench built them,
    # then torch failed minutes later asking for 400 GB. Now the pictures' activations count too.
    from studio.core.errors import InvalidRequest
    from studio.engine.memory import GIB, gb

    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    built: list[str] = []
    real_build = bench.build_pipeline

    def build(family, tiny_layout, device, cache):  # noqa: ANN001, ANN202
        built.append(device.kind)
        assert device.kind == "meta", "a pipeline was built for a bench that does not fit"
        return real_build(family, tiny_layout, device, cache)

    monkeypatch.setattr(bench, "build_pipeline", build)
    monkeypatch.setattr(bench, "available_ram", lambda: (free_gib * GIB, 24 * GIB))  # the pipelines alone fit
    layout = "the tiny sd15 layout" if tiny else "the full-size sd15"
    free = gb(free_gib * GIB).replace(".", r"\.")
    with pytest.raises(InvalidRequest, match=rf"^Timing {layout} at 4096x4096 on the CPU needs about \d+\.\d GB of "
                                             r"memory \(about \d+\.\d GB of it for the pictures' activations\), and "
                                             rf"{free} is free; a smaller --size needs less\.$"):
        bench.run_bench(bench.BenchConfig(size=4096, steps=1, runs=1, tiny=tiny or None), tmp_path,
                        say=lambda _text: None)
    assert built == ([] if tiny else ["meta"])  # counted on the meta device, or not at all: nothing was made
    # The tiny layout's activations are an eighth as wide as the full size's: 4096x4096 fits in 10 GB.
    monkeypatch.setattr(bench, "available_ram", lambda: (10 * GIB, 24 * GIB))
    bench.check_memory("sd15", True, tmp_path, torch.float32, torch.bfloat16, 4096)
