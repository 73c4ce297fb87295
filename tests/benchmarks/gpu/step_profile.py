"""Where a UNet step's and a VAE decode's time goes on this GPU, and which cheap switches help.

Issue 8 asks for 0.25 s per SD 1.5 picture, under the 0.30 s a bare CUDA-graph probe reached: the graph removes
the launch overhead, so what is left is the kernels. This measures, for the real architectures with random
weights (float16, batch 2 as with CFG):
- one UNet step as the fast path runs it (fused QKV, SDPA), eager and replayed from a CUDA graph, with cuDNN's
  autotuner (``torch.backends.cudnn.benchmark``) off and on, and the UNet's weights contiguous or channels_last;
- one picture's VAE decode, float16 and bfloat16, contiguous or channels_last, autotuner off and on;
- the kernels of one eager step (``torch.profiler``): how many, and the ones that take the most time.
The figures say which switch to make the fast path's default; the next device run confirms it end to end.

Run: python tests/benchmarks/gpu/step_profile.py [--family sd15 sdxl] [--json OUT.json]
On a machine without CUDA it runs the same code on a tiny layout, with a stand-in for the graph capture that runs
the step again (a check of the script, not a figure).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402

from studio.engine import bench_pipelines  # noqa: E402
from studio.engine.device import dtype_name, select_device  # noqa: E402
from studio.engine.fast_layout import UNetLayout  # noqa: E402
from studio.engine.unet_graph import GraphCache, GraphedUNet, capture_cuda_graph  # noqa: E402

REPEATS = 10


def on(flag: bool) -> str:
    return "on " if flag else "off"


def sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def seconds_per_call(call: Callable[[], Any], cuda: bool, repeats: int = REPEATS) -> float:
    """Median of three timed batches of ``repeats`` calls after two warm-up calls (wall clock, synchronized)."""
    for _ in range(2):
        call()
    batches = []
    for _ in range(3):
        sync(cuda)
        started = time.perf_counter()
        for _ in range(repeats):
            call()
        sync(cuda)
        batches.append((time.perf_counter() - started) / repeats)
    return statistics.median(batches)


def unet_inputs(unet: torch.nn.Module, latent: int, device: torch.device, dtype: torch.dtype) -> tuple[tuple, dict]:
    """A step's inputs as the pipelines pass them: latents, a 0-d timestep tensor, text states (and SDXL's)."""
    config = unet.config
    sample = torch.randn(2, config.in_channels, latent, latent, device=device, dtype=dtype)
    timestep = torch.tensor(999.0, device=device)
    text = torch.randn(2, 77, config.cross_attention_dim, device=device, dtype=dtype)
    kwargs: dict[str, Any] = {"encoder_hidden_states": text}
    if config.addition_embed_type == "text_time":
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.randn(2, pooled, device=device, dtype=dtype),
                                       "time_ids": torch.randn(2, 6, device=device, dtype=dtype)}
    return (sample, timestep), kwargs


def set_format(module: torch.nn.Module, channels_last: bool) -> None:
    module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def unet_variants(pipe: Any, latent: int, cuda: bool, say: Callable[[str], None]) -> list[dict[str, Any]]:
    unet = pipe.unet
    UNetLayout(unet).fuse_qkv()
    if cuda:
        capture = capture_cuda_graph
    else:  # the script's own check: a stand-in that runs the step again from the same static buffers
        from studio_testing import ReplayOnCpu as capture
    args, kwargs = unet_inputs(unet, latent, unet.device, unet.dtype)
    rows = []
    for autotune in (False, True) if cuda else (False,):
        torch.backends.cudnn.benchmark = autotune
        for channels_last in (False, True):
            set_format(unet, channels_last)
            with torch.no_grad():
                eager = seconds_per_call(lambda: unet(*args, return_dict=False, **kwargs), cuda)
                graphed_s = None
                graphed = GraphedUNet(unet, GraphCache(1), capture, on_eager=say,
                                      on_failure=lambda exc: say(f"  capture failed: {exc!r}"))
                started = time.perf_counter()
                graphed(*args, **kwargs)
                sync(cuda)
                capture_s = time.perf_counter() - started
                if not graphed.disabled:
                    graphed_s = seconds_per_call(lambda: graphed(*args, **kwargs), cuda)
            row = {"cudnn_benchmark": autotune, "channels_last": channels_last, "eager_ms": eager * 1000,
                   "graph_ms": graphed_s * 1000 if graphed_s else None, "capture_s": capture_s}
            rows.append(row)
            say(f"  UNet step  autotune={on(autotune)} channels_last={on(channels_last)}  eager {eager * 1000:7.2f} ms"
                + (f"  graph {graphed_s * 1000:7.2f} ms (capture {capture_s:.1f} s)" if graphed_s else ""))
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
    set_format(unet, False)
    torch.backends.cudnn.benchmark = False
    return rows


def vae_variants(pipe: Any, latent: int, cuda: bool, say: Callable[[str], None]) -> list[dict[str, Any]]:
    vae = pipe.vae
    rows = []
    dtypes = (torch.float16, torch.bfloat16) if cuda else (vae.dtype,)
    for dtype in dtypes:
        vae.to(dtype=dtype)
        latents = torch.randn(1, vae.config.latent_channels, latent, latent, device=vae.device, dtype=dtype)
        for autotune in (False, True) if cuda else (False,):
            torch.backends.cudnn.benchmark = autotune
            for channels_last in (False, True):
                set_format(vae, channels_last)
                with torch.no_grad():
                    ms = seconds_per_call(lambda: vae.decode(latents, return_dict=False)[0], cuda, repeats=3) * 1000
                rows.append({"dtype": dtype_name(dtype), "cudnn_benchmark": autotune,
                             "channels_last": channels_last, "decode_ms": ms})
                say(f"  VAE decode {dtype_name(dtype):8} autotune={on(autotune)} "
                    f"channels_last={on(channels_last)}  {ms:7.2f} ms")
    set_format(vae, False)
    torch.backends.cudnn.benchmark = False
    return rows


def kernel_profile(pipe: Any, latent: int, cuda: bool, say: Callable[[str], None], top: int = 15) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    unet = pipe.unet
    args, kwargs = unet_inputs(unet, latent, unet.device, unet.dtype)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.no_grad():
        unet(*args, return_dict=False, **kwargs)
        sync(cuda)
        with profile(activities=activities) as prof:
            unet(*args, return_dict=False, **kwargs)
            sync(cuda)
    # On CUDA, the kernels themselves (their rows in the averages are the GPU's busy time, counted once); on the
    # CPU, the operators' own time.
    kind, key = ("CUDA", "self_device_time_total") if cuda else ("CPU", "self_cpu_time_total")
    averages = [a for a in prof.key_averages() if a.device_type.name == kind]
    kernels = sum(a.count for a in averages) if cuda else 0
    busy = sum(getattr(a, key, 0) for a in averages) or 1
    rows = sorted(averages, key=lambda a: getattr(a, key, 0), reverse=True)[:top]
    table = [{"name": a.key[:90], "calls": a.count, "ms": getattr(a, key, 0) / 1000,
              "share": getattr(a, key, 0) / busy} for a in rows]
    if cuda:
        say(f"  one eager step launches {kernels} kernels, {busy / 1000:.2f} ms of GPU time")
    else:
        say("  (CPU: operator times, no kernels)")
    for row in table:
        say(f"    {row['ms']:8.3f} ms {row['share']:6.1%} {row['calls']:5d}x  {row['name']}")
    return {"kernels": kernels, "gpu_busy_ms": busy / 1000 if cuda else None, "top": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="+", default=["sd15", "sdxl"], choices=list(bench_pipelines.FAMILIES))
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    device = select_device(args.device)
    cuda = device.kind == "cuda"
    tiny = not cuda

    def say(text: str) -> None:
        print(text, flush=True)

    say(f"{device.description} · torch {torch.__version__}"
        + (f" · cuDNN {torch.backends.cudnn.version()}" if cuda else " · tiny layout, eager only (no CUDA)"))
    results: dict[str, Any] = {"device": device.description, "torch": torch.__version__, "tiny": tiny}
    with tempfile.TemporaryDirectory() as cache:
        for family in args.family:
            size = 64 if tiny else bench_pipelines.FAMILIES[family][1]
            say(f"== {family} at {size}x{size} (UNet batch 2, {dtype_name(device.dtype)})")
            pipe = bench_pipelines.build_pipeline(family, tiny, device, Path(cache))
            latent = size // 8
            results[family] = {"size": size}
            for part, measure in (("unet", unet_variants), ("vae", vae_variants), ("profile", kernel_profile)):
                try:  # one part failing (a capture, the profiler) must not cost the others' figures
                    results[family][part] = measure(pipe, latent, cuda, say)
                except Exception as exc:  # noqa: BLE001
                    say(f"  {part} failed: {traceback.format_exc()}")
                    results[family][part] = {"error": repr(exc)}
                    torch.backends.cudnn.benchmark = False
            del pipe
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
