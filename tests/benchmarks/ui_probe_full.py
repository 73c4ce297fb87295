"""Benchmark: the window's main thread while a full-size SD 1.5 job runs (random weights), with a 2 ms timer probe.

The window is Studio's real main window (offscreen unless a display is set) and the job goes through the
real queue, engine thread and previews. On a GPU it measures issue 8's UI target as a person sees it; on the
CPU it is slow but shows the same thing. The engine preloads the model as in the app, then the jobs run;
the figures of every job are printed:
wall-clock gaps between ticks (p99, max) and the main thread's own CPU time between ticks.
Run: python tests/benchmarks/ui_probe_full.py [--size 512] [--steps 20] [--jobs 3] [--device auto|cuda|cpu]
The full-size model (about 4 GB in float32) is built once into the cache folder given by --cache.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_window import real_window  # noqa: E402


def build_model(folder: Path) -> Path:
    if (folder / "model_index.json").is_file():
        return folder
    from studio.engine import bench_pipelines
    from studio.engine.device import select_device

    print(f"Building a full-size SD 1.5 with random weights into {folder}…", flush=True)
    pipe = bench_pipelines.build_pipeline("sd15", False, select_device("cpu"), folder.parent / "configs")
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


async def run_jobs(window, service, jobs: int) -> None:  # noqa: ANN001
    from test_ui_responsiveness import MainThreadProbe

    window.start()  # inside the running loop, as the app does after the first frame
    service.start()
    while window.status.model_label.text() == "No model loaded":  # the engine's imports and preload: not a job
        await asyncio.sleep(0.05)
    for number in range(1, jobs + 1):
        probe = MainThreadProbe()
        probe.start()
        window.generate()
        while len(window.queue_panel.job_ids("finished")) + len(window.queue_panel.job_ids("failed")) < number:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.15)  # the result's repaints, thumbnail and autosave
        took = window.status.message_label.text().split(" s.")[0] + " s"  # "Finished in 5.1 s"
        print(f"job {number}{' (the first after start)' if number == 1 else ''}: {probe.stop()} ({took})", flush=True)
    if window.queue_panel.job_ids("failed"):
        print("Some jobs failed; see the Queue panel's messages in the log.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "studio-ui-probe")
    args = parser.parse_args()
    model = build_model(args.cache / "sd15-random")
    started = time.perf_counter()
    print(f"{args.size}x{args.size}, {args.steps} steps, full-size SD 1.5 (random weights):", flush=True)
    with real_window(model, args.size, args.steps, args.device) as (window, service, run):
        window.prompt_panel.prompt_edit.setPlainText("a lighthouse at dusk, oil painting")
        run(run_jobs(window, service, args.jobs))
        print(f"device: {window.status.device_label.text()}; {time.perf_counter() - started:.1f} s in all")


if __name__ == "__main__":
    main()
