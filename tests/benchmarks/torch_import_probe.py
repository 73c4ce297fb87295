"""Benchmark: how long importing torch holds up another Python thread, with its C++ libraries opened by the
import itself (under the GIL) and by Studio's engine start-up (``open_torch_libraries_off_the_gil``).

Each import runs in a fresh interpreter, with the collector paused as during the engine's warm-up, beside a
thread that asks to wake every 2 ms. Prints the longest wait of each. On a CUDA build the libraries include
``libtorch_cuda``, whose initialisers are the ones this is about.
Run: python tests/benchmarks/torch_import_probe.py [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "engine")]


def main() -> None:
    from test_engine_libraries import import_torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for run in range(1, args.runs + 1):
        under, off = import_torch("under"), import_torch("off")
        print(f"run {run}: longest wait {under['longest_ms']:.0f} ms with the libraries opened under the GIL, "
              f"{off['longest_ms']:.0f} ms opened off it ({', '.join(off['opened'])})", flush=True)


if __name__ == "__main__":
    main()
