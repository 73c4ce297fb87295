"""The first picture after start, with and without the engine's warm-up run (what a person waits for first).

A full-size SD 1.5 (or SDXL) with random weights is saved once; then each case starts a fresh process with
Studio's JobService, as the window does: the engine comes up, prepares for the likely job (loads the model
and, with the warm-up, runs one step of it at its size), and only then the job is submitted. The figure is
from submitting the job to its picture. Without the warm-up the job pays the device's first-use costs (CUDA
libraries and kernels, cuDNN's choices, the fast path's graph capture, the VAE's kernels) itself. After the
warmed-up case's first picture come one with another model (never loaded: read from disk, hashed beside) and
two back with the first (kept loaded: no read; on a GPU its step is captured again, then replayed).
Run: python tests/benchmarks/gpu/first_picture.py [--family sd15] [--size 512] [--steps 20]
On a machine without CUDA it runs a tiny layout at 64x64 (a check of the script, not a figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def build(folder: Path, family: str, device: str) -> bool:
    """Save the family's architecture with random weights into folder; True when it is the tiny layout."""
    from studio.engine import bench_pipelines
    from studio.engine.device import select_device

    chosen = select_device(device)
    tiny = chosen.kind == "cpu"
    pipe = bench_pipelines.build_pipeline(family, tiny, chosen, folder.parent / "configs")
    pipe.save_pretrained(folder, safe_serialization=True)
    return tiny


async def first_picture(model: Path, cache: Path, size: int, steps: int, warm: bool, device: str) -> dict:
    from studio.core.environment import GeneratorEnvironment
    from studio.core.events import EngineStatus, JobFailed, JobFinished
    from studio.core.requests import GenerationRequest
    from studio.engine import diffusion
    from studio.plugin_host.registry import builtin_registry
    from studio.services.jobs import JobService

    diffusion.warm_up_worthwhile = lambda _device: warm  # the one switch between the two cases
    started = time.perf_counter()
    service = JobService(builtin_registry(), GeneratorEnvironment(device, cache / "data", cache / "cache"))
    stream = service.subscribe()
    request = GenerationRequest(model=str(model), prompt="a lighthouse at dusk", width=size, height=size,
                                steps=steps, seed=1)
    service.prefer(request)
    service.start()
    try:
        warming = False
        async with asyncio.timeout(300):
            async for event in stream:  # the engine is up and prepared (the model loaded; warmed up, if asked)
                if isinstance(event, EngineStatus):
                    warming = warming or event.message.startswith("Warming")
                    if event.model and event.message == "" and (warming or not warm):
                        break
        prepared = time.perf_counter() - started


        fallbacks: list[str] = []  # the fast path's notes: an eager fallback shows only as a slower time otherwise

        async def picture(model: Path) -> float:
            submitted = time.perf_counter()
            job = service.submit(replace(request, model=str(model)))
            async with asyncio.timeout(300):
                async for event in stream:
                    if isinstance(event, (JobFinished, JobFailed)) and event.job_id == job:
                        if isinstance(event, JobFailed):
                            raise RuntimeError(event.message)
                        fallbacks.extend(f"{model.name}: {note}" for note in event.notes
                                         if "fast path" in note.lower() or "captured UNet step" in note)
                        return time.perf_counter() - submitted
            raise RuntimeError("the stream ended")

        figures = {"warm_up": warm, "prepared_s": prepared, "first_picture_s": await picture(model)}
        if warm:  # then another model (the same files under another name, never loaded), and back to the first
            other = model.parent / "other-model"
            if not other.exists():
                shutil.copytree(model, other, copy_function=os.link)
            for name, path in (("other_model_s", other), ("switched_back_s", model), ("same_model_s", model)):
                figures[name] = await picture(path)
        figures["fast_path_notes"] = fallbacks
        return figures
    finally:
        service.shutdown(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="sd15", choices=["sd15", "sdxl"])
    parser.add_argument("--size", type=int, help="default: 512 for sd15, 1024 for sdxl (64 with the tiny layout)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", nargs=4, metavar=("MODEL", "CACHE", "SIZE", "WARM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, cache, size, warm = args.child
        figures = asyncio.run(first_picture(Path(model), Path(cache), int(size), args.steps, warm == "1",
                                            args.device))
        print(json.dumps(figures), flush=True)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "model"
        tiny = build(folder, args.family, args.device)
        size = args.size or (64 if tiny else {"sd15": 512, "sdxl": 1024}[args.family])
        results = []
        for warm in (False, True):  # each in a fresh process: first-use costs are per process
            done = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--device", args.device,
                                   "--child", str(folder), scratch, str(size), "1" if warm else "0"],
                                  capture_output=True, text=True, timeout=600)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                print(f"warm-up {'on' if warm else 'off'}: failed\n{done.stderr[-3000:]}", flush=True)
                continue
            figures = json.loads(lines[-1])
            results.append(figures)
            print(f"{args.family}{' (tiny layout)' if tiny else ''} {size}x{size}, {args.steps} steps, warm-up "
                  f"{'on ' if warm else 'off'}: engine prepared {figures['prepared_s']:.1f} s after start; first "
                  f"picture {figures['first_picture_s']:.2f} s after it was asked for", flush=True)
            if "other_model_s" in figures:
                print(f"then a picture with another model {figures['other_model_s']:.2f} s, back to the first "
                      f"(kept loaded) {figures['switched_back_s']:.2f} s, the same again "
                      f"{figures['same_model_s']:.2f} s", flush=True)
            for note in figures.get("fast_path_notes", []):
                print(f"  fast path: {note}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"family": args.family, "size": size, "steps": args.steps, "tiny": tiny,
                                         "runs": results}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
