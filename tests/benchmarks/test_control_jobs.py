"""``control_jobs.py`` on the CPU, at its tiniest: the Depth preprocessor and a guided SDXL job, plain diffusers against
Studio, end to end, with every figure the GPU run reads in its JSON (the GPU run: ``gpu/run_on_gpu.sh``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("control_jobs.py")


def run_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # float32 on both sides (a CPU with bfloat16 units would give Studio its bfloat16 copy): the pictures must match.
    env = dict(os.environ, STUDIO_HOME=str(tmp_path / "home"), STUDIO_CPU_DTYPE="float32", PYTHONIOENCODING="utf-8")
    env.pop("STUDIO_DEVICE", None)
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=180, stdin=subprocess.DEVNULL)


@pytest.mark.slow  # one process importing torch and diffusers, about 12 s on 2 cores
def test_the_control_bench_runs_on_the_cpu_and_reports_every_figure(tmp_path: Path):
    figures_file = tmp_path / "figures.json"
    result = run_script(tmp_path, "--device", "cpu", "--steps", "2", "--runs", "1", "--json", str(figures_file))
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(figures_file.read_text(encoding="utf-8"))
    assert data["device_kind"] == "cpu" and data["torch"] and data["diffusers"] and data["transformers"]

    depth = data["depth"]
    assert (depth["picture"], depth["read_at"]) == ([1024, 1024], [56, 56])  # the tiny model's processor size
    assert depth["float32"]["first_seconds"] > 0 and depth["float32"]["warm_seconds"] > 0
    assert len(depth["float32"]["warm_runs"]) == 5
    assert "float32 on the CPU" in depth["float16"]["skipped"]

    guided = data["guided"]
    assert (guided["family"], guided["architecture"], guided["size"], guided["steps"], guided["runs"]) == \
        ("sdxl", "tiny", 64, 2, 1)
    assert guided["controlnet_parameters"] > 1_000_000 and guided["build_seconds"] > 0
    for side in (guided["plain"], guided["studio"]):
        assert side["seconds_per_image"] > 0 and side["warmup_seconds"] > 0 and len(side["run_seconds"]) == 1
    assert guided["speedup"] > 0
    # The guide changed nothing between the two sides: Studio's guided job makes plain diffusers' picture.
    assert not guided["flat_pictures"]
    assert guided["same_seed_difference"] == {"identical": True, "mean": 0.0, "max": 0, "within_tolerance": True}
    studio = guided["studio"]
    assert not studio["fast_path"] and "off on the CPU" in studio["fast_path_off_reason"]
    assert studio["captures"] == [] and studio["capture_seconds"] == 0
    assert "no VRAM measure" in guided["studio_low"]["skipped"]

    report = result.stdout  # the readable lines, as the GPU run's diagnostics.txt keeps them
    assert "Depth preprocessor, float16: skipped" in report
    assert "Guided job: tiny sdxl layout" in report and "Studio at Memory Low: skipped" in report


def test_the_control_bench_asked_for_cuda_without_it_says_so(tmp_path: Path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = run_script(tmp_path, "--device", "cuda")
    assert result.returncode == 2
    assert "no CUDA GPU is available to PyTorch here; run it with --device cpu or auto." in result.stderr
