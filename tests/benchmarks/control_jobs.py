"""Benchmark: what a guided (ControlNet) job and the Depth preprocessor cost on the device.

1. The Depth preprocessor (``depth_maps``): Depth Anything V2 Small's real architecture (24.8 M parameters) with
   random weights, saved to a temporary models folder as the hub ships it and read through Studio's own loader.
   A depth map of a 1024² picture: the first call (load and run) and warm ones, in float16 and float32 (on the CPU
   float32 only, as ``depth_maps`` runs it there). CUDA is started before, as a job has it by then.
2. A guided job: full-size SDXL (or SD 1.5) with random weights (``studio bench``'s builder) and a ControlNet made
   from its UNet (``ControlNetModel.from_unet``, as ControlNets are started; its zero convolutions given ordinary
   random weights, so the guide changes the picture as a trained one does), saved in the models folder. Plain
   diffusers' ControlNet pipeline on the same components against Studio's generator (its fast path on CUDA: the
   guided job's own captured UNet step, the ControlNet run eagerly before it), with the same seed, size, steps,
   control picture and conditioning scale: a warm-up each (Studio's loads the ControlNet and captures), then
   alternating runs. Then Studio with Memory at Low (attention slicing, VAE tiling, model CPU offload; on a GPU
   only): a first job and LOW_RUNS more. Seconds per image, ratios to plain, capture time, the same-seed
   difference (of 255) and peak VRAM.
Run: python tests/benchmarks/control_jobs.py [--device auto|cuda|cpu] [--family sd15|sdxl] [--size N] [--steps N]
[--runs N] [--json PATH] (PATH "-": the JSON as the last line of the output). Defaults on CUDA: SDXL at 1024², 20
steps, 5 runs, the real Depth Anything Small; on the CPU bench's tiny layout (1/8 of every width) at 64², 4 steps,
2 runs and a tiny depth model, done in seconds: there it shows the whole runs, not a real model's speed. The GPU run
(tests/benchmarks/gpu/run_on_gpu.sh) uses the CUDA defaults.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
SEED = 11
SCALE = 0.8  # the guide's conditioning scale (diffusers' controlnet_conditioning_scale), on both sides
CFG = 7.0
PROMPT, NEGATIVE = "a lighthouse at dusk", "blurry"
NET = "bench-guide"  # the ControlNet's folder in <models>/controlnet
LOW_RUNS = 2  # at Memory Low every part moves to the GPU and back per picture: seconds each, and no close race
DEPTH_PICTURE = 1024
DEPTH_RUNS = 5


@dataclass
class Side:
    """One way of making the picture: its warm-up, timed runs, peak VRAM and last pictures."""

    make: Callable[[], list[Any]]
    device: Any  # DeviceInfo
    warmup: float = 0.0
    runs: list[float] = field(default_factory=list)
    peak: int = 0
    images: list[Any] = field(default_factory=list)

    def run(self, warm_up: bool = False) -> None:
        from studio.engine import bench_measures

        seconds, self.images, peak = bench_measures.timed(self.make, self.device)
        self.peak = max(self.peak, peak)
        if warm_up:
            self.warmup = seconds
        else:
            self.runs.append(seconds)

    @property
    def per_image(self) -> float:
        return statistics.median(self.runs)

    def figures(self) -> dict[str, Any]:
        return {"seconds_per_image": self.per_image, "warmup_seconds": self.warmup, "run_seconds": self.runs,
                "peak_vram_bytes": self.peak or None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--family", default="sdxl", choices=("sd15", "sdxl"))
    parser.add_argument("--size", type=int, help="the guided job's width and height (a multiple of 8)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--runs", type=int)
    parser.add_argument("--json", metavar="PATH", help='write every figure as JSON to PATH ("-": print it last)')
    args = parser.parse_args()
    if args.size is not None and (args.size < 64 or args.size % 8):
        parser.error(f"--size must be a multiple of 8 from 64 up, not {args.size}.")

    import torch

    from studio.engine.device import select_device
    from studio.engine.libraries import quiet_imports

    device = select_device(args.device)
    if args.device == "cuda" and device.kind != "cuda":
        parser.error("no CUDA GPU is available to PyTorch here; run it with --device cpu or auto.")
    quiet_imports()
    import diffusers
    import transformers

    print(f"{device.description} · torch {torch.__version__} · diffusers {diffusers.__version__} · transformers "
          f"{transformers.__version__}")
    figures: dict[str, Any] = {"device": device.description, "device_kind": device.kind, "torch": torch.__version__,
                               "diffusers": diffusers.__version__, "transformers": transformers.__version__}
    work = Path(tempfile.mkdtemp(prefix="studio-control-bench-"))
    tiny = device.kind == "cpu"  # the tiny layouts: done in seconds there
    parts = {"depth": lambda: depth_figures(device, work / "models", tiny),
             "guided": lambda: guided_figures(args, device, work, tiny)}
    try:  # each part is printed as it is measured, and one that fails leaves the other's figures standing
        for name, measure in parts.items():
            try:
                figures[name] = measure()
            except Exception as exc:  # noqa: BLE001 - said, in the JSON too, and the exit status says so
                traceback.print_exc()
                figures[name] = {"failed": f"{type(exc).__name__}: {exc}"}
                print(f"The {name} part failed: {figures[name]['failed']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)  # an SDXL ControlNet is 2.5 GB
    if args.json == "-":
        print(json.dumps(figures))
    elif args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    if any("failed" in figures[name] for name in parts):
        sys.exit(1)


def depth_figures(device: Any, models_dir: Path, tiny: bool) -> dict[str, Any]:  # noqa: ANN401 - a DeviceInfo
    """The Depth preprocessor's time on ``device``, per precision, through ``depth_maps``."""
    import numpy as np
    import torch
    from PIL import Image
    from tiny_depth import SMALL_SIDE, build_small_depth, build_tiny_depth

    from studio.core.annotators import DEPTH_FOLDER
    from studio.engine import bench_measures, depth_maps
    from studio.engine.device import dtype_name

    folder = models_dir / DEPTH_FOLDER
    if tiny:
        build_tiny_depth(folder)
    else:
        build_small_depth(folder)
    side = 56 if tiny else SMALL_SIDE
    label = ("a tiny Depth Anything, 2 layers 16 wide: not a real model's speed" if tiny else
             "Depth Anything V2 Small's architecture, 24.8 M parameters, random weights")
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (DEPTH_PICTURE, DEPTH_PICTURE, 3), np.uint8))
    read_at = depth_maps.work_size(picture.size, side)
    if device.kind == "cuda":  # as in a job, CUDA is up and has run a product: its start is not the model's
        torch.ones(256, 256, device=device.torch_device).matmul(torch.ones(256, 256, device=device.torch_device))
        torch.cuda.synchronize()
    result: dict[str, Any] = {"model": label, "picture": list(picture.size), "read_at": list(read_at)}
    for dtype in (torch.float16, torch.float32):
        name = dtype_name(dtype)
        if device.kind == "cpu" and dtype != torch.float32:
            result[name] = {"skipped": "depth_maps runs float32 on the CPU (half precision is slow there)"}
            print(f"Depth preprocessor, {name}: skipped, {result[name]['skipped']}.")
            continue
        depth_maps.forget()
        before = depth_maps.runs

        def make_map(dtype: Any = dtype) -> list[Any]:  # noqa: ANN401
            # A new picture object each call: the same one would get its kept map, and the model would not run.
            return [depth_maps.depth_map(picture.copy(), models_dir, device.torch_device, dtype)]

        first, made, peak = bench_measures.timed(make_map, device)
        warm = []
        for _ in range(DEPTH_RUNS):
            seconds, made, run_peak = bench_measures.timed(make_map, device)
            warm.append(seconds)
            peak = max(peak, run_peak)
        if depth_maps.runs != before + 1 + DEPTH_RUNS or made[0].size != picture.size:
            raise RuntimeError("The depth model did not run once per map: the figures would not be its own.")
        result[name] = {"first_seconds": first, "warm_seconds": statistics.median(warm), "warm_runs": warm,
                        "peak_vram_bytes": peak or None}
        print(f"Depth preprocessor ({label}), {name}: a {DEPTH_PICTURE}x{DEPTH_PICTURE} picture read at "
              f"{read_at[0]}x{read_at[1]}: first call (load and run) {first:.3f} s, warm {statistics.median(warm):.3f} "
              f"s (median of {DEPTH_RUNS})" + (f", peak VRAM {peak / 2**30:.2f} GB" if peak else ""))
    depth_maps.forget()
    if device.kind == "cuda":
        torch.cuda.empty_cache()
    return result


