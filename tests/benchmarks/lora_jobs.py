"""Benchmark: what a LoRA costs a job, with PEFT's LoRA layers left on (Studio before) against merged (Studio now).

Full-size SD 1.5 with random weights (speed does not depend on weight values) and a random rank-32 LoRA on
the layers kohya's SD 1.5 LoRAs train (attention, feed-forward, transformer in/out projections). Prints:
- one UNet step (batch 2, as with CFG) with no LoRA, with PEFT's LoRA layers on, and with the LoRA merged;
- the per-job costs: loading and taking off PEFT layers (before), merging, a job with the same LoRA
  (kept merged: nothing to do) and getting the base weights back (now), and the RAM the kept copy takes.
Run: python tests/benchmarks/lora_jobs.py [--size 256] [--runs N] [--device auto|cuda|cpu]
(the GPU run in tests/benchmarks/gpu/run_on_gpu.sh uses --size 512 on CUDA).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
RANK = 32


def make_lora(pipe, folder: Path) -> Path:  # noqa: ANN001
    """A random rank-32 LoRA for the pipeline's UNet, saved as model sites ship them; the UNet left without it."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = pipe.unet
    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, target_modules=TARGETS), adapter_name="made")
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn_like(parameter) * 0.01)
    state = {k: v.detach().to("cpu", torch.float16) for k, v in get_peft_model_state_dict(unet, adapter_name="made").items()}
    pipe.unload_lora_weights()
    type(pipe).save_lora_weights(folder, unet_lora_layers=state, weight_name="bench-lora.safetensors")
    return folder / "bench-lora.safetensors"


def median_seconds(work, runs: int, sync) -> float:  # noqa: ANN001
    work()  # warm-up
    sync()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, help="rounds (default: 5 on CUDA, 3 on the CPU)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch

    from studio.engine import bench_pipelines
    from studio.engine.device import select_device
    from studio.engine.loras import LoraFile, _merged, use_loras

    device = select_device(args.device)
    args.runs = args.runs or (5 if device.kind == "cuda" else 3)
    sync = torch.cuda.synchronize if device.kind == "cuda" else (lambda: None)
    work_dir = Path(tempfile.mkdtemp(prefix="studio-lora-bench-"))
    pipe = bench_pipelines.build_pipeline("sd15", False, device, work_dir / "configs")
    lora = LoraFile("bench-lora", make_lora(pipe, work_dir), 0.8)
    unet = pipe.unet
    side = args.size // 8
    with torch.no_grad():
        sample = torch.randn(2, 4, side, side, device=device.torch_device, dtype=device.dtype)
        context = torch.randn(2, 77, 768, device=device.torch_device, dtype=device.dtype)
        timestep = torch.tensor(500.0, device=device.torch_device)

        def step() -> None:
            unet(sample, timestep, encoder_hidden_states=context)

        print(f"{device.description}, {device.dtype}, {args.size}x{args.size}, UNet batch 2, rank-{RANK} LoRA "
              f"on {', '.join(TARGETS)}; {args.runs} rounds, each timing the three in turn (so drift hits all)")
        steps = 5 if device.kind == "cuda" else 1
        times: dict[str, list[float]] = {"base": [], "layered": [], "merged": []}
        costs: dict[str, list[float]] = {"attach": [], "detach": [], "merge": [], "kept": [], "put back": []}

        def timed(name: str, work) -> None:  # noqa: ANN001
            started = time.perf_counter()
            work()
            sync()
            costs[name].append(time.perf_counter() - started)

        for _ in range(args.runs):
            times["base"].append(median_seconds(step, steps, sync))
            timed("attach", lambda: (pipe.load_lora_weights(str(lora.path.parent), weight_name=lora.path.name,
                                                            adapter_name="a"),
                                     pipe.set_adapters(["a"], adapter_weights=[lora.weight])))
            times["layered"].append(median_seconds(step, steps, sync))
            timed("detach", pipe.unload_lora_weights)
            timed("merge", lambda: use_loras(pipe, [lora]))
            times["merged"].append(median_seconds(step, steps, sync))
            timed("kept", lambda: use_loras(pipe, [lora]))
            kept_bytes = sum(values.numel() * values.element_size() for _t, values in _merged[unet].originals)
            timed("put back", lambda: use_loras(pipe, []))
        base, layered, merged = (statistics.median(times[name]) for name in ("base", "layered", "merged"))
        attach, detach, merge, kept, put_back = (statistics.median(costs[name]) for name in costs)

    print("per round:", {name: [round(t, 3) for t in values] for name, values in times.items()})
    print(f"UNet step: no LoRA {base:.3f} s; PEFT layers on {layered:.3f} s ({layered / base:.2f}x); "
          f"merged {merged:.3f} s ({merged / base:.2f}x)")
    print(f"Per job before: load {attach:.2f} s + take off {detach:.2f} s, every LoRA job")
    print(f"Per job now: merge {merge:.2f} s when the LoRAs change; the same LoRAs again {kept * 1000:.2f} ms; "
          f"base back {put_back:.2f} s; kept copy {kept_bytes / 2**20:.0f} MiB of RAM")


if __name__ == "__main__":
    main()
