"""Where Studio's upscaler models are and which one a name names: only file names are looked at, so the command
line checks a request's upscaler before it imports torch."""

from __future__ import annotations

from pathlib import Path

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import ModelError
from studio.core.model_library import KIND_FOLDERS
from studio.core.models import PICKLE_SUFFIXES, SAFE_SUFFIX, find_weights
from studio.core.weight_files import pickle_refusal

KNOWN_GOOD = ("Real-ESRGAN x4plus, 4x-UltraSharp, 4x_foolhardy_Remacri, realesr-general-x4v3 or another "
              "ESRGAN-family model")
FOLDER = KIND_FOLDERS["upscaler"]


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
