"""``studio inspect IMAGE [--json]``: what Studio reads from an image file's metadata.

Light on purpose: no torch, no Qt, nothing from the engine. Metadata text is shown escaped, so a
prompt holding terminal escape sequences cannot move the cursor, recolour or retitle the terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from studio.cli_exit import EXIT_BAD_INPUT
from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.core.image_info import ImageInfo


def add_inspect_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "inspect", help="show the prompt and settings stored in an image file",
        description="Show what Studio reads from an image made by Studio, AUTOMATIC1111 (and look-alikes), "
                    "ComfyUI, InvokeAI, Fooocus or NovelAI: the tool, prompt, negative prompt, seed, steps, "
                    "CFG scale, sampler, size and model.")
    parser.add_argument("image", type=Path, metavar="IMAGE", help="a PNG, JPEG or WebP file")
    parser.add_argument("--json", action="store_true",
                        help="print JSON with the keys tool, prompt, negative_prompt, seed, steps, cfg_scale, "
                             "sampler, width, height, model (null where the image does not say), and controls (its "
                             "ControlNet guides; module names another tool's preprocessor that Studio lacks) for a "
                             "picture made with some")
    return parser


def run_inspect(args: argparse.Namespace) -> int:
    from studio.core.image_info import escape_text, inspect_image

    try:
        info = inspect_image(args.image)
    except StudioError as exc:
        print(f"studio: {escape_text(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(info.to_json_dict(), indent=2))  # ASCII-only: control characters come out as \u escapes
        return 0
    print(format_info(info))
    return 0


def format_info(info: ImageInfo) -> str:
    """Human-readable lines, every value escaped."""
    from studio.cli_control import guide_lines
    from studio.core.hires import hires_summary
    from studio.core.image_info import escape_text, refused_values

    def show(value: object) -> str:
        return "-" if value is None else escape_text(str(value))

    sampler = show(info.sampler)
    if info.sampler is not None and info.scheduler is not None and info.scheduler != info.sampler:
        sampler += f" (Studio: {info.scheduler})"
    size = f"{info.width}x{info.height}" if info.width is not None and info.height is not None else "-"
    model = show(info.model)
    if info.model_hash:
        model += f" [{escape_text(info.model_hash)}]"
    cfg = "-" if info.cfg_scale is None else f"{info.cfg_scale:g}"
    lines = [
        ("Tool", show(info.tool) if info.tool else "none (no generation settings found)"),
        ("Prompt", show(info.prompt)),
        ("Negative", show(info.negative_prompt)),
        ("Seed", show(info.seed)),
        ("Steps", show(info.steps)),
        ("CFG scale", cfg),
        ("Sampler", sampler),
        ("Size", size),
        ("Model", model),
    ]
    if info.hires is not None and info.width is not None and info.height is not None:
        lines.append(("Hires fix", escape_text(hires_summary(info.hires, info.width, info.height))))
    lines += [(label, escape_text(text)) for label, text in guide_lines(info.controls)]
    lines += [("Note", escape_text(f"{why}.")) for why in refused_values(info).values()]  # as Load parameters says
    lines += [("Note", escape_text(note)) for note in info.notes]
    width = max(len(label) for label, _ in lines) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in lines)


