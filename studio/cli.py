"""The ``studio`` command: launch the window, or work headless through the same engine."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from studio import __version__
from studio.cli_bench import add_bench_parser
from studio.cli_control import add_control_flags
from studio.cli_exit import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_CANCELLED
from studio.cli_history import add_history_parser
from studio.cli_models import add_models_parser
from studio.cli_notes import say_note
from studio.cli_outputs import add_output_flags
from studio.cli_parser import CommandParser
from studio.cli_inspect import add_inspect_parser
from studio.cli_params import add_param_flags, option_value
from studio.cli_plugins import add_plugins_parser
from studio.core.errors import StudioError
from studio.core.hires import LANCZOS
from studio.core.hires import MAX_SCALE as MAX_HIRES_SCALE
from studio.core.inpaint import INPAINT_FILLS, MAX_EXTEND
from studio.core.requests import (
    MEMORY_MODES,
    SCHEDULER_NAMES,
    SPEED_MODES,
)

if TYPE_CHECKING:
    from studio.plugin_host.registry import Contribution


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    argv = sys.argv[1:] if argv is None else argv
    parser = CommandParser(
        prog="studio", description="Studio: a local AI image studio. With no command, opens the window.")
    parser.add_argument("--version", action="version", version=f"Studio {__version__}")
    parser.add_argument("--print-startup-time", action="store_true",
                        help="open the window, print the seconds from process start to its first frame, and quit")
    parser.add_argument("--open", metavar="IMAGE", help="open this picture on the canvas at start")
    parser.add_argument("--safe-mode", action="store_true",
                        help="start without loading any plugin (Studio's own features only)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    gen = commands.add_parser("generate", help="make images from a prompt (txt2img, img2img, inpaint, outpaint)",
                              description="Make images from a prompt, headless, through Studio's engine. An option "
                                          "not given takes the settings' generation default, what the window starts "
                                          "with: the negative prompt, size, steps, CFG, scheduler, strength, "
                                          "inpainting options and the hires fix's steps, strength and upscaler.")
    gen.add_argument("--generator", default="diffusers", metavar="ID",
                     help="diffusers (the default), or the id of an enabled plugin's generator; its options are "
                          "listed by: studio generate --generator ID --help"
                          + _ids_for_help(argv, "generate", "generator"))
    gen.add_argument("--model", help="a checkpoint (.safetensors) or diffusers folder, or a name from "
                                      "`studio models list`")
    gen.add_argument("--prompt", required=True)
    # None where not given: the settings' generation defaults, as the window starts with (studio.cli_request).
    sampling = _sampling_defaults(argv)
    gen.add_argument("--negative", help=f"negative prompt (default: {sampling['negative_prompt']})")
    gen.add_argument("--seed", type=int, default=-1, help="seed (default: random)")
    gen.add_argument("--steps", type=int, help=f"denoising steps (default: {sampling['steps']})")
    gen.add_argument("--size", help=f"WIDTHxHEIGHT, e.g. 512x768 (default: {sampling['size']}; with --init-image, "
                                    "the picture's size)")
    gen.add_argument("--cfg", type=float, help=f"CFG (guidance) scale (default: {sampling['cfg_scale']})")
    gen.add_argument("--scheduler", help=f"one of: {', '.join(SCHEDULER_NAMES)}, in any case (euler_a is Euler a) "
                                         f"(default: {sampling['scheduler']})")
    gen.add_argument("--batch-count", type=int, default=1, help="how many images, with consecutive seeds")
    gen.add_argument("--init-image", type=Path, help="img2img: the picture to start from")
    gen.add_argument("--strength", type=float, default=None,
                     help="with --init-image (img2img, inpainting): how much of the picture may change, above 0 and "
                          f"at most 1 (default: {sampling['strength']})")
    inpaint = gen.add_argument_group(
        "inpainting and outpainting", "With --init-image: regenerate only part of the picture. The result has the "
        "picture's own size (the extended size when outpainting); pixels outside the feathered mask are kept.")
    inpaint.add_argument("--mask", type=Path, metavar="MASK",
                         help="image of the picture's size: white (or opaque, if it has alpha) = regenerate")
    area = inpaint.add_mutually_exclusive_group()
    # Defaults None: an option given without --mask or --outpaint is refused (studio.cli_request), not ignored.
    area.add_argument("--masked-only", dest="masked_only", action="store_true", default=None,
                      help="work on the mask's box plus padding at the model's native size (default: "
                           f"{sampling['area']})")
    area.add_argument("--whole-picture", dest="masked_only", action="store_false",
                      help="work on the whole picture at its own size")
    inpaint.add_argument("--padding", type=int,
                         help=f"masked-only: pixels of context around the mask (default: {sampling['padding']})")
    inpaint.add_argument("--fill", metavar="FILL",
                         help=f"what the masked area starts from: {' | '.join(INPAINT_FILLS)} "
                              f"(default: {sampling['fill']})")
    inpaint.add_argument("--feather", type=float,
                         help=f"blur radius of the mask edge when blending back (default: {sampling['feather']})")
    inpaint.add_argument("--outpaint", metavar="LEFT,TOP,RIGHT,BOTTOM",
                         help="extend the picture by these many pixels on each side (at most "
                              f"{MAX_EXTEND} a side) and fill the new area")
    hires = gen.add_argument_group("hires fix", "make the picture at --size, enlarge it, and redraw it larger")
    hires.add_argument("--hires", type=float, metavar="SCALE",
                       help=f"enlarge by SCALE (above 1, at most {MAX_HIRES_SCALE:g}); 2 makes 512x512 1024x1024")
    hires.add_argument("--hires-steps", type=int, metavar="N",
                       help=f"steps of the second pass, 0 for as many as --steps (default: {sampling['hires_steps']})")
    hires.add_argument("--hires-strength", type=float, metavar="S",
                       help=f"how much the second pass may redraw (default: {sampling['hires_strength']})")
    hires.add_argument("--hires-upscaler", metavar="NAME",
                       help=f"{LANCZOS}, Latent (A1111's latent upscalers, also \"Latent (bicubic)\" and the rest), or "
                            "an upscaler model in the models folder's upscalers/ "
                            f"(default: {sampling['hires_upscaler']})")
    add_control_flags(gen)
    gen.add_argument("--lora", action="append", default=[], metavar="NAME[:WEIGHT]",
                     help="apply this LoRA (a name in the models folder's loras/, or a .safetensors file) at WEIGHT "
                          "(default 1, from -4 to 4); repeat for several")
    gen.add_argument("--vae", default="", metavar="NAME",
                     help="use this VAE instead of the model's own: a name in the models folder's vae/, "
                          "or a diffusers VAE folder or .safetensors file")
    gen.add_argument("--device", default=None, choices=["auto", "cuda", "mps", "cpu"],
                     help="where to run: auto (a GPU where PyTorch has one, else the CPU), cuda, mps or cpu (default: "
                          "from settings); cuda or mps where PyTorch has none is refused")
    gen.add_argument("--speed", default=None, choices=list(SPEED_MODES),
                     help="on CUDA: fast (CUDA graphs, the default from settings), eager (plain diffusers), compile "
                          "(fast + torch.compile: minutes of warm-up per size)")
    gen.add_argument("--memory", default=None, choices=list(MEMORY_MODES),
                     help="GPU memory: auto fits each job to the free VRAM (the default, from settings), high keeps "
                          "all on the GPU, low uses CPU offload and VAE tiling")
    gen.add_argument("--post", action="append", default=[], metavar="ID[:NAME=VALUE,...]",
                     help="apply this post-processor to every image (repeat for a chain, in order)"
                          + _ids_for_help(argv, "generate", "postprocessor"))
    add_output_flags(gen, batch=True)
    post = commands.add_parser(
        "postprocess", help="run a post-processor on a picture",
        description="Run a post-processor (Studio's own or an enabled plugin's) on a picture, headless. Its "
                    "options are listed by: studio postprocess IN -o OUT --method ID --help")
    post.add_argument("input", type=Path, metavar="IN", help="the picture to process")
    add_output_flags(post)
    post.add_argument("--method", required=True, metavar="ID",
                      help="the post-processor to run: Studio's own or an enabled plugin's (studio plugins list)"
                           + _ids_for_help(argv, "postprocess", "postprocessor"))
    post.add_argument("--strength", type=float, default=1.0,
                      help="blend with the original: 0 keeps it, 1 (the default) takes the result fully")
    post.add_argument("--mask", type=Path, metavar="MASK",
                      help="change only under the white (or opaque) part of this picture of the same size")
    convert = commands.add_parser(
        "convert-weights", help="convert a pickle checkpoint (.pth/.pt/.ckpt/.bin) to safetensors",
        description="Read a PyTorch checkpoint with torch.load(weights_only=True), which refuses anything but "
                    "tensors and plain containers, and write its tensors as a .safetensors file Studio can use.")
    convert.add_argument("source", type=Path, metavar="IN")
    convert.add_argument("dest", type=Path, metavar="OUT", help="the .safetensors file to write")
    convert.add_argument("--overwrite", action="store_true",
                         help="replace an OUT that exists already (never IN, the checkpoint this command reads)")
    generator = _add_plugin_flags(argv, "generate", "--generator", "generator", gen)
    if generator is not None and {"-h", "--help"} & set(argv):  # the help of the plugin's generator: what it uses
        from studio.cli_params import PREFIX
        from studio.cli_plugin_help import narrow_help_to_plugin_generator

        narrow_help_to_plugin_generator(gen, generator, {PREFIX + param.name for param in generator.parameters})
    _add_plugin_flags(argv, "postprocess", "--method", "postprocessor", post)
    add_inspect_parser(commands)
    add_history_parser(commands)
    add_plugins_parser(commands)
    add_models_parser(commands)
    add_bench_parser(commands)
    return parser


_SETTINGS_DEFAULTS = ("negative_prompt", "size", "steps", "cfg_scale", "scheduler", "strength", "area", "padding",
                      "fill", "feather", "hires_steps", "hires_strength", "hires_upscaler")


def _sampling_defaults(argv: list[str]) -> dict[str, str]:
    """How ``generate --help`` gives the defaults taken from the settings' generation defaults: "from settings (20)",
    the values read from the settings when help is asked for, else "from settings" (not read at every start)."""
    if "generate" not in argv or not {"-h", "--help"} & set(argv):
        return dict.fromkeys(_SETTINGS_DEFAULTS, "from settings")
    from studio.core.settings import load_settings

    defaults = load_settings().generation  # checked as it is read: numbers in range, a scheduler Studio has
    shown = {"negative_prompt": repr(defaults.negative_prompt) if defaults.negative_prompt else "none",
             "size": f"{defaults.width}x{defaults.height}", "steps": str(defaults.steps),
             "cfg_scale": f"{defaults.cfg_scale:g}", "scheduler": defaults.scheduler,
             "strength": f"{defaults.strength:g}",
             "area": "--masked-only" if defaults.inpaint_masked_only else "--whole-picture",
             "padding": str(defaults.inpaint_padding), "fill": defaults.inpaint_fill,
             "feather": f"{defaults.inpaint_feather:g}", "hires_steps": str(defaults.hires_steps),
             "hires_strength": f"{defaults.hires_strength:g}", "hires_upscaler": defaults.hires_upscaler}
    # argparse formats help with %: a negative prompt may hold one
    return {name: f"from settings ({shown[name]})".replace("%", "%%") for name in _SETTINGS_DEFAULTS}


def _ids_for_help(argv: list[str], command: str, kind: str) -> str:
    """``; one of: ID, ...`` for ``command --help``: the ids installed and enabled now, read from the manifests (no
    plugin code, no torch), so the help names what there is; nothing when no help is asked for."""
    if command not in argv or not {"-h", "--help"} & set(argv):
        return ""
    from studio.cli_plugins import open_host

    try:
        ids = [c.id for c in open_host(safe_mode="--safe-mode" in argv).registry.contributions(kind)]
    except StudioError:
        return ""
    return f"; one of: {', '.join(ids)}".replace("%", "%%") if ids else ""  # argparse formats help with %


def _add_plugin_flags(argv: list[str], command: str, option: str, kind: str, parser: argparse.ArgumentParser
                      ) -> Contribution | None:
    """The chosen plugin contribution's parameters as flags (read from its manifest; nothing is imported); the
    contribution, or None where none (or Studio's own generator) is chosen."""
    chosen = option_value(argv, option)
    if command not in argv or not chosen or chosen == "diffusers" or "--safe-mode" in argv:
        return None
    from studio.cli_plugins import open_host

    try:
        contribution = open_host().registry.get(kind, chosen)
    except StudioError:
        return None  # reported when the job is checked, with the list of what is installed
    add_param_flags(parser, contribution.title, contribution.parameters, contribution.builtin)
    return contribution


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser(argv).parse_args(argv)
        if args.command is not None:
            return _run_command(args)
    except KeyboardInterrupt:  # Ctrl+C outside a job's event loop (which makes it the job's cancel): no traceback
        print("studio: cancelled.", file=sys.stderr)
        return EXIT_CANCELLED
    from studio.app import run_app

    return run_app(print_startup_time=args.print_startup_time, open_path=args.open, safe_mode=args.safe_mode)


def _run_command(args: argparse.Namespace) -> int:
    from studio.core.paths import log_to_file, studio_paths
    from studio.core.settings import load_notes

    log_to_file(studio_paths())  # the window sets up its own, once its folders are known
    notes = _NotesOnStderr()  # whichever command loads the settings, and wherever: what the loader had to do is said
    load_notes.addHandler(notes)
    try:
        return _run(args)
    finally:
        load_notes.removeHandler(notes)


class _NotesOnStderr(logging.Handler):
    """Each note logged to it, said once on stderr as the command's other notes are (``say_note``)."""

    def __init__(self) -> None:
        super().__init__()
        self.said: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        note = record.getMessage()
        if note not in self.said:  # a file with a bad value is read as it was by a second load: one note
            self.said.add(note)
            say_note(note)


def _run(args: argparse.Namespace) -> int:
    if args.command in ("generate", "postprocess"):
        from studio.cli_generate import run_generate, run_postprocess

        try:
            return run_generate(args) if args.command == "generate" else run_postprocess(args)
        except StudioError as exc:
            print(f"studio: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.command == "history":
        from studio.cli_history import run_history

        return run_history(args)
    if args.command == "inspect":
        from studio.cli_inspect import run_inspect

        return run_inspect(args)
    if args.command == "convert-weights":
        from studio.cli_generate import run_convert

        return run_convert(args)
    if args.command == "models":
        from studio.cli_models import run_models

        return run_models(args)
    if args.command == "bench":
        from studio.cli_bench import run_bench

        return run_bench(args)
    from studio.cli_plugins import run_plugins

    return run_plugins(args)


# Threads of Studio's own worker pools, which the interpreter stops itself at exit.
_POOL_THREADS = ("ThreadPoolExecutor", "asyncio_")


def run() -> None:
    """The ``studio`` command: ``main()``, then an exit that a thread a plugin left running cannot hold up
    (the interpreter would wait for it for ever, after the work was done and said)."""
    try:
        code = main()
        sys.stdout.flush()  # here, where a reader that went away (`| head`) is caught, not at exit
    except BrokenPipeError:
        # Quietly, as cat or grep end in a pipe: the rest of the output is sent nowhere (Python would try to
        # flush it again at exit and print a traceback), and the status is the shell's for death by SIGPIPE
        # (128 + 13), so `set -o pipefail` scripts see what they see for other tools: output cut short.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    lingering = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
                 and not t.name.startswith(_POOL_THREADS)]
    if lingering:
        logging.getLogger(__name__).warning("Exiting past threads left running: %s",
                                            ", ".join(t.name for t in lingering))
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    run()
