"""The ``studio`` command: launch the window, or work headless through the same engine."""

from __future__ import annotations

import argparse
import codecs
import io
import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path

from studio import __version__
from studio.cli_bench import add_bench_parser
from studio.cli_exit import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_CANCELLED
from studio.cli_generate_parser import add_generate_parser
from studio.cli_history import add_history_parser
from studio.cli_inspect import add_inspect_parser
from studio.cli_models import add_models_parser
from studio.cli_notes import say_note
from studio.cli_outputs import add_output_flags
from studio.cli_parser import CommandParser
from studio.cli_plugin_flags import add_plugin_flags, ids_for_help
from studio.cli_plugins import add_plugins_parser
from studio.core.errors import StudioError


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
    add_generate_parser(commands, argv)
    post = commands.add_parser(
        "postprocess", help="run a post-processor on a picture",
        description="Run a post-processor (Studio's own or an enabled plugin's) on a picture, headless. Its "
                    "options are listed by: studio postprocess IN -o OUT --method ID --help")
    post.add_argument("input", type=Path, metavar="IN", help="the picture to process")
    add_output_flags(post)
    post.add_argument("--method", required=True, metavar="ID",
                      help="the post-processor to run: Studio's own or an enabled plugin's (studio plugins list)"
                           + ids_for_help(argv, "postprocess", "postprocessor"))
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
    add_plugin_flags(argv, "postprocess", "--method", "postprocessor", post)
    add_inspect_parser(commands)
    add_history_parser(commands)
    add_plugins_parser(commands)
    add_models_parser(commands)
    add_bench_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from studio.core.paths import studio_home_problem
    from studio.core.settings import load_notes

    _print_whatever_the_terminal_takes()
    notes = _NotesOnStderr()  # whichever command loads the settings, and wherever: what the loader had to do is said
    load_notes.addHandler(notes)  # from the start: help shows the settings' defaults, read while parsing
    try:
        args = _parse(argv)
        if problem := studio_home_problem():  # once, before any command or the window looks inside it
            print(f"studio: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if args.command is not None:
            return _run(args)
    except KeyboardInterrupt:  # Ctrl+C outside a job's event loop (which makes it the job's cancel): no traceback
        print("studio: cancelled.", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        load_notes.removeHandler(notes)
    from studio.app import run_app

    return run_app(print_startup_time=args.print_startup_time, open_path=args.open, safe_mode=args.safe_mode)


def _print_whatever_the_terminal_takes() -> None:
    """stdout (and stderr) write what their encoding cannot hold as escapes (``\\xfc`` for ü under LC_ALL=C or
    PYTHONIOENCODING=latin-1), where a "Saved …/ü.png" printed after the work was done crashed the command."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors != _ESCAPE_UNENCODABLE:
            stream.reconfigure(errors=_ESCAPE_UNENCODABLE)


def _surrogates_or_backslashes(error: UnicodeError) -> tuple[str | bytes, int]:
    """A file name's undecodable bytes (surrogateescape, as os.fsdecode read them) go out as they came in, as
    Python's own C-locale streams write them; any other character the encoding lacks, as a backslash escape."""
    try:
        return codecs.lookup_error("surrogateescape")(error)
    except UnicodeError:
        return codecs.lookup_error("backslashreplace")(error)


_ESCAPE_UNENCODABLE = "studio.surrogates_or_backslashes"
codecs.register_error(_ESCAPE_UNENCODABLE, _surrogates_or_backslashes)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line read. What is logged meanwhile (``generate --help`` reads the settings for its defaults)
    goes to the log file once the command is known, not to the terminal in Python's bare form beside the note."""
    kept = logging.handlers.BufferingHandler(capacity=1000)
    root = logging.getLogger()
    root.addHandler(kept)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit:  # help, or a usage error: the command ends here
        root.removeHandler(kept)
        if kept.buffer:
            _log_to_file(kept.buffer)
        raise
    root.removeHandler(kept)
    if args.command is not None:
        _log_to_file(kept.buffer)
    return args


def _log_to_file(records: list[logging.LogRecord]) -> None:
    from studio.core.paths import log_to_file, studio_paths

    log_to_file(studio_paths())  # the window sets up its own, once its folders are known
    for record in records:
        logging.getLogger().handle(record)


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
