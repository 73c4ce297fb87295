"""``studio bench`` on the CPU: the tiny default architecture, plain diffusers against Studio's engine."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from studio_testing import run_studio, run_studio_commands, sigint_as_at_a_terminal

from studio.cli_bench import report


def building_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Building")]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, float]:
    home = tmp_path_factory.mktemp("bench") / "home"
    started = time.perf_counter()
    result = run_studio(home, "bench", "--json", timeout=180)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert "tiny sd15 layout" in result.stderr  # progress goes to stderr, the JSON alone to stdout
    building = building_lines(result.stderr)  # one copy, shared by both sides: one line
    assert len(building) == 1 and re.fullmatch(r"Building a tiny sd15 layout \(1/8 of every width; not a real "
                                               r"model's speed\) with random weights on CPU · \d+ threads?, in "
                                               r"float32, for both sides…", building[0]), building
    return json.loads(result.stdout), elapsed


def test_bench_json_on_the_cpu_times_both_sides_and_their_pictures_match(bench):
    data, elapsed = bench
    assert elapsed < 90  # about 15 s on a 2-core machine
    assert (data["family"], data["architecture"], data["size"], data["steps"]) == ("sd15", "tiny", 64, 4)
    assert data["device_kind"] == "cpu" and data["device"].startswith("CPU")
    assert data["torch"] and data["diffusers"] and data["scheduler"] == "Euler"
    for side in (data["plain"], data["studio"]):
        assert side["seconds_per_image"] > 0 and side["it_per_s"] > 0 and side["warmup_seconds"] > 0
        assert len(side["run_seconds"]) == data["runs"] == 3
        probe = side["main_thread_probe"]  # a thread beside the engine through the timed runs, waking every 2 ms
        assert probe["ticks"] >= 20 and 1.5 <= probe["median_ms"] <= probe["p99_ms"] <= probe["max_ms"]
    assert data["speedup"] > 0 and data["build_seconds"] > 0 and data["peak_rss_bytes"] > 0
    assert data["same_seed_difference"] == {"identical": True, "mean": 0.0, "max": 0, "within_tolerance": True}
    studio = data["studio"]
    assert not studio["fast_path"] and "off on the CPU" in studio["fast_path_off_reason"]
    assert studio["captures"] == [] and studio["notes"] == []
    # What a person gets: a progress event at every step of every Studio picture, and live previews.
    assert studio["progress_events"] == (data["runs"] + 1) * data["steps"]
    assert 0 < studio["preview_events"] <= studio["progress_events"]


def test_bench_report_says_what_was_measured(bench):
    text = report(bench[0])
    assert "tiny sd15 layout (1/8 of every width; not a real model's speed)" in text
    assert "64x64, 4 steps, CFG 7, Euler, batch 1, median of 3 runs" in text
    assert "plain diffusers" in text and "Studio is " in text and "Fast path: off" in text
    assert "Same seed: identical pictures." in text
    assert "A Python thread beside the engine (as the window's main thread), waking every 2 ms: Studio p99 " in text
    assert "Peak VRAM" not in text  # the CPU reports none
    # Each median with its spread; what it/s counts; that Studio's warm-up primed its prompt cache.
    for label, side in (("plain diffusers", bench[0]["plain"]), ("Studio", bench[0]["studio"])):
        row = next(line for line in text.splitlines() if line.startswith(f"{label:18}"))
        spread = f"({min(side['run_seconds']):.3f}–{max(side['run_seconds']):.3f})"
        assert row.split()[-4:-2] == [f"{side['seconds_per_image']:.3f}", spread], row
    assert "(fastest–slowest run)" in text
    assert "it/s: steps per second of a whole picture (reading the prompt and decoding included)" in text
    assert "Studio's warm-up also reads the prompt into its prompt cache" in text and "plain diffusers has none" in text


def test_bench_report_gives_the_vram_allocated_and_what_the_process_reserved(bench):
    """On a GPU the fast path's graph pool keeps free blocks the allocated figure leaves out: both are given."""
    import copy

    data = copy.deepcopy(bench[0])
    for side, allocated, reserved in (("plain", 3, 4), ("studio", 3.5, 6)):
        data[side].update(peak_vram_bytes=int(allocated * 2**30), peak_vram_reserved_bytes=int(reserved * 2**30))
    text = report(data)
    assert "Peak VRAM allocated: plain 3.00 GiB, Studio 3.50 GiB" in text
    assert "Peak VRAM reserved by the process: during plain 4.00 GiB, during Studio 6.00 GiB" in text


