"""Where the style-transfer weights live, what to tell a person who lacks them, and a checked safetensors loader.

Only safetensors files are read here; pickle checkpoints go through ``studio convert-weights`` first.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import ModelError, and_list
from studio.core.hashing import files_key

# The names and the folder are plain data the UI and CLI need too, so they live in core.
from studio.core.style_weights import (
    ADAIN_DECODER_FILE,
    ADAIN_VGG_FILE,
    VGG19_FILE,
    style_weights_dir,
)
from studio.engine.device import dtype_name

__all__ = ["ADAIN_DECODER_FILE", "ADAIN_VGG_FILE", "VGG19_FILE", "file_key", "load_checked",
           "missing_weights_message", "require_weights", "style_weights_dir"]


@dataclass(frozen=True)
class _Source:
    what: str  # what the file holds, for "X needs <what>"
    origin: str  # whose checkpoint to convert
    original: str  # the file name people download


_SOURCES: dict[str, _Source] = {
    VGG19_FILE: _Source("VGG-19 ImageNet weights", "torchvision's", "vgg19-dcbb9e9d.pth"),
    ADAIN_VGG_FILE: _Source("the AdaIN encoder weights", "the pytorch-AdaIN release's", "vgg_normalised.pth"),
    ADAIN_DECODER_FILE: _Source("the AdaIN decoder weights", "the pytorch-AdaIN release's", "decoder.pth"),
}


def missing_weights_message(directory: Path, names: Sequence[str], method_title: str) -> str:
    """One sentence: which files, which folder, and the exact command that makes each from its original."""
    sources = [_SOURCES.get(name, _Source(name, "the original", name)) for name in names]
    folder = f"{directory}{os.sep}"
    whats = [source.what for source in sources]
    if all(source.what.startswith("the AdaIN") for source in sources) and len(sources) > 1:
        whats = ["the AdaIN encoder and decoder weights"]  # reads better than two "the AdaIN … weights"
    originals = and_list([source.original for source in sources])
    origin = sources[0].origin if len({source.origin for source in sources}) == 1 else "the original"
    commands = and_list([f"studio convert-weights {source.original} {directory / name}"
                     for source, name in zip(sources, names, strict=True)])
    return (f"{method_title} needs {and_list(whats)}: put {and_list(list(names))} in {folder} "
            f"(convert {origin} {originals} with: {commands}).")


def require_weights(env: GeneratorEnvironment, names: Iterable[str], method_title: str) -> list[Path]:
    """The paths of the named files in the style folder; ModelError naming what to get if any is missing."""
    directory = style_weights_dir(env)
    names = list(names)
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise ModelError(missing_weights_message(directory, missing, method_title))
    return [directory / name for name in names]


def file_key(path: Path) -> tuple[str, int, int]:
    """Identifies one version of a file, so a cached model is reloaded when the file is replaced."""
    return files_key([path])[0]


def load_checked(path: Path, expected: Mapping[str, tuple[int, ...]], what: str,
                 prefixes: Sequence[str] = ("",)) -> dict[str, torch.Tensor]:
    """The ``expected`` tensors of a safetensors file, keys without prefix; ModelError naming the file otherwise.

    ``what`` names the kind of file with its article ("a VGG-19"), for "<path> is not a VGG-19 file: …".

    Shapes are checked from the header before any tensor is read, so a wrong file costs no memory;
    keys that are not expected (a whole VGG-19 with its classifier, say) are never read.
    """
    from safetensors import safe_open

    def wrong(reason: str) -> ModelError:
        return ModelError(f"{path} is not {what} file: {reason}.")

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            keys = set(handle.keys())
            prefix = next((p for p in prefixes if all(p + key in keys for key in expected)), None)
            if prefix is None:
                best = max(prefixes, key=lambda p: sum(p + key in keys for key in expected))
                absent = next(key for key in expected if best + key not in keys)
                raise wrong(f"it has no tensor named {best + absent!r}")
            for key, shape in expected.items():
                found = tuple(handle.get_slice(prefix + key).get_shape())
                if found != tuple(shape):
                    raise wrong(f"{prefix + key} has shape {list(found)} where {list(shape)} was expected")
            tensors = {key: handle.get_tensor(prefix + key) for key in expected}
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors has its own error types for bad headers/truncation
        raise wrong(f"it could not be read as safetensors ({exc})") from None
    for key, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise wrong(f"{prefix + key} holds {dtype_name(tensor.dtype)} values, not floating point")
    return tensors
