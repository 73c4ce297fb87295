"""Benchmark: the work a picture repeats that Studio now does once per prompt, canvas or job.

For SD 1.5's or SDXL's real architecture (random weights, Studio's shipped configs) on this device: reading the
prompt and negative prompt (``encode_prompt``), encoding a canvas picture with the VAE (img2img, inpainting), and
diffusers' search for where the pipeline and its models compute; each the first time, and then as Studio's
caches and pins answer it (``prompt_cache``, ``encoded_pictures``, ``device_lookups``). The device search depends
only on how many modules there are, so ``--tiny`` (the same layout at 1/8 of the widths) shows it too.
Run: python tests/benchmarks/repeated_work.py [--family sd15|sdxl] [--size 512] [--dtype bfloat16|float32] [--tiny]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from studio.engine.bench_pipelines import build_pipeline  # noqa: E402
from studio.engine.cpu_precision import lay_out_for_cpu  # noqa: E402
from studio.engine.device import select_device  # noqa: E402
from studio.engine.device_lookups import device_lookups_pinned  # noqa: E402
from studio.engine.encoded_pictures import encodings_cached  # noqa: E402
from studio.engine.prompt_cache import prompts_cached  # noqa: E402


def median_ms(work: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("sd15", "sdxl"), default="sd15")
    parser.add_argument("--size", type=int, default=512, help="the canvas picture's side, in pixels")
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = replace(select_device(args.device), dtype=getattr(torch, args.dtype))
    if device.kind == "cpu":
        torch.set_num_threads(1)  # as the engine computes beside the window on a 2-core machine
    pipe = build_pipeline(args.family, args.tiny, device, Path(tempfile.mkdtemp()))
    pipe.to(dtype=device.dtype)
    lay_out_for_cpu(pipe, device)  # as a bfloat16 CPU job lays out its weights (channels-last)
    where = device.torch_device
    picture = torch.rand(1, 3, args.size, args.size, device=where, dtype=device.dtype) * 2 - 1

    def read_prompt() -> object:
        return pipe.encode_prompt("a watercolor fox in a misty forest", device=torch.device(where),
                                  num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt="blurry")

    def encode_canvas() -> object:
        return pipe.vae.encode(picture)

    print(f"{args.family} ({'tiny layout' if args.tiny else 'full size'}), {device.kind}, {args.dtype}:")
    with torch.inference_mode():
        for label, work, cached in (("read the prompt and the negative prompt", read_prompt, prompts_cached),
                                    (f"encode a {args.size}x{args.size} canvas", encode_canvas, encodings_cached)):
            work()  # first-use costs (kernels, allocations) out of the way
            plain = median_ms(work)
            with cached(pipe):
                work()  # the first time, kept
                kept = median_ms(work)
            print(f"  {label:<42} {plain:9.1f} ms, then {kept:.2f} ms")
    searched = median_ms(lambda: (pipe._execution_device, pipe.unet.device, pipe.vae.device))
    with device_lookups_pinned(pipe):
        pinned = median_ms(lambda: (pipe._execution_device, pipe.unet.device, pipe.vae.device))
    print(f"  {'where the pipeline, UNet and VAE compute':<42} {searched:9.1f} ms, then {pinned:.2f} ms")


if __name__ == "__main__":
    main()
