"""``studio generate`` and ``studio postprocess``: one request, checked before the engine starts, then run through
the job service (studio.cli_job follows it on the terminal); and ``studio convert-weights``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from studio.cli_device import device_fallback_note, device_given
from studio.cli_exit import EXIT_BAD_INPUT
from studio.cli_job import run_job
from studio.cli_notes import say_note
from studio.cli_outputs import check_convert_output, check_outputs, output_paths, param_pictures
from studio.cli_params import check_inputs_given, collect_params, parse_post_step
from studio.cli_plugin_flags import check_chosen
from studio.cli_plugins import open_host
from studio.cli_option_values import read_mask
from studio.cli_request import prepare_generation
from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, ModelError, StudioError
from studio.core.images import open_image
from studio.core.parameters import ImageParam, check_picture_file
from studio.core.paths import studio_paths
from studio.core.requests import GenerationRequest, PostProcessRequest, PostStep, prepare_request
from studio.core.settings import load_settings
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Registry
from studio.services.model_conversion import conversion_notes
from studio.services.outputs import OutputStore

UPSCALE = "upscale"  # Studio's own post-processor that loads an upscaler model (studio.plugin_host.builtins)


def check_post_pictures(steps: Iterable[PostStep], registry: Registry) -> None:
    """Each chain step's picture files are there and may be read, before the job starts (the job would leave a step
    whose picture is gone out of every picture, with a note), said as ``studio postprocess`` says it."""
    for step in steps:
        if not registry.has(POSTPROCESSOR, step.processor):  # refused for that, with the ones there are
            continue
        contribution = registry.get(POSTPROCESSOR, step.processor)
        for param in contribution.parameters:
            value = step.params.get(param.name)
            if isinstance(param, ImageParam) and isinstance(value, str):
                check_picture_file(param, value, contribution.title)
                check_picture_header(Path(value).expanduser(), f"{contribution.title}: {param.title}")


def check_picture_header(path: Path, owner: str) -> None:
    """What the job would refuse once the engine had started (exit 1) that a picture's header says already: one too
    large to open, or no picture at all. Bad input, as the same picture given as IN is: refused before (exit 2)."""
    from PIL import Image, UnidentifiedImageError

    from studio.core.images import MAX_PIXELS, too_large

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # as open_image reads it: Pillow refuses at twice this
    try:
        with Image.open(path) as picture:
            large = too_large(picture.width, picture.height)
    except Image.DecompressionBombError:
        large = True
    except UnidentifiedImageError:
        raise InvalidRequest(f"{owner}: {path.name} is not an image file Studio can read.") from None
    except OSError:
        return  # said as the job reads it (check_picture_file has said what it can)
    if large:
        raise InvalidRequest(f"{owner}: the image {path.name} is too large to open safely (over {MAX_PIXELS:,} "
                             "pixels).")


def check_style_weights(method: str, registry: Registry, env: GeneratorEnvironment) -> None:
    """Studio's own style transfer's weight files there, before the job: a missing model is bad input, said before
    the engine starts, as generate says a missing model (the job said it once started, and exited 1)."""
    from studio.core.style_weights import weights_used_by

    contribution = registry.get(POSTPROCESSOR, method)
    names = [w.name for w in weights_used_by(method)] if contribution.builtin else []
    if names:
        from studio.engine.style.weights import require_weights  # torch: the job loads it next anyway

        try:  # the filter's own check, run before the engine starts
            require_weights(env, names, contribution.title)
        except ModelError as exc:
            raise InvalidRequest(str(exc)) from None


def check_upscaler(method: str, params: Mapping[str, Any], registry: Registry, env: GeneratorEnvironment) -> None:
    """Studio's own Upscale finds its upscaler model before the job, as the filter will find it (the one named, else
    the first in the upscalers folder): none there is bad input, said with where to put one before the engine
    starts (the job said it once started, and exited 1). So is the spandrel library that loads it not installed."""
    contribution = registry.get(POSTPROCESSOR, method)
    if not (contribution.builtin and method == UPSCALE):
        return
    from studio.core.upscalers import check_spandrel_installed, find_upscaler  # no torch before the request is checked

    try:  # the filter's own lookup, run before the engine starts
        find_upscaler(env, str(params.get("model", "") or ""))
        check_spandrel_installed()
    except ModelError as exc:
        raise InvalidRequest(str(exc)) from None


def check_post_models(steps: Iterable[PostStep], registry: Registry, env: GeneratorEnvironment) -> None:
    """The weight files each of Studio's own post-processors among ``steps`` loads (style weights, an upscaler
    model) are there, before the job: a missing model is bad input, as generate says a missing model."""
    for step in steps:
        if registry.has(POSTPROCESSOR, step.processor):  # else refused for that, with the ones there are
            check_style_weights(step.processor, registry, env)
            check_upscaler(step.processor, step.params, registry, env)


def generate_reads(args: argparse.Namespace, steps: Sequence[PostStep], registry: Registry) -> list[tuple[str, Path]]:
    """The pictures ``studio generate`` reads, as check_outputs takes them: its init picture, mask, control
    pictures, and those given to its generator's and --post steps' parameters."""
    reads = [(f"the {option} picture", path) for option, path in (("--init-image", args.init_image),
                                                                 ("--mask", args.mask)) if path is not None]
    reads += [("the control picture of --control", Path(guide.image).expanduser())
              for guide in getattr(args, "controls", None) or ()]
    generator = args.generator or "diffusers"
    reads += [(f"the picture given to {param.flag}", path)
              for param, path in param_pictures(collect_params(args), registry, GENERATOR, generator)]
    for step in steps:
        reads += [(f"the picture given to --post {step.processor}:{param.name}=", path)
                  for param, path in param_pictures(step.params, registry, POSTPROCESSOR, step.processor)]
    return reads


def run_generate(args: argparse.Namespace) -> int:
    from studio.cli_history import close_history, try_open_history

    settings = load_settings()
    plugins = open_host(safe_mode=args.safe_mode)
    # First: the request's checks differ by generator (and the engine would say an unknown one only once started).
    check_chosen(plugins, GENERATOR, [args.generator or "diffusers"], "--generator")
    # Before the request is built: building it may run a guide's preprocessor (a depth map) on the CPU.
    steps = [parse_post_step(text) for text in args.post]
    check_chosen(plugins, POSTPROCESSOR, [step.processor for step in steps], "--post")
    check_inputs_given(args, plugins.registry)
    check_post_pictures(steps, plugins.registry)
    env = GeneratorEnvironment.from_settings(settings, studio_paths(), args.device)
    # A step's missing weights or upscaler were found only once the picture was made (kept without the step).
    check_post_models(steps, plugins.registry, env)
    notes: list[str] = []
    prepared = prepare_generation(args, settings, notes)
    # Then the outputs, all a batch's names at once: what is wrong with the request is said first ("already exists"
    # hid it, and --overwrite only then showed it).
    check_outputs(output_paths(args.output, prepared.request.batch_count), overwrite=args.overwrite,
                  reads=generate_reads(args, steps, plugins.registry), outputs_dir=settings.outputs_dir)
    say_unless_the_job_will((*notes, *prepared.notes), prepared.request)
    if (note := device_fallback_note(args.device, settings.device)) and prepared.request.generator == "diffusers":
        say_note(note)
    with device_given(args.device):
        say_if_compile_does_nothing(prepared.request, env, "--speed compile" if args.speed == "compile" else "")
    # A real generation: recorded in the history like the window's, its pictures kept in the outputs folder (even
    # where the history cannot record them: try_open_history said so, and the pictures are not lost for that).
    history = try_open_history()
    try:
        with device_given(args.device):
            return run_job(prepared.request, env, output_paths(args.output, prepared.request.batch_count),
                           output_store=OutputStore(settings.outputs_dir), history=history, plugins=plugins,
                           overwrite=args.overwrite)
    finally:
        if history is not None:
            close_history(history)


def say_unless_the_job_will(notes: Iterable[str], request: GenerationRequest) -> None:
    """Say each of ``notes`` before the job, but those the job says itself: the job service prepares the request
    again, and says what that notes once the pictures are saved (a prompt's LoRA tags, tags read as words in the
    negative prompt); those are said once, by the job."""
    repeated = set(prepare_request(request).notes)
    for note in notes:
        if note not in repeated:
            say_note(note)


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

    from studio.services.plugin_jobs import check_plugin_inputs

    settings = load_settings()
    plugins = open_host(safe_mode=args.safe_mode)
    check_chosen(plugins, POSTPROCESSOR, [args.method], "--method")
    check_inputs_given(args, plugins.registry)
    params = collect_params(args)
    check_post_pictures([PostStep(args.method, params)], plugins.registry)
    image = open_image(args.input)
    mask = read_mask(args.mask, image, args.input.name) if args.mask is not None else None
    # The request checked whole (its strength, mask and parameters) before -o: what is wrong with the request is
    # said first, as generate says it ("already exists" hid it, and --overwrite only then showed it).
    request = check_plugin_inputs(plugins.registry, PostProcessRequest(
        args.method, image, params, read_recipe(args.input), strength=args.strength, mask=mask))
    env = GeneratorEnvironment.from_settings(settings, studio_paths())
    check_post_models([PostStep(args.method, params)], plugins.registry, env)
    reads = [("the picture to process", args.input), *((("the --mask picture", args.mask),) if args.mask else ()),
             *((f"the picture given to {param.flag}", path)
               for param, path in param_pictures(params, plugins.registry, POSTPROCESSOR, args.method))]
    check_outputs([args.output], overwrite=args.overwrite, reads=reads, outputs_dir=settings.outputs_dir)
    return run_job(request, env, [args.output], plugins=plugins, other_text=other_tools_text(args.input),
                   overwrite=args.overwrite)


def run_convert(args: argparse.Namespace) -> int:
    """``studio convert-weights IN OUT``: the one place a pickle checkpoint is read, and only its tensors."""
    from studio.engine.convert import check_checkpoint, convert_to_safetensors

    try:
        check_checkpoint(args.source)  # IN first: a wrong OUT is no news while there is nothing to convert
        check_convert_output(args.source, args.dest, overwrite=args.overwrite)
        done = convert_to_safetensors(args.source, args.dest)
    except StudioError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for note in conversion_notes(done.taken_from, done.beside, done.not_tensors):
        say_note(note)
    print(f"Wrote {args.dest}: {done.tensors} {'tensor' if done.tensors == 1 else 'tensors'}, "
          f"{_amount(done.bytes)}.")
    return 0


def _amount(size: int) -> str:
    """A size in the unit that shows it: "48 bytes", "3.0 KiB", "1.6 GiB" (a few small weights read "0.0 MiB")."""
    for power, unit in ((3, "GiB"), (2, "MiB"), (1, "KiB")):
        if size >= 1024**power:
            return f"{size / 1024**power:.1f} {unit}"
    return f"{size} {'byte' if size == 1 else 'bytes'}"
