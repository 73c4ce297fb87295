"""The textual inversions a job's prompts can name: exactly the ones the model library lists as embeddings, in the
models folder and in linked folders wherever their tool keeps them (A1111's ``embeddings/``, ComfyUI's
``models/embeddings``, InvokeAI's ``models/<base>/embedding``): one list, so what the library shows is what a
prompt can use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.model_library import LibraryItem, scan_library


@dataclass
class LibraryEmbeddings:
    """By name in lower case (what a prompt names them by; CLIP lower-cases the prompt)."""

    files: dict[str, Path] = field(default_factory=dict)  # the embeddings the library lists


def library_embeddings(items: Iterable[LibraryItem]) -> LibraryEmbeddings:
    """The embeddings among scanned library items; on a name clash the models folder's own come first."""
    found = LibraryEmbeddings()
    for item in sorted(items, key=lambda i: i.linked):
        name = item.name.lower()
        if item.kind == "embedding":
            found.files.setdefault(name, item.path)
    return found


def embeddings_for(models_dir: Path, linked: Sequence[Path] = (), prompts: Sequence[str] | None = None,
                   ) -> LibraryEmbeddings:
    """The library's embeddings; given the ``prompts``, only files whose names are in them are read (a job reads a
    few headers, not the whole library's)."""
    if prompts is None:
        return library_embeddings(scan_library(models_dir, linked))
    text = "\n".join(prompts).lower()
    return library_embeddings(scan_library(models_dir, linked, only=lambda path: path.stem.lower() in text))

