"""The fast path on the full-size SD 1.5 / SDXL architectures without a GPU: a check, not a speed figure.

``studio bench`` with the fast path forced on and a CPU stand-in for the CUDA graph capture (it replays by
running the step again from the same static buffers, tests/engine/test_engine_fast_path.py). It exercises
what the GPU run relies on over the real layouts: fused QKV projections, graph keys, static inputs, replays,
the channels_last VAE, and the same-seed difference against plain diffusers.
Run: python tests/benchmarks/fast_path_standin.py [sd15|sdxl] [SIZE]   (SDXL needs about 14 GB of memory)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from studio_testing import ReplayOnCpu  # noqa: E402

from studio.core.paths import studio_paths  # noqa: E402
from studio.engine import bench, fast_path  # noqa: E402


def main() -> None:
    family = sys.argv[1] if len(sys.argv) > 1 else "sd15"
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    fast_path.platform_reason = lambda kind, options: None  # as on CUDA
    fast_path.capture_cuda_graph = ReplayOnCpu
    config = bench.BenchConfig(family=family, size=size, steps=2, runs=1, tiny=False, device="cpu")
    result = bench.run_bench(config, studio_paths().cache_dir, say=print)
    studio = result["studio"]
    print(json.dumps({"fast_path": studio["fast_path"], "captures": studio["captures"], "replays": studio["replays"],
                      "notes": studio["notes"], "same_seed_difference": result["same_seed_difference"]}, indent=1))


if __name__ == "__main__":
    main()
