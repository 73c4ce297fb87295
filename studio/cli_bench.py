"""``studio bench``: how fast Studio's engine makes a picture, side by side with plain diffusers.

torch is imported only when the command runs (``import studio.cli`` stays light).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from studio.cli_device import check_device, device_fallback_note, device_given, device_option
from studio.cli_exit import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED
from studio.cli_notes import say_note
from studio.core.errors import StudioError, first_line
from studio.core.requests import (
    MAX_BATCH_COUNT,
    MAX_CFG,
    MAX_SIZE,
    MAX_STEPS,
    MIN_SIZE,
    SCHEDULER_NAMES,
    SIZE_MULTIPLE,
    canonical_scheduler,
)


def add_bench_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench", help="time plain diffusers against Studio's engine on random-weight SD 1.5 / SDXL",
        description="Build SD 1.5's or SDXL's architecture from Studio's shipped configs with random weights "
                    "(speed does not depend on weight values; nothing is downloaded), then time plain diffusers "
                    "and Studio's engine on the same pipeline with the same prompt, seeds, size, steps and "
                    "scheduler. On the CPU the default is a tiny architecture of the same layout at 64x64.")
    parser.add_argument("--family", default="sd15", choices=["sd15", "sdxl"],
                        help="which architecture to build (default sd15)")
    parser.add_argument("--size", type=int, help=f"width and height in pixels, a multiple of {SIZE_MULTIPLE} from "
                                                 f"{MIN_SIZE} to {MAX_SIZE} (default: 512 for sd15, 1024 for sdxl; 64 "
                                                 "with the tiny architecture)")
    parser.add_argument("--steps", type=int, help=f"denoising steps, 1 to {MAX_STEPS} (default 20; 4 with the tiny "
                                                  "architecture)")
    parser.add_argument("--batch", type=int, default=1, help=f"pictures per job, with consecutive seeds, 1 to "
                                                             f"{MAX_BATCH_COUNT} (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side after a warm-up (default 3)")
    parser.add_argument("--scheduler", default="Euler", metavar="NAME",
                        help=f"one of: {', '.join(SCHEDULER_NAMES)}, in any case, as studio generate takes them "
                             "(default Euler)")
    parser.add_argument("--cfg", type=float, default=7.0, help="CFG (guidance) scale (default 7)")
    parser.add_argument("--device", default=None, type=device_option, metavar="DEVICE",
                        help="where to run, as studio generate takes it: auto, cpu, cuda, cuda:N or mps (default: "
                             "STUDIO_DEVICE where set, else auto: a CUDA GPU where PyTorch has one, else the CPU)")
    parser.add_argument("--tiny", action="store_true",
                        help="use the tiny architecture on any device (the default on the CPU without --size)")
    parser.add_argument("--compile", action="store_true",
                        help="on a CUDA GPU: also torch.compile the captured UNet step (opt-in: minutes of warm-up per "
                             "shape; elsewhere it does nothing, and says so)")
    parser.add_argument("--plain-dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="plain diffusers' precision (default auto: float16 on CUDA, float32 on the CPU, as "
                             "diffusers' users run it); Studio's is its fast path's (bfloat16 on a CPU with "
                             "bfloat16 units)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every figure")


def run_bench(args: argparse.Namespace) -> int:
    """Time both sides and print the figures. A side that fails (out of memory, an error in diffusers) is one
    sentence naming it, exit EXIT_FAILED; bad input is refused before anything is built, exit EXIT_BAD_INPUT."""
    try:
        _check(args)
    except StudioError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return _bench(args)
    except KeyboardInterrupt:  # Ctrl+C: a sentence and the shell's code for it, not torch's traceback
        print("studio: bench stopped; nothing was measured.", file=sys.stderr)
        return EXIT_CANCELLED


def _bench(args: argparse.Namespace) -> int:
    from studio.core.paths import studio_paths
    from studio.engine import bench  # torch: once the input is checked

    config = bench.BenchConfig(family=args.family, size=args.size, steps=args.steps, batch=args.batch,
                               runs=args.runs, scheduler=args.scheduler, device=args.device or "auto",
                               compile=args.compile,
                               tiny=True if args.tiny else None, cfg=args.cfg, plain_dtype=args.plain_dtype)
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json else print
    # STUDIO_DEVICE as generate says it: one that is no device, or one PyTorch lacks here, and what runs instead.
    if note := device_fallback_note(args.device, "auto"):
        say_note(note)
    try:
        with device_given(args.device):  # --device over STUDIO_DEVICE, which the engine reads first
            result = bench.run_bench(config, studio_paths().cache_dir, say=say, note=say_note)
    except bench.BenchFailed as exc:  # a side failed: it is named, and what it was doing
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except StudioError as exc:  # refused before any work: no CUDA GPU where asked for, not enough memory
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # outside either side's work: a sentence here, the traceback in Studio's log
        logging.getLogger(__name__).exception("studio bench failed")
        print(f"studio: The bench failed ({type(exc).__name__}: {first_line(exc)}), so it has no figures.",
              file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result) if args.json else report(result))
    return 0


def _check(args: argparse.Namespace) -> None:
    """Bad input said as a generation would say it; the scheduler as Studio names it (euler_a: Euler a)."""
    from studio.core.errors import InvalidRequest

    scheduler = canonical_scheduler(args.scheduler)
    if scheduler is None:
        raise InvalidRequest(f"Unknown scheduler {args.scheduler!r}; --scheduler takes one of: "
                             f"{', '.join(SCHEDULER_NAMES)}.")
    args.scheduler = scheduler
    # A generation's limits: past them the bench ran for minutes, then asked for 400 GB.
    if args.size is not None and (not MIN_SIZE <= args.size <= MAX_SIZE or args.size % SIZE_MULTIPLE):
        raise InvalidRequest(f"The size must be a multiple of {SIZE_MULTIPLE} between {MIN_SIZE} and {MAX_SIZE} "
                             f"pixels, not {args.size}.")
    # As a generation says them (studio.core.requests): the bench's steps and batch are a job's.
    if args.steps is not None and args.steps < 1:
        raise InvalidRequest(f"Steps must be at least 1, not {args.steps}.")
    if args.steps is not None and args.steps > MAX_STEPS:
        raise InvalidRequest(f"Steps must be at most {MAX_STEPS}, not {args.steps}.")
    if not 1 <= args.batch <= MAX_BATCH_COUNT:
        raise InvalidRequest(f"The batch count must be between 1 and {MAX_BATCH_COUNT}, not {args.batch}.")
    if args.runs < 1:
        raise InvalidRequest(f"--runs must be at least 1, not {args.runs}.")
    if not 0 <= args.cfg <= MAX_CFG:  # as a generation's (studio.core.requests): nan too
        raise InvalidRequest(f"--cfg must be between 0 and {MAX_CFG:g}, not {args.cfg:g}.")
    check_device(args.device)  # cuda:3 on a machine with one GPU: refused, as generate refuses it


def _count(number: int, thing: str) -> str:
    """``1 run``, ``3 runs``."""
    return f"{number} {thing}{'s' * (number != 1)}"


def report(result: dict[str, Any]) -> str:
    """The bench's figures as a few lines of text."""
    plain, studio = result["plain"], result["studio"]
    lines = [
        f"Studio bench · {result['architecture_label']}",
        f"Device: {result['device']} · torch {result['torch']} · diffusers {result['diffusers']}",
        f"Precision: plain diffusers {result['plain_dtype']}, Studio {result['studio_dtype']}",
        (f"{result['size']}x{result['size']}, {_count(result['steps'], 'step')}, CFG {result['cfg']:g}, "
         f"{result['scheduler']}, batch {result['batch']}, "
         f"{'median of ' * (result['runs'] != 1)}{_count(result['runs'], 'run')} · built in "
         f"{result['build_seconds']:.1f} s"),
        f"{'':18}{'s/image':>9}{'(fastest–slowest run)':>23}{'it/s':>9}{'warm-up':>10}",
    ]
    for label, side in (("plain diffusers", plain), ("Studio", studio)):
        lines.append(f"{label:18}{side['seconds_per_image']:9.3f}{_spread(side, result['batch']):>23}"
                     f"{side['it_per_s']:9.2f}{side['warmup_seconds']:9.2f}s")
    lines.append("s/image: the median run's seconds per picture; it/s: steps per second of a whole picture (reading "
                 "the prompt and decoding included), below the steps' own speed studio generate's bar shows.")
    lines.append("Studio's warm-up also reads the prompt into its prompt cache, which its timed runs use; plain "
                 "diffusers has none and reads the prompt for every picture.")
    lines.append(f"Studio is {result['speedup']:.2f}x plain diffusers' speed (plain s/image / Studio s/image).")
    if studio["fast_path"]:
        captured = "; ".join(f"{c['input']} in {c['seconds']:.2f} s" for c in studio["captures"]) or "none new"
        lines.append(f"Fast path: on · captured {captured} · {studio['replays']} replays")
    elif result["device_kind"] == "cpu" and result["studio_dtype"] == "bfloat16":
        lines.append("Fast path: bfloat16 with channels-last weights (CUDA graphs need a CUDA GPU)")
    else:
        lines.append(f"Fast path: off · {studio['fast_path_off_reason'] or 'see the notes'}")
    if plain["peak_vram_bytes"]:
        lines.append(f"Peak VRAM allocated: plain {_gib(plain['peak_vram_bytes'])}, Studio "
                     f"{_gib(studio['peak_vram_bytes'])}")
        if plain.get("peak_vram_reserved_bytes"):  # the whole process: both sides' weights, the graphs' free blocks
            lines.append(f"Peak VRAM reserved by the process: during plain {_gib(plain['peak_vram_reserved_bytes'])}, "
                         f"during Studio {_gib(studio['peak_vram_reserved_bytes'])}")
    if result["peak_rss_bytes"]:
        lines.append(f"Peak RSS of the whole process: {_gib(result['peak_rss_bytes'])}")
    same = result["same_seed_difference"]
    if same["identical"]:
        lines.append("Same seed: identical pictures.")
    else:
        differ = f"Same seed: pictures differ by {same['mean']:.2f} on average, {same['max']} at most (of 255); "
        lines.append(differ + (f"{'within' if same['within_tolerance'] else 'OUTSIDE'} the tolerance (1 and 8)."
                               if same["within_tolerance"] is not None else
                               f"{result['plain_dtype']} against {result['studio_dtype']} is a change of precision, "
                               "which the fast path's tolerance (1 and 8, for the same precision) does not cover."))
    probes = [(label, side["main_thread_probe"]) for label, side in (("Studio", studio), ("plain", plain))]
    if all(probe for _label, probe in probes):
        lines.append("A Python thread beside the engine (as the window's main thread), waking every 2 ms: "
                     + "; ".join(f"{label} p99 {p['p99_ms']:.1f} ms, max {p['max_ms']:.1f} ms" for label, p in probes)
                     + " (the window's targets: p99 8 ms, max 16 ms).")
    lines.extend(f"Note: {note}" for note in studio["notes"])
    return "\n".join(lines)


def _spread(side: dict[str, Any], batch: int) -> str:
    """The fastest and slowest timed run in seconds per picture, as the median is: ``(0.412–0.431)``."""
    runs = side.get("run_seconds") or []
    if not runs:
        return ""
    return f"({min(runs) / batch:.3f}–{max(runs) / batch:.3f})"


def _gib(size: int | None) -> str:
    return f"{(size or 0) / 2**30:.2f} GiB"
