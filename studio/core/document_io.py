"""A document on disk: picture, mask and recipe in one folder (autosave, crash recovery).

Each file is written atomically and ``document.json`` last, so a folder whose json is readable
holds a complete document even if the process died while saving the next one.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.errors import ImageError
from studio.core.images import open_image, write_atomically
from studio.core.mask import mask_from_image
from studio.core.metadata import Recipe

log = logging.getLogger(__name__)

DOCUMENT_JSON = "document.json"
FORMAT = 1


@dataclass(frozen=True)
class DocumentSnapshot:
    image: Image.Image  # never modified in place by the Document, so no copy is needed
    mask: np.ndarray  # a copy: the Document edits its mask in place
    recipe: Recipe | None
    revision: int


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)  # speed over size: this runs every 30 s
    return buffer.getvalue()


def save_document(snapshot: DocumentSnapshot, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "image.png", _png_bytes(snapshot.image))
    write_atomically(folder / "mask.png", _png_bytes(Image.fromarray(snapshot.mask, "L")))
    meta = {
        "format": FORMAT,
        "saved_at": time.time(),
        "width": snapshot.image.width,
        "height": snapshot.image.height,
        "revision": snapshot.revision,
        "recipe": None if snapshot.recipe is None else json.loads(snapshot.recipe.to_json()),
    }
    write_atomically(folder / DOCUMENT_JSON, json.dumps(meta).encode("utf-8"))


@dataclass(frozen=True)
class SavedDocument:
    folder: Path
    image: Image.Image
    mask: np.ndarray
    recipe: Recipe | None
    saved_at: float


def load_document(folder: Path) -> SavedDocument:
    """Read a saved document; ImageError with one sentence if it is incomplete or damaged."""
    try:
        meta = json.loads((folder / DOCUMENT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImageError(f"The saved document in {folder} could not be read ({exc}).") from None
    if not isinstance(meta, dict):
        raise ImageError(f"The saved document in {folder} is damaged (its {DOCUMENT_JSON} is not a JSON object).")
    # Studio's own files: opened even past MAX_PIXELS (a canvas that large was made, and must not be lost).
    image = open_image(folder / "image.png", trusted=True)
    mask = mask_from_image(open_image(folder / "mask.png", trusted=True))
    if image.size != (meta.get("width"), meta.get("height")) or mask.shape != (image.height, image.width):
        raise ImageError(f"The saved document in {folder} is incomplete (its files do not match).")
    # The picture and mask are what is recovered: a damaged recipe or time loses only itself.
    recipe = None
    if meta.get("recipe"):
        try:
            recipe = Recipe.from_json(json.dumps(meta["recipe"]))
        except (ValueError, TypeError, AttributeError, RecursionError):
            log.warning("The recipe of the saved document in %s is damaged; recovering the picture without it", folder)
    saved_at = meta.get("saved_at", 0)
    if isinstance(saved_at, bool) or not isinstance(saved_at, int | float) or not math.isfinite(saved_at):
        saved_at = 0.0
    return SavedDocument(folder, image, mask, recipe, float(saved_at))