def test_bench_refuses_a_size_or_a_cfg_scale_a_generation_would_refuse_before_loading_torch(tmp_path: Path):
    # --size 100000 ran for minutes, building the pipelines, then torch asked for 400 GB: refused at once now.
    from test_cli import assert_refused_without_torch

    assert_refused_without_torch(tmp_path / "home", ["bench"], {
        **{f"size {size}": (["--size", size], f"The size must be a multiple of 8 between 64 and 4096 pixels, "
                                              f"not {size}.") for size in ("100", "56", "4104", "100000")},
        **{f"cfg {cfg}": (["--cfg", cfg], f"--cfg must be between 0 and 50, not {float(cfg):g}.")
           for cfg in ("-5", "51", "nan")},
        # A generation's limits, said as a generation says them: --steps 5000 ran for hours.
        "steps 0": (["--steps", "0"], "Steps must be at least 1, not 0."),
        "steps 1001": (["--steps", "1001"], "Steps must be at most 1000, not 1001."),
        **{f"batch {batch}": (["--batch", batch], f"The batch count must be between 1 and 100, not {batch}.")
           for batch in ("0", "101")}})


PLAIN_DTYPES = ("float32", "bfloat16")


@pytest.fixture(scope="module")
def sdxl_benches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """``studio bench --family sdxl --runs 1 --json`` with each plain-diffusers precision, Studio's bfloat16, one
    thread: both in one fresh Python (one import of torch; the thread count is not this process's to change)."""
    home = tmp_path_factory.mktemp("bench-sdxl") / "home"
    runs = run_studio_commands(home, *(["bench", "--family", "sdxl", "--runs", "1", "--plain-dtype", plain, "--json"]
                                       for plain in PLAIN_DTYPES),
                               env={"STUDIO_CPU_DTYPE": "bfloat16", "STUDIO_CPU_THREADS": "1"}, timeout=300)
    return dict(zip(PLAIN_DTYPES, runs, strict=True))


def test_bench_report_counts_one_run_and_one_step_in_good_words(bench):
    # `--runs 1` said "median of 1 runs".
    import copy

    data = copy.deepcopy(bench[0])
    data.update(runs=1, steps=1)
    assert f"{data['size']}x{data['size']}, 1 step, CFG 7, Euler, batch 1, 1 run · built in " in report(data)


@pytest.mark.parametrize("plain", PLAIN_DTYPES)
def test_bench_says_building_once_with_each_sides_precision(sdxl_benches, plain: str):
    """Where Studio gets its own copy (bfloat16, channels-last), "Building a tiny sdxl layout … with random weights"
    began two lines, read as one line said twice; the second named the device's float32 even for a bfloat16 plain
    diffusers."""
    result = sdxl_benches[plain]
    assert result.returncode == 0, result.stderr
    assert building_lines(result.stderr) == [
        "Building a tiny sdxl layout (1/8 of every width; not a real model's speed) with random weights on CPU · "
        f"1 thread, twice: in {plain} for plain diffusers, in bfloat16 (channels-last) for Studio…"]
    data = json.loads(result.stdout)
    assert (data["plain_dtype"], data["studio_dtype"]) == (plain, "bfloat16")
    # The report's device is where; the precisions have their line ("Device: CPU · 1 thread · float32" was said
    # above "Precision: plain diffusers bfloat16, Studio bfloat16"). The warm-ups name the sides as it does.
    text = report(data)
    assert f"Device: CPU · 1 thread · torch {data['torch']}" in text
    assert f"Precision: plain diffusers {plain}, Studio bfloat16" in text
    assert "Warm-up: plain diffusers…\nWarm-up: Studio…\n" in result.stderr


