"""Benchmark: what attaching a reference picture's IP-Adapter costs a job, the first time and when its image
encoder was kept from the job before.

Full-size SD 1.5 with random weights, and an IP-Adapter for it with a full-size CLIP ViT-H/14 image encoder
(632 M parameters, as h94/IP-Adapter's; random weights, saved once in float16 to a temporary folder). Times
Studio's ``reference_attached`` (load, then take off) three times in a row, then once after a job without a
reference, which lets the kept encoder go.
Run: python tests/benchmarks/reference_jobs.py [--device auto|cuda|cpu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch
    from PIL import Image
    from tiny_models import build_ip_adapter
    from transformers import CLIPVisionConfig

    from studio.engine import bench
    from studio.engine.device import select_device
    from studio.engine.ip_adapter import find_ip_adapter, let_encoder_go, reference_attached

    device = select_device(args.device)
    work_dir = Path(tempfile.mkdtemp(prefix="studio-reference-bench-"))
    pipe = bench.build_pipeline("sd15", False, device, work_dir / "configs")
    build_ip_adapter(work_dir, pipe.unet, CLIPVisionConfig(
        hidden_size=1280, intermediate_size=5120, projection_dim=1024, num_hidden_layers=32, num_attention_heads=16,
        image_size=224, patch_size=14, hidden_act="gelu"), scale=0.02, dtype=torch.float16)
    files = find_ip_adapter(work_dir, "sd")
    reference = Image.new("RGB", (224, 224), (200, 100, 50))

    def attach_and_take_off() -> tuple[float, float]:
        started = time.perf_counter()
        with reference_attached(pipe, files, reference, 0.6):
            attached = time.perf_counter()
        return attached - started, time.perf_counter() - attached

    print(f"{device.description}, {device.dtype}: IP-Adapter for SD 1.5 with a ViT-H/14 image encoder")
    for number in range(1, 4):
        attach, take_off = attach_and_take_off()
        kept = " (encoder kept from the job before)" if number > 1 else " (the first)"
        print(f"reference job {number}{kept}: attach {attach:.2f} s, take off {take_off:.2f} s")
    let_encoder_go(pipe)
    attach, take_off = attach_and_take_off()
    print(f"after a job without a reference: attach {attach:.2f} s, take off {take_off:.2f} s")


if __name__ == "__main__":
    main()
