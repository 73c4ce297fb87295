"""Tokenizers shared by the models that have the same one, so only the first model loads it.

Every SD 1.x model carries CLIP's tokenizer and every SDXL model the same two, but transformers builds
one from its files in 0.4 s on this CPU: half of an SD 1.5 folder's whole load, most of it in Python
that converts 49k merges and in JSON parsing that holds the GIL for 40-60 ms at a time (the window
stutters). A tokenizer is known by its files' contents, and handed to diffusers, which then loads it
from nothing. Only the engine thread uses them, one job at a time, and nothing Studio does changes one.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKENIZER_PARTS = ("tokenizer", "tokenizer_2")  # a diffusers folder's names for them
KEPT = 4  # SD 1.x's, SDXL's two, SD 2.x's: each takes a few MB

_known: OrderedDict[str, Any] = OrderedDict()


def _digest(folder: Path) -> str | None:
    """The folder's files by name and content (a few MB, read in milliseconds), or None without a folder."""
    if not folder.is_dir():
        return None
    digest = hashlib.blake2b(digest_size=16)
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def tokenizer_digests(root: Path) -> dict[str, str]:
    """The digest of each tokenizer folder under a diffusers folder (a model's, or the config one a single-file
    checkpoint loads with), by part name."""
    found = {}
    for part in TOKENIZER_PARTS:
        try:
            digest = _digest(root / part)
        except OSError:  # the load itself says what is wrong
            digest = None
        if digest is not None:
            found[part] = digest
    return found


def known_tokenizers(digests: dict[str, str]) -> dict[str, Any]:
    """The tokenizers loaded before with these digests, as the pipeline's keyword arguments."""
    found = {}
    for part, digest in digests.items():
        if digest in _known:
            _known.move_to_end(digest)
            found[part] = _known[digest]
    return found


def remember_tokenizers(digests: dict[str, str], pipe: Any) -> None:  # noqa: ANN401 - a diffusers pipeline
    """Keep the pipeline's tokenizers for the next model whose files are the same."""
    for part, digest in digests.items():
        tokenizer = getattr(pipe, part, None)
        if tokenizer is not None:
            _known[digest] = tokenizer
            _known.move_to_end(digest)
    while len(_known) > KEPT:
        _known.popitem(last=False)


def load_sharing_tokenizers(root: Path, load: Callable[..., Any]) -> Any:  # noqa: ANN401 - a diffusers pipeline
    """``load(**tokenizers)``, given the tokenizers known for ``root``'s tokenizer folders (a model's diffusers
    folder, or the config folder a single-file checkpoint loads with); the pipeline's are then remembered."""
    digests = tokenizer_digests(root)
    pipe = load(**known_tokenizers(digests))
    remember_tokenizers(digests, pipe)
    return pipe