def save_controlnet(unet: Any, device: Any, folder: Path) -> int:  # noqa: ANN401 - a UNet2DConditionModel, DeviceInfo
    """A ControlNet made from ``unet`` (on the device, in its precision; its zero convolutions given random weights)
    saved as a diffusers folder at ``folder``; its number of parameters."""
    import torch
    from diffusers import ControlNetModel
    from tiny_controlnets import zero_convolutions

    torch.manual_seed(1)
    with torch.device(device.torch_device):
        net = ControlNetModel.from_unet(unet)
    with torch.no_grad():
        for conv in zero_convolutions(net):
            conv.reset_parameters()  # PyTorch's own initialisation: residuals of an ordinary size
    net.to(dtype=device.dtype).save_pretrained(folder, safe_serialization=True)
    return sum(p.numel() for p in net.parameters())


def lines_picture(size: int) -> Any:  # noqa: ANN401 - a PIL image
    """A control picture as edge ControlNets take them: white lines on black."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(picture)
    for inset in range(size // 8, size // 2, size // 8):
        draw.rectangle((inset, inset, size - inset, size - inset // 2), outline="white", width=max(1, size // 64))
    return picture


def guided_figures(args: argparse.Namespace, device: Any, work: Path,  # noqa: ANN401 - a DeviceInfo
                   tiny: bool) -> dict[str, Any]:
    """Plain diffusers' guided job against Studio's (fast path, then Memory at Low), on one pipeline."""
    import diffusers
    import numpy as np
    import torch

    from studio.core.control import ControlGuide
    from studio.core.environment import GeneratorEnvironment
    from studio.core.requests import GenerationRequest
    from studio.engine import bench_measures, bench_pipelines, fast_path, fast_path_choices, fast_path_state
    from studio.engine.control_nets import PIPELINES
    from studio.engine.cpu_precision import job_device, lays_out
    from studio.engine.device import dtype_name
    from studio.engine.schedulers import make_scheduler
    from studio.engine.worker import Job, WorkerContext

    family = args.family
    size = args.size or (64 if tiny else bench_pipelines.FAMILIES[family][1])
    steps, runs = args.steps or (4 if tiny else 20), args.runs or (2 if tiny else 5)
    arch = (f"tiny {family} layout (1/{bench_pipelines.TINY_DIVISOR} of every width; not a real model's speed)" if tiny
            else f"full-size {family}")
    # Studio's precision for the job: on a CPU with bfloat16 units its fast path runs bfloat16, on its own copy.
    studio_device = job_device(device, fast_path_choices.options_for("fast").enabled)
    separate = studio_device.dtype != device.dtype or lays_out(studio_device)
    started = time.perf_counter()
    studio_pipe = bench_pipelines.build_pipeline(family, tiny, studio_device, work / "configs") if separate else None
    pipe = bench_pipelines.build_pipeline(family, tiny, device, work / "configs")
    studio_pipe = studio_pipe or pipe
    models = work / "models"
    folder = models / "controlnet" / NET  # where Studio finds it by name
    net_parameters = save_controlnet(pipe.unet, device, folder)
    # Read from its folder, as a diffusers user does and as Studio does: the two sides run the same weights the same
    # way (on a CPU, a copy made in memory rounds differently: a grey level here and there).
    net = diffusers.ControlNetModel.from_pretrained(folder, torch_dtype=device.dtype).to(device.torch_device).eval()
    built = time.perf_counter() - started
    net_bytes = sum(w.numel() * w.element_size() for w in net.parameters())
    plain_pipe = getattr(diffusers, PIPELINES[type(pipe).__name__]).from_pipe(pipe, controlnet=net)
    plain_pipe.set_progress_bar_config(disable=True)
    state = fast_path_state.state_for(studio_pipe.unet, fast_path_choices.options_for("fast"))
    generator, model = bench_pipelines.bench_generator(studio_pipe, family, GeneratorEnvironment(
        args.device, work / "data", work / "cache", models))
    control = lines_picture(size)
    request = GenerationRequest(model=str(model.path), prompt=PROMPT, negative_prompt=NEGATIVE, width=size,
                                height=size, steps=steps, cfg_scale=CFG, seed=SEED, scheduler="Euler",
                                controls=(ControlGuide(NET, control, weight=SCALE),))
    notes: dict[str, list[str]] = {"studio": [], "studio_low": []}
    print(f"Guided job: {arch} with random weights and a ControlNet made from its UNet "
          f"({net_parameters / 1e6:.0f} M parameters), {size}x{size}, {steps} steps, CFG {CFG:g}, conditioning "
          f"scale {SCALE:g}, median of {runs} runs; built in {built:.1f} s")

    def plain() -> list[Any]:
        plain_pipe.scheduler = make_scheduler(request.scheduler, model.base_scheduler_config)
        return plain_pipe(prompt=PROMPT, negative_prompt=NEGATIVE, image=control, controlnet_conditioning_scale=SCALE,
                          num_inference_steps=steps, guidance_scale=CFG, width=size, height=size, output_type="pil",
                          generator=torch.Generator("cpu").manual_seed(SEED)).images

    def studio(job: GenerationRequest, name: str) -> Callable[[], list[Any]]:
        def make() -> list[Any]:
            context = WorkerContext(Job(1, job), lambda _event: None)
            images = [image for image, _recipe in generator.generate(job, context)]
            notes[name].extend(note for note in context.notes if note not in notes[name])
            return images
        return make

    sides = {"plain": Side(plain, device), "studio": Side(studio(request, "studio"), device)}
    for side in sides.values():
        side.run(warm_up=True)  # first-use costs; Studio's loads the ControlNet and captures its step
    for _ in range(runs):  # alternating, so drift hits both sides alike
        for side in sides.values():
            side.run()
    plain_side, studio_side = sides.values()
    same_precision = studio_device.dtype == device.dtype
    flat = all(np.ptp(np.asarray(image)) == 0 for image in plain_side.images)
    guided_captures = [(key, seconds) for key, seconds in state.captures if "with control guides" in key]
    difference = bench_measures.same_seed_difference(plain_side.images, studio_side.images, same_precision)
    result: dict[str, Any] = {
        "family": family, "architecture": "tiny" if tiny else "full", "size": size, "steps": steps, "runs": runs,
        "cfg": CFG, "conditioning_scale": SCALE, "seed": SEED, "controlnet_parameters": net_parameters,
        "build_seconds": built, "plain_dtype": dtype_name(device.dtype),
        # Each side's ControlNet copy stays on the device through the other side's runs: its peak counts both.
        "controlnet_bytes": net_bytes,
        "studio_dtype": dtype_name(studio_device.dtype),
        "plain": plain_side.figures(),
        "studio": {**studio_side.figures(), "fast_path": bool(state.captures) or state.replays > 0,
                   "fast_path_off_reason": fast_path.platform_reason(device.kind, state.options),
                   "captures": [{"input": key, "seconds": seconds} for key, seconds in state.captures],
                   "capture_seconds": sum(seconds for _key, seconds in guided_captures),
                   "replays": state.replays, "notes": notes["studio"]},
        "speedup": plain_side.per_image / studio_side.per_image, "same_seed_difference": difference,
        "flat_pictures": flat}
    print(f"plain diffusers {plain_side.per_image:.3f} s/image, Studio {studio_side.per_image:.3f} s/image: "
          f"{result['speedup']:.2f}x; warm-ups {plain_side.warmup:.2f} s and {studio_side.warmup:.2f} s (Studio's: "
          "loading the ControlNet, and the capture)")
    captured = ", ".join(f"{key} in {seconds:.2f} s" for key, seconds in guided_captures) or "none"
    print(result["studio"]["fast_path_off_reason"] or f"Studio's fast path: guided captures: {captured}; "
          f"replays {state.replays}")
    print(f"same-seed difference mean {difference['mean']:.2f}, max {difference['max']} (of 255)"
          + ("" if same_precision else f" ({dtype_name(device.dtype)} against {dtype_name(studio_device.dtype)})")
          + ("; the pictures are flat: the difference says nothing" if flat else "")
          + (f"; peak VRAM plain {plain_side.peak / 2**30:.2f} GB, Studio {studio_side.peak / 2**30:.2f} GB (each "
             f"with the other's ControlNet copy, {net_bytes / 2**30:.2f} GB)" if plain_side.peak else ""))
    if device.kind == "cpu":
        result["studio_low"] = {"skipped": "Memory at Low changes nothing on the CPU: no VRAM measure applies there"}
        print(f"Studio at Memory Low: skipped, {result['studio_low']['skipped']}.")
    else:  # last: it leaves the model offloaded, and plain diffusers shares its components
        net.to("cpu")  # plain diffusers' ControlNet copy: Low's peak is Studio's own
        result["studio_low"] = low_memory_figures(studio(replace(request, memory="low"), "studio_low"), device,
                                                  plain_side, notes["studio_low"])
    for name in notes:
        for note in notes[name]:
            print(f"{name} note: {note}")
    return result


def low_memory_figures(make: Callable[[], list[Any]], device: Any, plain: Side,  # noqa: ANN401 - a DeviceInfo
                       notes: list[str]) -> dict[str, Any]:
    """Studio's guided job at Memory Low: a first job and ``LOW_RUNS`` more, against plain diffusers' figures."""
    from studio.engine import bench_measures

    low = Side(make, device)
    try:
        low.run(warm_up=True)
        for _ in range(LOW_RUNS):
            low.run()
    except Exception as exc:  # noqa: BLE001 - a finding: the figures before it stand
        traceback.print_exc()
        print(f"Studio at Memory Low failed: {type(exc).__name__}: {exc}")
        return {"failed": f"{type(exc).__name__}: {exc}", "notes": notes}
    difference = bench_measures.same_seed_difference(plain.images, low.images)
    ratio = plain.per_image / low.per_image
    print(f"Studio at Memory Low: {low.per_image:.3f} s/image (median of {LOW_RUNS}; its first job "
          f"{low.warmup:.2f} s), {ratio:.2f}x plain diffusers' speed; same-seed difference mean "
          f"{difference['mean']:.2f}, max {difference['max']}" + (f"; peak VRAM {low.peak / 2**30:.2f} GB" if low.peak
                                                                  else ""))
    return {**low.figures(), "ratio_to_plain": ratio, "same_seed_difference": difference, "notes": notes}


if __name__ == "__main__":
    main()
