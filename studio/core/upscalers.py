"""Where Studio's upscaler models are and which one a name names, and whether the spandrel library that loads them is
installed: only file names are looked at, so the command line checks a request's upscaler before it imports torch."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import ModelError
from studio.core.model_library import KIND_FOLDERS
from studio.core.models import PICKLE_SUFFIXES, SAFE_SUFFIX, find_weights
from studio.core.weight_files import pickle_refusal

KNOWN_GOOD = ("Real-ESRGAN x4plus, 4x-UltraSharp, 4x_foolhardy_Remacri, realesr-general-x4v3 or another "
              "ESRGAN-family model")
FOLDER = KIND_FOLDERS["upscaler"]
INSTALL = 'pip install "studio[upscale]"'


def upscalers_dir(env: GeneratorEnvironment) -> Path:
    """``<models folder>/upscalers``."""
    return env.models_root / FOLDER


def find_upscaler(env: GeneratorEnvironment, name: str = "") -> Path:
    """The upscaler file named ``name`` (a name in the upscalers folder, or a path); empty: the first one there."""
    folder = upscalers_dir(env)
    present = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if name.strip():
        path = find_weights(folder, name.strip())
        if path is None:
            there = ", ".join(p.name for p in present) or "nothing yet"
            raise ModelError(f"No upscaler called {name!r} is in {folder}/ (it holds: {there}).")
        return path
    found = [p for p in present if p.suffix.lower() == SAFE_SUFFIX]
    if found:
        return found[0]
    pickles = [p for p in present if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:  # the person has one, but as a pickle: say how to convert it
        raise ModelError(pickle_refusal(pickles[0]))
    raise ModelError(f"Upscaling needs an upscaler model: put a {KNOWN_GOOD}, as a .safetensors file, in "
                     f"{folder}/ (convert a .pth download with: studio convert-weights IN.pth "
                     f"{folder / 'NAME.safetensors'}).")


def spandrel_refusal(torch_version: str, reason: str) -> str:
    """What is said where spandrel cannot be imported: ``reason``, the import's own first line."""
    return (f"Upscaling needs the spandrel library and a torchvision build matching the installed torch "
            f"{torch_version}: install them with {INSTALL} (or pip install spandrel) and restart Studio (importing "
            f"spandrel failed: {reason}).")


def check_spandrel_installed() -> None:
    """ModelError, as the engine says it on import, where spandrel is not installed at all: found without importing
    it or torch. (One installed but broken, a torchvision built for another torch, is found only on import.)"""
    if importlib.util.find_spec("spandrel") is not None:
        return
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "(none found)"
    raise ModelError(spandrel_refusal(torch_version, "No module named 'spandrel'"))
