"""Benchmark: what a reference picture (IP-Adapter) costs a job: attaching it, and the job itself.

Full-size SD 1.5 with random weights, and an IP-Adapter for it with a full-size CLIP ViT-H/14 image encoder
(632 M parameters, as h94/IP-Adapter's; random weights, saved once in float16 to a temporary folder).
1. Attaching: Studio's ``reference_attached`` (attach and encode the picture, then take off) for a first
   reference job, the next one (adapter, encoder and the picture's embeddings kept from the job before), one
   at another strength, one with another picture, and one after a job without a reference (which lets it
   all go).
2. A whole reference job, as ``studio bench`` times plain jobs: plain diffusers with the adapter loaded against
   Studio's generator (its fast path on CUDA: the reference job's own captured graph), same seed and size,
   a warm-up each then alternating runs; seconds per image, the ratio and the same-seed difference.
Run: python tests/benchmarks/reference_jobs.py [--device auto|cuda|cpu] [--size N] [--steps N] [--runs N]
(defaults: 512², 20 steps, 5 runs on CUDA; 128², 4 steps, 2 runs on the CPU). The GPU run in
tests/benchmarks/gpu/run_on_gpu.sh uses the CUDA defaults.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
STRENGTH = 0.6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()

    import torch
    from PIL import Image
    from tiny_models import build_ip_adapter
    from transformers import CLIPVisionConfig

    from studio.core.environment import GeneratorEnvironment
    from studio.core.requests import GenerationRequest
    from studio.engine import bench_measures, bench_pipelines, fast_path_state
    from studio.engine.device import select_device
    from studio.engine.ip_adapter import find_ip_adapter, let_reference_go, reference_attached
    from studio.engine.libraries import quiet_imports
    from studio.engine.schedulers import make_scheduler
    from studio.engine.worker import Job, WorkerContext

    quiet_imports()
    device = select_device(args.device)
    cuda = device.kind == "cuda"
    size, steps = args.size or (512 if cuda else 128), args.steps or (20 if cuda else 4)
    runs = args.runs or (5 if cuda else 2)
    work_dir = Path(tempfile.mkdtemp(prefix="studio-reference-bench-"))
    pipe = bench_pipelines.build_pipeline("sd15", False, device, work_dir / "configs")
    build_ip_adapter(work_dir, pipe.unet, CLIPVisionConfig(
        hidden_size=1280, intermediate_size=5120, projection_dim=1024, num_hidden_layers=32, num_attention_heads=16,
        image_size=224, patch_size=14, hidden_act="gelu"), scale=0.02, dtype=torch.float16)
    files = find_ip_adapter(work_dir, "sd")
    reference = Image.new("RGB", (224, 224), (200, 100, 50))

    def attach_and_take_off(strength: float, picture: Image.Image = reference) -> tuple[float, float]:
        started = time.perf_counter()
        with reference_attached(pipe, files, picture, strength, 7.0):
            if cuda:
                torch.cuda.synchronize()
            attached = time.perf_counter()
        return attached - started, time.perf_counter() - attached

    print(f"{device.description}, {device.dtype}: IP-Adapter for SD 1.5 with a ViT-H/14 image encoder "
          "(attach: load or attach again, set the strength, encode the picture)")
    other = Image.new("RGB", (224, 224), (40, 120, 220))
    for label, strength, picture in (("the first", STRENGTH, reference),
                                     ("the next: all kept from the job before", STRENGTH, reference),
                                     ("the next, at another strength", 0.9, reference),
                                     ("the next, with another picture", 0.9, other)):
        attach, take_off = attach_and_take_off(strength, picture)
        print(f"reference job ({label}): attach {attach:.3f} s, take off {take_off:.3f} s")
    let_reference_go(pipe)
    attach, take_off = attach_and_take_off(STRENGTH)
    print(f"reference job after a job without one (all let go): attach {attach:.3f} s, take off {take_off:.3f} s")

    generator, model = bench_pipelines.bench_generator(pipe, "sd15", GeneratorEnvironment(
        args.device, work_dir / "data", work_dir / "cache", work_dir))
    request = GenerationRequest(model=str(model.path), prompt="a lighthouse at dusk", negative_prompt="blurry",
                                width=size, height=size, steps=steps, cfg_scale=7.0, seed=11, scheduler="Euler",
                                reference_image=reference, reference_scale=STRENGTH)
    notes: list[str] = []

    def plain() -> tuple[float, list[Image.Image]]:
        """Plain diffusers' job with the adapter loaded (untimed: it must load per job, to run jobs without one)."""
        pipe.load_ip_adapter(str(files.folder), subfolder="", weight_name=files.weight_name,
                             image_encoder_folder=files.encoder_folder, local_files_only=True)
        pipe.set_ip_adapter_scale(STRENGTH)
        try:
            pipe.scheduler = make_scheduler(request.scheduler, model.base_scheduler_config)
            seconds, images, _peak = bench_measures.timed(lambda: pipe(
                prompt=request.prompt, negative_prompt=request.negative_prompt, num_inference_steps=steps,
                guidance_scale=request.cfg_scale, width=size, height=size, output_type="pil",
                ip_adapter_image=reference, generator=torch.Generator("cpu").manual_seed(request.seed)).images, device)
            return seconds, images
        finally:
            pipe.unload_ip_adapter()

    def studio() -> tuple[float, list[Image.Image]]:
        """Studio's whole job, attaching the kept adapter included."""
        context = WorkerContext(Job(1, request), lambda _event: None)
        seconds, images, _peak = bench_measures.timed(
            lambda: [image for image, _recipe in generator.generate(request, context)], device)
        notes.extend(n for n in context.notes if n not in notes)
        return seconds, images

    sides = {"plain": plain, "studio": studio}
    times: dict[str, list[float]] = {name: [] for name in sides}
    pictures: dict[str, list[Image.Image]] = {}
    for make in sides.values():
        make()  # warm-up: first-use costs, and the fast path's capture
    for _ in range(runs):  # alternating, so drift hits both sides alike
        for name, make in sides.items():
            seconds, pictures[name] = make()
            times[name].append(seconds)
    plain_s, studio_s = (statistics.median(times[name]) for name in sides)
    state = fast_path_state.state_for(pipe.unet)
    difference = bench_measures.same_seed_difference(pictures["plain"], pictures["studio"])
    print(f"a whole reference job, {size}x{size}, {steps} steps, CFG, {runs} runs: plain diffusers {plain_s:.3f} s "
          f"(its adapter load not counted), Studio {studio_s:.3f} s, "
          f"{plain_s / studio_s:.2f}x; same-seed difference mean {difference['mean']:.2f}, max {difference['max']} "
          f"(of 255)")
    print(f"Studio's captures: {state.captures or 'none'}; replays {state.replays}; notes: {notes or 'none'}")


if __name__ == "__main__":
    main()
