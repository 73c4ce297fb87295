"""``studio generate`` and ``studio postprocess``: one request, checked before the engine starts, then run through
the job service (studio.cli_job follows it on the terminal); and ``studio convert-weights``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from studio.cli_exit import EXIT_BAD_INPUT
from studio.cli_job import run_job
from studio.cli_notes import say_note
from studio.cli_params import (
    check_contributions,
    check_inputs_given,
    check_post_processors,
    collect_params,
    parse_post_step,
)
from studio.cli_plugins import open_host
from studio.cli_request import build_request, read_mask
from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, StudioError
from studio.core.images import SAVE_FORMATS, open_image
from studio.core.paths import studio_paths
from studio.core.requests import GenerationRequest, PostProcessRequest, prepare_request
from studio.core.settings import load_settings
from studio.plugin_host.registry import GENERATOR
from studio.services.outputs import OutputStore


def output_paths(output: Path, count: int) -> list[Path]:
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i + 1}{output.suffix}") for i in range(count)]


def check_output(output: Path) -> None:
    """Refuse, before any work, an output that could not be written once the picture is made."""
    if output.suffix.lower() not in SAVE_FORMATS:
        raise InvalidRequest(f"The output {output.name!r} must end in .png, .jpg or .webp.")
    folder = output.parent.resolve()
    if folder.exists() and not folder.is_dir():
        raise InvalidRequest(f"The output folder {output.parent} is a file, not a folder.")
    if not folder.is_dir():
        raise InvalidRequest(f"The output folder {output.parent} does not exist.")
    if output.is_dir():
        raise InvalidRequest(f"The output {output} is a folder; name a file in it.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidRequest(f"Studio may not write into the output folder {output.parent} (permission denied).")


def run_generate(args: argparse.Namespace) -> int:
    from studio.cli_history import try_open_history

    settings = load_settings()
    check_output(args.output)
    plugins = open_host(safe_mode=args.safe_mode)
    # First: the request's checks differ by generator (and the engine would say an unknown one only once started).
    check_contributions(GENERATOR, [args.generator or "diffusers"], plugins.registry, "--generator")
    # Before the request is built: building it may run a guide's preprocessor (a depth map) on the CPU.
    check_post_processors([parse_post_step(text).processor for text in args.post], plugins.registry, "--post")
    check_inputs_given(args, plugins.registry)
    notes: list[str] = []
    prepared = prepare_request(build_request(args, settings, notes))
    for note in (*notes, *prepared.notes):
        say_note(note)
    paths = studio_paths()
    env = GeneratorEnvironment.from_settings(settings, paths, args.device)
    say_if_compile_does_nothing(prepared.request, env, "--speed compile" if args.speed == "compile" else "")
    # A real generation: recorded in the history like the window's, its pictures kept in the outputs folder.
    history = try_open_history()
    try:
        return run_job(prepared.request, env, output_paths(args.output, prepared.request.batch_count),
                       output_store=OutputStore(settings.outputs_dir) if history else None, history=history,
                       plugins=plugins)
    finally:
        if history is not None:
            history.close()


def say_if_compile_does_nothing(request: GenerationRequest, env: GeneratorEnvironment, given_as: str = "") -> None:
    """A note where the request asks for torch.compile (Speed compile) on a device without CUDA, where it changes
    nothing (the fast path it compiles is CUDA graphs): said once, before the job, not left to be wondered at.
    ``given_as``: the option it came from ("--speed compile"); empty where it came from the settings."""
    if request.speed != "compile" or request.generator != "diffusers":
        return
    from studio.engine.device import select_device  # torch: the job imports it next anyway

    if select_device(env.device).kind != "cuda":
        asked = given_as or "The speed setting compile (torch.compile)"
        say_note(f"{asked} only applies on a CUDA GPU; running without it.")


def run_postprocess(args: argparse.Namespace) -> int:
    """``studio postprocess IN -o OUT --method ID``: the picture's recipe is kept, extended by the step, and
    other tools' metadata (a ComfyUI workflow) is carried over."""
    from studio.core.image_text import other_tools_text
    from studio.core.images import read_recipe

    settings = load_settings()
    check_output(args.output)
    image = open_image(args.input)
    mask = read_mask(args.mask, image, args.input.name) if args.mask is not None else None
    request = PostProcessRequest(args.method, image, collect_params(args), read_recipe(args.input),
                                 strength=args.strength, mask=mask)
    plugins = open_host(safe_mode=args.safe_mode)
    check_post_processors([args.method], plugins.registry, "--method")
    check_inputs_given(args, plugins.registry)
    env = GeneratorEnvironment.from_settings(settings, studio_paths())
    return run_job(request, env, [args.output], plugins=plugins, other_text=other_tools_text(args.input))


def run_convert(args: argparse.Namespace) -> int:
    """``studio convert-weights IN OUT``: the one place a pickle checkpoint is read, and only its tensors."""
    from studio.engine.convert import convert_to_safetensors

    if args.dest.suffix.lower() != ".safetensors":
        print(f"studio: The output {args.dest.name!r} must end in .safetensors.", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        summary = convert_to_safetensors(args.source, args.dest)
    except StudioError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"Wrote {args.dest}: {summary['tensors']} tensors, {summary['bytes'] / 2**20:.1f} MiB.")
    return 0
