"""Whether the diffusers classes a model folder's model_index.json names exist in the diffusers installed, found
without importing it: the listing runs beside the window's first frame and in ``studio models``, and diffusers
imports torch (seconds). A folder naming a class diffusers lacks (a newer diffusers' scheduler, a folder mixing two
models) was listed as usable until loading it failed.

transformers' classes (text encoders, tokenizers) are left to loading, which says it in the same sentence: its
class table is built as it imports (1-4 s, before the first frame), and no file lists it."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from functools import cache
from pathlib import Path

from studio.core.models import MODEL_INDEX, SKIPPED_COMPONENTS

log = logging.getLogger(__name__)

_QUOTED_NAME = re.compile(r"""["']([A-Za-z_]\w*)["']""")


def missing_class_problem(folder: Path, index: dict | None = None) -> str:
    """The sentence for the first diffusers class the folder's model_index.json names that diffusers lacks, as
    loading the folder would find it; "" when every one is there, or where the index or diffusers cannot be read
    (what lists the folder, or loading it, says that). ``index``: the model_index.json, already parsed."""
    try:
        index = index if index is not None else json.loads((folder / MODEL_INDEX).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return ""
    if not isinstance(index, dict):
        return ""
    pipeline = index.get("_class_name")
    if isinstance(pipeline, str) and _lacks(pipeline):
        return missing_class_sentence(folder, pipeline, "")
    for component, entry in index.items():
        if component.startswith("_") or component in SKIPPED_COMPONENTS or not isinstance(entry, list) \
                or len(entry) != 2 or entry[0] != "diffusers" or not isinstance(entry[1], str):
            continue
        if _lacks(entry[1]):
            return missing_class_sentence(folder, entry[1], component)
    return ""


def missing_class_sentence(folder: Path, name: str, component: str, library: str = "diffusers") -> str:
    """The sentence for a folder whose model_index.json names the class ``name`` (for its ``component``; "": the
    pipeline's own) that ``library`` lacks: listing the folder and loading it (engine.loader) say it alike."""
    part = f" for its {component}" if component else ""
    return (f"The model {folder.name} names the class {name}{part} in {MODEL_INDEX}, which {library} does not have; "
            "the folder may mix files of two models.")


def _lacks(name: str) -> bool:
    names = diffusers_class_names()
    return names is not None and name not in names


@cache
def diffusers_class_names() -> frozenset[str] | None:
    """The names ``getattr(diffusers, name)`` finds: its __init__.py lists every class it exports, by name, in its
    lazy import table. None where diffusers is not installed or cannot be read (loading says what is wrong)."""
    try:
        spec = importlib.util.find_spec("diffusers")  # a top-level name: found, not imported
        if spec is None or not spec.origin:
            return None
        return frozenset(_QUOTED_NAME.findall(Path(spec.origin).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError):
        log.warning("Could not read the classes diffusers exports", exc_info=True)
        return None
