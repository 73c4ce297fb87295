"""Reading what an image file says about how it was made: Studio's own recipe, or another tool's metadata.

Studio's JSON chunk is read first (exact). Everything else goes through sd-parsers' parsers
(AUTOMATIC1111 and look-alikes, ComfyUI, InvokeAI, Fooocus, NovelAI) in ``studio.core.other_tools_metadata``;
this module only gets the raw text out of the file, with limits, and hands it over.

Metadata text is data: nothing here evaluates it. A text over ``MAX_TEXT_BYTES``, malformed JSON, or
a parser that fails is skipped with a note in ``ImageInfo.notes``, never a crash. Why the text is
pulled out here rather than by sd-parsers' ``ParserManager``:

- Pillow decodes PNG text chunks while opening the file and raises for a compressed chunk that
  expands past ``PngImagePlugin.MAX_TEXT_CHUNK`` (the whole image becomes unreadable), and keeps
  uncompressed chunks of any size; reading the chunks here skips just the offending one.
- ``ParserManager`` only catches ``ParserError``; a parser's ``TypeError`` on odd-but-valid JSON
  (``sd-metadata: []``) escapes it.
- sd-parsers' JPEG extractor caches the last UserComment by ``id(image)``, so a picture without
  metadata opened at a freed image's address is reported with the previous picture's prompt.
- Fooocus writes its JPEG/WebP UserComment in the main EXIF directory as plain text, where
  sd-parsers' extractor does not look.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from studio.core.errors import ImageError
from studio.core.image_info import STUDIO_TOOL, ImageInfo
from studio.core.images import check_image_file, first_page_words
from studio.core.image_text import PNG_SIGNATURE, read_exif_texts, read_png_texts
from studio.core.metadata import PARAMETERS_CHUNK, STUDIO_CHUNK, Recipe
from studio.core.metadata_values import as_float, as_int, as_text
from studio.core.other_tools_metadata import from_other_tools
from studio.core.sampler_names import studio_scheduler

MAX_NOTES = 20


def inspect_image(path: str | os.PathLike[str]) -> ImageInfo:
    """Read what an image file says about how it was made.

    Raises ImageError (one sentence) for a missing, non-image, or truncated file; anything wrong
    with the metadata itself only adds a note.
    """
    path = Path(path)
    check_image_file(path)
    notes: list[str] = []
    try:
        with open(path, "rb") as f:
            is_png = f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
            if is_png:
                size, texts = read_png_texts(f, path.name, notes)
            else:
                size, texts = read_exif_texts(path, notes)
    except OSError as exc:
        raise ImageError(f"The image {path.name} could not be read ({exc.strerror or exc}).") from None

    info = from_studio_recipe(texts, notes) or from_other_tools(texts, notes)
    if info is None:
        if texts:
            where = ", ".join(repr(key) for key in sorted(texts)) if is_png else "its EXIF UserComment"
            notes.append(f"No generation settings Studio knows were found in this image's metadata ({where}).")
        info = ImageInfo.unread()
    width, height = info.width, info.height
    if width is None or height is None:
        width, height = size
    if pages := first_page_words(path):  # a TIFF's later pages, a GIF's later frames: what was read is the first's
        notes.append(f"This file holds more than one picture; Studio opens and reads {pages}.")
    if len(notes) > MAX_NOTES:
        notes[MAX_NOTES - 1:] = [f"... and {len(notes) - MAX_NOTES + 1} more notes like these."]
    return replace(info, width=width, height=height, notes=tuple(notes))


def from_studio_recipe(texts: dict[str, str], notes: list[str]) -> ImageInfo | None:
    recipe = None
    if STUDIO_CHUNK in texts:
        try:
            recipe = Recipe.from_json(texts[STUDIO_CHUNK])
        except (ValueError, TypeError, AttributeError, RecursionError):
            from studio.core.recipe_faults import unread_note  # pydantic's TypeAdapter: only for a faulty recipe

            notes.append(unread_note(texts[STUDIO_CHUNK]))
    recipe_json = texts[STUDIO_CHUNK] if recipe is not None else None
    if recipe is None and PARAMETERS_CHUNK in texts:
        # Studio's A1111 text (JPEG/WebP carry only this): read exactly, quoting and all.
        try:
            candidate = Recipe.from_parameters(texts[PARAMETERS_CHUNK])
        except (ValueError, TypeError, IndexError):
            candidate = None
        if candidate is not None and candidate.version.startswith(f"{STUDIO_TOOL} "):
            recipe = candidate
    if recipe is not None and not recipe.describes_generation:
        steps = " > ".join(str(step.get("processor", "?")) for step in recipe.post) or "nothing"
        notes.append(f"Studio post-processed this picture ({steps}); Studio did not make it.")
        texts.pop(STUDIO_CHUNK)  # what made it may still be told by the tool that did
        return None
    if recipe is None:
        return None
    read = {name: reader(getattr(recipe, name)) for name, reader in RECIPE_READERS.items()}
    info = ImageInfo(
        tool=STUDIO_TOOL,
        prompt=read["prompt"],
        negative_prompt=read["negative_prompt"],
        seed=read["seed"],
        steps=read["steps"],
        cfg_scale=read["cfg_scale"],
        sampler=read["sampler"] or None,
        width=read["width"] or None,
        height=read["height"] or None,
        model=read["model_name"] or None,
        model_hash=read["model_hash"] or None,
        scheduler=studio_scheduler(read["sampler"]),
        loras=tuple((lora.name, lora.weight) for lora in recipe.loras),
        lora_hashes=tuple(lora.hash for lora in recipe.loras),
        vae=read["vae_name"] or None,
        vae_hash=(read["vae_hash"] or None) if read["vae_name"] else None,
        hires=recipe.hires,
        controls=recipe.controls,
        post=recipe.post,
        precision=read["precision"] or None,
    )
    if recipe_json is not None:
        # A value the readers took is never named: they take "25" as 25 steps, where pydantic's strict check would not.
        used = {name for name, value in read.items() if value is not None}
        used |= {"loras"} if info.loras else set()
        used |= {"controls"} if info.controls else set()
        used |= {"hires_scale", "hires_steps", "hires_strength", "hires_upscaler"} if info.hires else set()
        dropped = {name for name, value in read.items() if value is None}
        from studio.core.recipe_faults import wrong_kinds_note  # not on the way to the window's first frame

        notes += filter(None, [wrong_kinds_note(recipe_json, dropped=dropped, used=used)])
    return info


# How each value of Studio's recipe that an ImageInfo shows is read (untrusted: None where it cannot be used).
RECIPE_READERS: dict[str, Callable[[Any], Any]] = {
    "prompt": as_text, "negative_prompt": as_text, "steps": as_int, "sampler": as_text, "cfg_scale": as_float,
    "seed": as_int, "width": as_int, "height": as_int, "model_name": as_text, "model_hash": as_text,
    "vae_name": as_text, "vae_hash": as_text, "precision": as_text}
