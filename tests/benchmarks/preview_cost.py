"""Benchmark: what a live preview costs, per call and as a share of generation.

Per call: the linear approximation and TAESD (a random-weight AutoencoderTiny with TAESD's real config:
speed does not depend on the weights) at SD 1.x (64x64 latents, 512x512 pictures) and SDXL (128x128
latents, 1024x1024) sizes, each to a PIL image as the UI receives it. Share: a tiny-model job (20 steps,
two images, 64x64) with previews on and off, through Studio's real generator; with ``--unet``, also one
step of a full-size SD 1.5 UNet (random weights, CFG batch of 2) on this device.
Run: python tests/benchmarks/preview_cost.py [--device cpu|cuda] [--unet]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from studio.engine.preview import LivePreviews, PreviewThrottle, latents_to_preview  # noqa: E402
from studio.engine.taesd import taesd_decoder  # noqa: E402

SIZES = {"sd": 64, "sdxl": 128}  # latent side: 512 and 1024 pixels


def timed(fn: Callable[[], object], repeat: int, device: torch.device) -> float:
    """Median seconds of fn (synchronised on CUDA, so the device's work is counted)."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def per_call(models: Path, device: torch.device, repeat: int) -> dict[str, float]:
    from diffusers import AutoencoderTiny

    results: dict[str, float] = {}
    for family, side in SIZES.items():
        AutoencoderTiny().save_pretrained(models / ("taesd" if family == "sd" else "taesdxl"))
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        latents = torch.randn(1, 4, side, side, device=device, dtype=dtype)
        results[f"linear {family}"] = timed(lambda x=latents, f=family: latents_to_preview(x, f), repeat * 10, device)
        live = LivePreviews(family, decoder=taesd_decoder(models, family), throttle=PreviewThrottle(budget=1e9))
        # TAESD on a CPU takes seconds: fewer rounds there.
        rounds = repeat if device.type == "cuda" else 2
        results[f"taesd {family}"] = timed(lambda x=latents, p=live: p(x, 1, 1), rounds, device)
    return results


def job_share(models: Path, device: str) -> tuple[float, float, int, float]:
    """Seconds for a tiny-model job without and with previews, the previews made, and their own time."""
    from tiny_models import build_tiny_sd

    import studio.engine.batch_run as batch_run
    import studio.engine.diffusion as diffusion
    from studio.core.environment import GeneratorEnvironment
    from studio.core.requests import GenerationRequest

    model = build_tiny_sd(models.parent / "tiny-sd")
    env = GeneratorEnvironment(device, models.parent / "data", models.parent / "cache", models.parent / "none")
    generator = diffusion.DiffusersGenerator(env)
    request = GenerationRequest(model=str(model), prompt="a fox", width=64, height=64, steps=20, seed=1,
                                scheduler="Euler", batch_count=2)
    spent: list[float] = []
    made = [0]

    class Context:
        wants_previews = True

        def report_progress(self, step, total, image_index=0, preview=None, preview_box=None):  # noqa: ANN001, ANN201
            made[0] += preview is not None

        def is_cancelled(self) -> bool:
            return False

        def check_cancelled(self) -> None: ...

        def note(self, text: str) -> None: ...

        def status(self, **kwargs) -> None: ...  # noqa: ANN003

    class Timed(LivePreviews):
        def __call__(self, latents, step, total):  # noqa: ANN001, ANN204
            started = time.perf_counter()
            try:
                return super().__call__(latents, step, total)
            finally:
                spent.append(time.perf_counter() - started)

    class Off:
        def __init__(self, *args, **kwargs) -> None: ...  # noqa: ANN002, ANN003

        def __call__(self, latents, step, total) -> None: ...  # noqa: ANN001

    def once(previews: type) -> float:
        batch_run.LivePreviews = previews
        started = time.perf_counter()
        list(generator.generate(request, Context()))
        return time.perf_counter() - started

    once(Timed)
    on, off, cost, count = [], [], [], []
    for _ in range(5):
        spent.clear()
        made[0] = 0
        on.append(once(Timed))
        cost.append(sum(spent))
        count.append(made[0])
        off.append(once(Off))
    batch_run.LivePreviews = LivePreviews
    best = on.index(min(on))
    return min(off), on[best], count[best], cost[best]


def unet_step(device: torch.device) -> float:
    """Seconds of one full-size SD 1.5 UNet step with CFG (batch 2) at 512x512, random weights."""
    from diffusers import UNet2DConditionModel

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    config = UNet2DConditionModel.load_config(ROOT / "resources" / "model-configs" / "sd1" / "unet")
    unet = UNet2DConditionModel.from_config(config).to(device, dtype).eval()
    sample = torch.randn(2, 4, 64, 64, device=device, dtype=dtype)
    context = torch.randn(2, 77, 768, device=device, dtype=dtype)
    with torch.inference_mode():
        return timed(lambda: unet(sample, 500, context), 2, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--unet", action="store_true", help="also time one full-size SD 1.5 UNet step")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device: {device}; torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        calls = per_call(models, device, args.repeat)
        for name, seconds in calls.items():
            print(f"{name:12s} {seconds * 1000:8.2f} ms per preview")
        off, on, count, cost = job_share(Path(tmp) / "tiny" / "models", args.device)
        print(f"tiny-model job (2 x 20 steps, 64x64): {off * 1000:.0f} ms without previews, {on * 1000:.0f} ms "
              f"with {count} previews ({on / off:.2f}x); the previews took {cost * 1000:.1f} ms = "
              f"{cost / on:.1%} of the job")
        if args.unet:
            step = unet_step(device)
            print(f"SD 1.5 UNet step with CFG at 512x512: {step * 1000:.0f} ms; a preview at every step would be "
                  f"{calls['linear sd'] / step:.2%} (linear) or {calls['taesd sd'] / step:.1%} (TAESD) of it")


if __name__ == "__main__":
    main()
