"""The textual inversions a job's prompts can name: exactly the ones the model library lists as embeddings, in the
models folder and in linked folders wherever their tool keeps them (A1111's ``embeddings/``, ComfyUI's
``models/embeddings``, InvokeAI's ``models/<base>/embedding``): one list, so what the library shows is what a
prompt can use. A pickle file in such a folder is named back, with how to convert it, when a prompt names it: it
was read as words unsaid."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.model_library import LibraryItem, scan_library
from studio.core.models import PICKLE_SUFFIXES
from studio.core.weight_files import import_convert_command

EMBEDDING_FOLDERS = ("embeddings", "embedding")  # A1111's and ComfyUI's; InvokeAI's models/<base>/embedding


@dataclass
class LibraryEmbeddings:
    """By name in lower case (what a prompt names them by; CLIP lower-cases the prompt)."""

    files: dict[str, Path] = field(default_factory=dict)  # the embeddings the library lists
    refused: dict[str, str] = field(default_factory=dict)  # pickle embeddings: why each is read as words


def library_embeddings(items: Iterable[LibraryItem]) -> LibraryEmbeddings:
    """The embeddings among scanned library items; on a name clash the models folder's own come first."""
    found = LibraryEmbeddings()
    for item in sorted(items, key=lambda i: i.linked):
        name = item.name.lower()
        if item.kind == "embedding":
            found.files.setdefault(name, item.path)
        elif item.problem and _is_pickle_embedding(item.found_at or item.path):  # as found: a linked folder's name
            found.refused.setdefault(name, pickle_embedding_note(item.path))
    found.refused = {name: note for name, note in found.refused.items() if name not in found.files}  # converted
    return found


def embeddings_for(models_dir: Path, linked: Sequence[Path] = (), prompts: Sequence[str] | None = None,
                   ) -> LibraryEmbeddings:
    """The library's embeddings; given the ``prompts``, only files whose names are in them are read (a job reads a
    few headers, not the whole library's)."""
    if prompts is None:
        return library_embeddings(scan_library(models_dir, linked))
    text = "\n".join(prompts).lower()
    return library_embeddings(scan_library(models_dir, linked, only=lambda path: path.stem.lower() in text))


def pickle_embedding_note(path: Path) -> str:
    return (f"{path.stem} is a {path.suffix.lower()} embedding, which Studio does not load (pickle files can run "
            f"code), so it was read as words; convert it with `{import_convert_command(path)}`.")


def _is_pickle_embedding(path: Path) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES and any(p.lower() in EMBEDDING_FOLDERS for p in path.parent.parts)
