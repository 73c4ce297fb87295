"""Benchmark: Gatys neural style transfer and AdaIN at working sizes, on random full-size weights.

Speed does not depend on the weight values, so random VGG-19/AdaIN weights in the real layouts time
the real code path (through the real loaders, the same device choice and thread count Studio uses).
Run: python tests/benchmarks/style_transfer.py [--iterations N] [--sizes 256 512] [--adain-sizes 512 768]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from style_weights import (
    RecordingContext,
    gradient_image,
    make_env,
    write_adain,
    write_vgg19,
)

from studio.engine.cpu_precision import cpu_dtype
from studio.engine.device import dtype_name, select_device
from studio.engine.style.adain import AdaINStyle
from studio.engine.style.neural import NeuralStyle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200, help="Gatys iterations (default 200)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 512], help="Gatys square sizes")
    parser.add_argument("--adain-sizes", type=int, nargs="*", default=[512, 768], help="AdaIN square sizes")
    parser.add_argument("--device", default="auto", help="auto | cuda | mps | cpu")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="style-bench-"))
    models = root / "models"
    write_vgg19(models)
    write_adain(models)
    env = make_env(root, models)
    env = type(env)(device=args.device, data_dir=env.data_dir, cache_dir=env.cache_dir, models_dir=models)
    print(f"device: {select_device(args.device).description}; torch threads: {torch.get_num_threads()}; AdaIN on "
          f"the CPU in {dtype_name(cpu_dtype(fast=True))} (STUDIO_CPU_DTYPE overrides)")

    neural = NeuralStyle(env)
    neural.load(select_device(args.device).torch_device)  # load once, outside the timings, as in a session
    for size in args.sizes:
        content, style = gradient_image(size, size, 1), gradient_image(size, size, 7)
        params = {"style": style, "iterations": args.iterations, "resolution": size, "style_weight": 1e5,
                  "content_weight": 1.0, "seed": 0, "init": "content", "preserve_colors": False}
        start = time.perf_counter()
        neural.process(content, params, RecordingContext())
        seconds = time.perf_counter() - start
        print(f"Gatys {size}x{size}, {args.iterations} iterations: {seconds:.1f} s "
              f"({neural.passes} VGG passes, {seconds / max(1, neural.passes):.3f} s per pass)")

    adain = AdaINStyle(env)
    adain.load(select_device(args.device).torch_device)
    for size in args.adain_sizes:
        content, style = gradient_image(size, size, 1), gradient_image(size, size, 7)
        params = {"style": style, "alpha": 1.0, "resolution": size, "preserve_colors": False}
        adain.process(content, params, RecordingContext())  # warm-up: first-call allocations
        times = []
        for _ in range(3):
            start = time.perf_counter()
            adain.process(content, params, RecordingContext())
            times.append(time.perf_counter() - start)
        print(f"AdaIN {size}x{size}: {min(times):.2f} s (best of 3)")


if __name__ == "__main__":
    main()
