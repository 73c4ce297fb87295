"""``studio inspect IMAGE [--json]``: what Studio reads from an image file's metadata.

Light on purpose: no torch, no Qt, nothing from the engine. Metadata text is shown escaped, so a
prompt holding terminal escape sequences cannot move the cursor, recolour or retitle the terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.cli_exit import EXIT_BAD_INPUT
from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.core.image_info import ImageInfo


def add_inspect_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "inspect", help="show the prompt and settings stored in an image file",
        description="Show what Studio reads from an image made by Studio, AUTOMATIC1111 (and look-alikes), "
                    "ComfyUI, InvokeAI, Fooocus or NovelAI: the tool, prompt, negative prompt, seed, steps, "
                    "CFG scale, sampler, size and model, and the hires fix, ControlNet guides, LoRAs, VAE and "
                    "post-processing it was made with.")
    parser.add_argument("image", type=Path, metavar="IMAGE", help="a PNG, JPEG or WebP file")
    parser.add_argument("--json", action="store_true",
                        help="print JSON with the keys tool, prompt, negative_prompt, seed, steps, cfg_scale, "
                             "sampler, width, height, model (null where the image does not say), and controls (its "
                             "ControlNet guides; module names another tool's preprocessor that Studio lacks), loras, "
                             "vae and vae_hash, and post (Studio's post-processing) for a picture made with them")
    return parser


def run_inspect(args: argparse.Namespace) -> int:
    from studio.core.image_info import escape_text
    from studio.core.image_inspection import inspect_image

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
    lines += [(label, escape_text(text)) for label, text in lora_and_vae_lines(info.lora_records(), info.vae,
                                                                               info.vae_hash)]
    if info.post:
        lines.append(("Post-processing", escape_text(post_chain(info.post))))
    if info.precision:
        lines.append(("Precision", escape_text(info.precision)))
    lines += [("Note", escape_text(f"{why}.")) for why in refused_values(info).values()]  # as Load parameters says
    lines += [("Note", escape_text(note)) for note in info.notes]
    width = max(len(label) for label, _ in lines) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in lines)


def lora_and_vae_lines(loras: object, vae: object, vae_hash: object) -> list[tuple[str, str]]:
    """(label, plain unescaped text) for the LoRAs (as the history records them: ``{"name", "weight", "hash"}``)
    and the VAE a picture was made with, for ``inspect`` and ``history show``: "LoRA" alone, else numbered.
    Recorded values are untrusted: what is not a LoRA record is left out."""
    records = [r for r in loras if isinstance(r, dict) and isinstance(r.get("name"), str)] \
        if isinstance(loras, list | tuple) else []
    lines = []
    for number, record in enumerate(records, 1):
        label = "LoRA" if len(records) == 1 else f"LoRA {number}"
        lines.append((label, f"{_with_hash(record['name'], record.get('hash'))}, weight "
                             f"{_number(record.get('weight', 1.0))}"))
    if isinstance(vae, str) and vae:
        lines.append(("VAE", _with_hash(vae, vae_hash)))
    return lines


def post_chain(steps: object) -> str:
    """Recorded post-processing steps in one line of plain, unescaped text, in order: "color (reference x.png) >
    film-look (grain 0.4), strength 0.5, masked"; "" for none."""
    return " > ".join(_step(step) for step in steps) if isinstance(steps, list | tuple) else ""


def _with_hash(name: str, digest: object) -> str:
    return f"{name} [{digest}]" if isinstance(digest, str) and digest else name


def _step(step: object) -> str:
    if not isinstance(step, dict):
        return str(step)
    text = str(step.get("processor", "?"))
    params: Any = step.get("params")
    if isinstance(params, dict) and params:
        text += f" ({', '.join(f'{name} {value}' for name, value in params.items())})"
    strength = step.get("strength")
    if isinstance(strength, int | float) and not isinstance(strength, bool) and strength != 1:
        text += f", strength {strength:g}"
    return text + (", masked" if step.get("masked") is True else "")


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
