"""The bench's pipelines: a CPU bench whose pipelines and pictures would not fit in memory is refused first."""

from __future__ import annotations

import pytest
import torch

from studio.engine import bench, bench_pipelines


@pytest.mark.parametrize(("tiny", "free_gib"), [(False, 22), (True, 6)])
def test_a_cpu_bench_whose_pictures_would_not_fit_is_refused_before_anything_is_built(monkeypatch, tmp_path, tiny,
                                                                                       free_gib):
    # The check counted the pipelines only, and the tiny layout not at all: at --size 100000 the bench built them,
    # then torch failed minutes later asking for 400 GB. Now the pictures' activations count too.
    from studio.core.errors import InvalidRequest
    from studio.engine.memory import GIB, gb

    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    built: list[str] = []
    real_build = bench_pipelines.build_pipeline

    def build(family, tiny_layout, device, cache):  # noqa: ANN001, ANN202
        built.append(device.kind)
        assert device.kind == "meta", "a pipeline was built for a bench that does not fit"
        return real_build(family, tiny_layout, device, cache)

    for module in (bench, bench_pipelines):  # the bench's builds, and the memory check's on the meta device
        monkeypatch.setattr(module, "build_pipeline", build)
    # the pipelines alone fit
    monkeypatch.setattr(bench_pipelines, "available_ram", lambda: (free_gib * GIB, 24 * GIB))
    layout = "the tiny sd15 layout" if tiny else "the full-size sd15"
    free = gb(free_gib * GIB).replace(".", r"\.")
    with pytest.raises(InvalidRequest, match=rf"^Timing {layout} at 4096x4096 on the CPU needs about \d+\.\d GB of "
                                             r"memory \(about \d+\.\d GB of it for the pictures and their "
                                             r"activations\), and "
                                             rf"{free} is free; a smaller --size needs less\.$"):
        bench.run_bench(bench.BenchConfig(size=4096, steps=1, runs=1, tiny=tiny or None), tmp_path,
                        say=lambda _text: None)
    assert built == ([] if tiny else ["meta"])  # counted on the meta device, or not at all: nothing was made
    # The tiny layout's activations are an eighth as wide as the full size's: 4096x4096 fits in 10 GB.
    monkeypatch.setattr(bench_pipelines, "available_ram", lambda: (10 * GIB, 24 * GIB))
    bench_pipelines.check_memory("sd15", True, tmp_path, torch.float32, torch.bfloat16, 4096)


def test_a_cpu_bench_of_a_batch_whose_pictures_would_not_fit_is_refused(monkeypatch, tmp_path):
    # --tiny --size 4096 --batch 50 passed the check (it counted one picture's activations, not the batch's pictures
    # both sides keep: over 10 GB) and ran out of memory after minutes of work.
    from studio.core.errors import InvalidRequest
    from studio.engine.memory import GIB

    monkeypatch.setattr(bench_pipelines, "available_ram", lambda: (10 * GIB, 24 * GIB))
    bench_pipelines.check_memory("sd15", True, tmp_path, torch.float32, None, 4096, batch=1)  # one picture fits
    with pytest.raises(InvalidRequest, match=r"^Timing the tiny sd15 layout at 4096x4096, batch 50, on the CPU "
                                             r"needs about \d+\.\d GB of memory .*; a smaller --size or --batch "
                                             r"needs less\.$"):
        bench_pipelines.check_memory("sd15", True, tmp_path, torch.float32, None, 4096, batch=50)
    assert bench_pipelines.runs_bytes(4096, True, 4, 50) - bench_pipelines.runs_bytes(4096, True, 4, 1) > 9 * GIB