def test_ctrl_c_stops_the_bench_with_a_sentence(tmp_path: Path):
    """Ctrl+C printed a traceback from wherever torch or the thread probe happened to be."""
    home = tmp_path / "home"
    env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_DEVICE="cpu", PYTHONIOENCODING="utf-8")
    home.mkdir()
    bench = subprocess.Popen([sys.executable, "-m", "studio", "bench", "--runs", "1000"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                             encoding="utf-8", preexec_fn=sigint_as_at_a_terminal)
    try:
        for line in bench.stdout:  # the progress lines go to stdout without --json
            if line.startswith("Run 1/"):
                bench.send_signal(signal.SIGINT)
                break
        rest, stderr = bench.communicate(timeout=120)
    finally:
        bench.kill()
    assert (bench.returncode, stderr) == (130, "studio: bench stopped; nothing was measured.\n")
    assert "Studio is " not in rest  # no report of runs that did not finish


def test_every_argument_of_studio_bench_says_what_it_takes_in_a_users_words():
    """--family and --device had no help, and --scheduler's default was explained by 'the baselines in
    shared/gpu', a folder of the developers' that no user has."""
    from test_cli_models import subcommands, undocumented

    from studio.cli import build_parser

    bench = subcommands(build_parser())["bench"]
    assert undocumented(bench, "studio bench") == []
    assert "shared/" not in bench.format_help()
    device = next(action for action in bench._actions if "--device" in action.option_strings)
    assert "mps" in device.help  # the parser takes it, as generate's does
    assert "1 to 1000" in next(a for a in bench._actions if "--steps" in a.option_strings).help


def test_bench_takes_a_scheduler_in_any_case_as_generate_does(studio_home, monkeypatch, capsys):
    # Only the exact names were taken (euler_a was argparse's "invalid choice"), while studio generate takes any case.
    from studio.cli import main
    from studio.core.requests import SCHEDULER_NAMES

    ran: list[str] = []

    def bench(config, cache_dir, say, note):  # noqa: ANN001, ANN202 - the engine's bench, not run here
        ran.append(config.scheduler)
        return {}

    monkeypatch.setattr("studio.engine.bench.run_bench", bench)
    for given in ("euler_a", "dpm++ 2m karras", "DDIM"):
        assert main(["bench", "--json", "--scheduler", given]) == 0
    assert ran == ["Euler a", "DPM++ 2M Karras", "DDIM"]
    capsys.readouterr()
    assert main(["bench", "--scheduler", "fastest"]) == 2
    assert capsys.readouterr().err == (f"studio: Unknown scheduler 'fastest'; --scheduler takes one of: "
                                       f"{', '.join(SCHEDULER_NAMES)}.\n")
    assert ran == ["Euler a", "DPM++ 2M Karras", "DDIM"]


PLAIN_OUT_OF_MEMORY = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of "
                       "which 1.02 GiB is free. Including non-PyTorch memory, this process has 78.16 GiB memory in "
                       "use. If reserved but unallocated memory is large try setting "
                       "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.")


