"""Which listed model a picture's model name and hash mean, as other tools write them.

ComfyUI's ``ckpt_name`` carries the file's extension and often a subfolder (``SD15/dreamshaper_8.safetensors``,
``SD15\\dreamshaper_8.safetensors`` from Windows); AUTOMATIC1111 writes the name it had then (a file renamed since
keeps its hash) and finds checkpoints by ``Model hash``; before its 1.6 it wrote a checkpoint in a subfolder of its
models folder with the folders joined on by "_" (``Model: SD15_dreamshaper_8``, its ``model_name``; 1.6 on write the
file's stem, its ``name_for_extra``). Studio's model list shows a checkpoint's stem and a folder's
name, so an exact name alone misses most of these.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from studio.core.hashing import cached_model_hash, controlnet_hash
from studio.core.model_library import without_weights_suffix

T = TypeVar("T")
OLD_HASH_LENGTH = 8  # A1111's "Model hash" before AutoV2
AUTOV2_LENGTH, FULL_SHA256_LENGTH = 10, 64


def bare_model_name(name: str) -> str:
    """A model's name without its folders (``/`` or ``\\``) and weights extension, in lower case."""
    return without_weights_suffix(re.split(r"[/\\]", name.strip())[-1]).lower()


def folder_joined_names(path: Path) -> set[str]:
    """The names older AUTOMATIC1111 wrote as ``Model:`` for the checkpoint at path, were its models folder any of
    path's folders: the stem with one or more of the folders above it joined on by "_" (``SD15/x.safetensors``:
    "sd15_x"), without "," and ":" as A1111 left them out, in lower case."""
    name, names = bare_model_name(path.name), set()
    for folder in path.parent.parts[::-1]:
        name = f"{folder.lower()}_{name}"
        names.add(name.replace(",", "").replace(":", ""))
    return names


def _as_path(value: object) -> Path | None:
    return Path(value) if isinstance(value, str | os.PathLike) else None


def matching_model(name: str, digest: str, listed: Sequence[tuple[str, T]],
                   hash_of: Callable[[T, int], str | None],
                   path_of: Callable[[T], Path | None] = _as_path) -> T | None:
    """The ``listed`` (name, value) a picture's model ``name`` and ``digest`` (its hash, "" for none) mean: the one
    of that exact name; else the only one of that name without folders, extension and case; else the only one whose
    file's folders and stem joined by "_" make that name (older A1111's, ``folder_joined_names``; ``path_of(value)``
    gives its file, a value that is a path by default); else the only one whose hash is ``digest`` (A1111's AutoV2 or
    old 8 digits, or InvokeAI's whole SHA-256; ``hash_of(value, length)`` gives the listed one's of that length, None
    where it is not known). None when none or several match: a guess could load the wrong model."""
    if name:
        exact = [value for listed_name, value in listed if listed_name == name]
        if len(exact) == 1:
            return exact[0]
        bare = bare_model_name(name)
        same = [value for listed_name, value in listed if bare_model_name(listed_name) == bare]
        if len(same) == 1:
            return same[0]
        joined = [value for _, value in listed if (path := path_of(value)) is not None
                  and bare in folder_joined_names(path)]
        if len(joined) == 1 and not same:
            return joined[0]
    digest = digest.strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{8,64}", digest):
        return None
    if len(digest) == FULL_SHA256_LENGTH:  # InvokeAI writes the file's whole SHA-256: AutoV2 is its start
        digest = digest[:AUTOV2_LENGTH]
    hashed = [value for _, value in listed if (known := hash_of(value, len(digest))) and known.lower() == digest]
    return hashed[0] if len(hashed) == 1 else None


def listed_model_hash(cache_file: Path | None) -> Callable[[str | Path, int], str | None]:
    """``hash_of`` for :func:`matching_model` over model paths: A1111's short SHA-256 (AutoV2, 10 hex digits) as the
    hash cache holds it (a model not hashed yet is not hashed now: that takes about 1 s per GB each), or its old
    8-digit hash (a 64 KiB read) for a single file. None where neither is known or the file cannot be read."""
    def hash_of(model: str | Path, length: int) -> str | None:
        path = Path(model)
        try:
            if not path.exists():  # gone since it was listed
                return None
            if length == OLD_HASH_LENGTH:
                return controlnet_hash(path) if path.is_file() else None
            return cached_model_hash(path, cache_file)
        except OSError:
            return None
    return hash_of
