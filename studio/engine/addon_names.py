"""How an add-on's weights (a LoRA, a ControlNet, a VAE) are named: in the recipe that records them, and in the
"No … named" sentence when none is found. Shared by ``loras``, ``control_nets`` and ``vae_override``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from studio.core.models import SAFE_SUFFIX
from studio.core.paths import path_inside


def in_linked_folders(what: str, linked: Sequence[Path]) -> str:
    """", and for WHAT in the linked folder(s) A, B": the end of a "No … named" sentence where the caller looked in
    the library's linked folders too (through the model library); "" without any."""
    if not linked:
        return ""
    return f", and for {what} in the linked {'folder' if len(linked) == 1 else 'folders'} {', '.join(map(str, linked))}"


def recorded_name(folder: Path, path: Path) -> str:
    """A weights file's or folder's name as recipes record it: its path inside folder (so the recipe finds it
    again in another machine's models folder), else its own name; without .safetensors either way."""
    return (path_inside(folder, path) or path.name).removesuffix(SAFE_SUFFIX)