def _bench_failing(monkeypatch, capsys, where: str, error: Exception) -> tuple[int, str, str]:  # noqa: ANN001
    """``studio bench --runs 1`` on the CPU, in this process, with ``error`` raised by plain diffusers' pipeline at
    its first call ("plain warm-up") or its second ("plain run"), or by Studio's generator ("studio warm-up")."""
    import diffusers

    from studio.cli import main
    from studio.engine.diffusion import DiffusersGenerator

    calls = {"plain": 0}
    plain_call = diffusers.StableDiffusionPipeline.__call__

    def plain(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - diffusers' own signature
        if "callback_on_step_end" in kwargs:  # Studio's generator calls the pipeline too, to follow every step
            return plain_call(self, *args, **kwargs)
        calls["plain"] += 1
        if where == "plain warm-up" or (where == "plain run" and calls["plain"] == 2):
            raise error
        return plain_call(self, *args, **kwargs)

    def studio(self, request, context):  # noqa: ANN001, ANN202
        raise error
        yield

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "__call__", plain)
    if where == "studio warm-up":
        monkeypatch.setattr(DiffusersGenerator, "generate", studio)
    code = main(["bench", "--device", "cpu", "--runs", "1"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("where", "error", "said"), [
    ("plain warm-up", "out of memory",
     "studio: Plain diffusers ran out of memory in its warm-up (it asked for 2.00 GiB more), so the bench has no "
     "figures; a smaller --size or --batch needs less.\n"),
    ("plain run", "runtime",
     "studio: Plain diffusers failed in timed run 1 of 1 (RuntimeError: Expected all tensors to be on the same "
     "device, but found at least two devices), so the bench has no figures.\n"),
    ("studio warm-up", "runtime",
     "studio: Studio failed in its warm-up (RuntimeError: Expected all tensors to be on the same device, but found "
     "at least two devices), so the bench has no figures.\n"),
])
def test_a_side_that_fails_is_one_sentence_naming_it_not_a_traceback(studio_home, monkeypatch, capsys, where, error,
                                                                     said):
    """torch's OutOfMemoryError or a RuntimeError from diffusers ended `studio bench` in a Python traceback."""
    import torch

    from studio.cli_exit import EXIT_FAILED
    from studio.core.paths import studio_paths

    raised = torch.OutOfMemoryError(PLAIN_OUT_OF_MEMORY) if error == "out of memory" else RuntimeError(
        "Expected all tensors to be on the same device, but found at least two devices.\nMore lines of detail.")
    code, out, err = _bench_failing(monkeypatch, capsys, where, raised)
    assert code == EXIT_FAILED
    assert err.splitlines(keepends=True)[-1] == said and "Traceback" not in err
    assert "Studio is " not in out  # no report without its figures
    assert "Traceback" in (studio_paths().data_dir / "studio.log").read_text(encoding="utf-8")  # kept for a bug report


def test_bench_takes_the_devices_generate_takes_and_says_a_studio_device_it_cannot_use(studio_home, monkeypatch,
                                                                                         capsys):
    # --device took only auto, cuda and cpu (cuda:1 and CPU were argparse's "invalid choice"), and STUDIO_DEVICE
    # naming no device, or a GPU PyTorch lacks, was used or ignored without a word.
    import torch

    from studio.cli import main

    ran: list[tuple[str, str | None]] = []

    def bench(config, cache_dir, say, note):  # noqa: ANN001, ANN202 - the engine's bench, not run here
        ran.append((config.device, os.environ.get("STUDIO_DEVICE")))
        return {}

    monkeypatch.setattr("studio.engine.bench.run_bench", bench)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("STUDIO_DEVICE", "cuda:1")
    assert main(["bench", "--json", "--device", "CPU"]) == 0  # the option over STUDIO_DEVICE, with no note
    assert ran.pop() == ("cpu", "cpu") and capsys.readouterr().err == ""
    assert main(["bench", "--json", "--device", "cuda:1"]) == 2
    assert capsys.readouterr().err == "studio: No CUDA GPU is available to PyTorch here; give --device cpu or auto.\n"
    assert main(["bench", "--json"]) == 0
    assert ran.pop() == ("auto", "cuda:1")
    assert "STUDIO_DEVICE is cuda:1, but no CUDA GPU is available to PyTorch here; the job runs on the CPU." in \
        capsys.readouterr().err
    monkeypatch.setenv("STUDIO_DEVICE", "bogus")
    assert main(["bench", "--json"]) == 0
    assert "STUDIO_DEVICE is 'bogus', which is no device: it takes" in capsys.readouterr().err
    assert ran == [("auto", "bogus")]
