"""Benchmark: what loading and switching models costs, with a full-size SD 1.5 (random weights, 4 GB in float32).

Three measures, each against how it was before, in one process on the CPU:
- the first load of a model whose hash is not cached: when ``load_model`` returns, and when the hash is ready
  (it is computed on a thread of its own; before, the load waited for it);
- loading a second model with the same tokenizer files: tokenizer shared, against each building its own;
- going round A, B, C, A, B, C through Studio's generator: the models before kept loaded, against not kept.
B and C are the same files hard-linked under other names, so all read from the page cache alike.
Run: python tests/benchmarks/model_loads.py [--cache DIR]   (the model is built into DIR once, as for
ui_probe_full.py)
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "benchmarks")]


def spans(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values) + " s"


def first_loads(model: Path, device) -> None:  # noqa: ANN001
    from studio.engine.loader import load_model

    for run in range(2):
        started = time.perf_counter()
        loaded = load_model(model, device, Path(tempfile.mkdtemp()) / "hashes.json", place=False)
        returned = time.perf_counter() - started
        loaded.hash  # noqa: B018 - waits for the hash
        print(f"first load, hash not cached (run {run + 1}): returned after {returned:.2f} s, hash ready after "
              f"{time.perf_counter() - started:.2f} s", flush=True)
        del loaded
        gc.collect()


def tokenizer_loads(a: Path, b: Path, device, hashes: Path) -> None:  # noqa: ANN001
    from studio.engine import shared_tokenizers
    from studio.engine.loader import load_model

    for share in (False, True):
        times = []
        for number in range(4):
            if not share:
                shared_tokenizers._known.clear()
            gc.collect()
            started = time.perf_counter()
            loaded = load_model(b if number % 2 else a, device, hashes, place=False)
            times.append(time.perf_counter() - started)
            del loaded
        print(f"loads, {'tokenizer shared' if share else 'each its own tokenizer'}: {spans(times)}", flush=True)


def switches(models: list[Path], cache: Path) -> None:
    import studio.engine.diffusion as diffusion
    from studio.core.environment import GeneratorEnvironment
    from studio.engine.model_keeping import KEEP_AT_MOST, KeptModels

    for keep in (False, True):
        generator = diffusion.DiffusersGenerator(GeneratorEnvironment("cpu", cache / "data", cache))
        generator._kept = KeptModels(at_most=KEEP_AT_MOST if keep else 0)
        times = []
        for path in models * 2:
            started = time.perf_counter()
            generator._load(path, lambda **status: None)
            times.append(time.perf_counter() - started)
        print(f"going round A B C A B C, {'the models before kept' if keep else 'not kept'}: {spans(times)}",
              flush=True)
        del generator
        gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "studio-ui-probe")
    args = parser.parse_args()
    from ui_probe_full import build_model

    a = build_model(args.cache / "sd15-random")
    b, c = args.cache / "sd15-random-b", args.cache / "sd15-random-c"
    for copy in (b, c):
        if not copy.exists():
            shutil.copytree(a, copy, copy_function=os.link)

    from studio.engine.device import select_device

    device = select_device("cpu")
    first_loads(a, device)
    scratch = Path(tempfile.mkdtemp())
    from studio.engine.loader import load_model

    for path in (a, b):  # hashes cached, page cache warm: the rest measures the loads themselves
        load_model(path, device, scratch / "model-hashes.json", place=False).hash  # noqa: B018
    tokenizer_loads(a, b, device, scratch / "model-hashes.json")
    switches([a, b, c], scratch)


if __name__ == "__main__":
    main()
