"""The one place Studio reads a pickle checkpoint: an explicit, person-requested conversion to safetensors.

``torch.load`` runs with ``weights_only=True``, whose restricted unpickler builds tensors and plain
containers only and refuses anything that would import or call code.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from studio.core.errors import StudioError, os_reason

# Where training scripts nest the weights: Lightning/most ("state_dict"), timm/others ("model"),
# BasicSR/Real-ESRGAN ("params_ema" preferred over "params", as their own loaders do).
NESTED_KEYS = ("state_dict", "model", "params_ema", "params")
# How torch's weights-only unpickler words a refusal to import or call something (an unknown opcode
# in random bytes reads "Unsupported operand" instead, which is simply not a checkpoint).
REFUSED_SIGNS = ("GLOBAL", "unrecognized function", "Can only create new object", "Can only build")


def _state_dict(loaded: Any) -> Mapping[str, Any] | None:
    if not isinstance(loaded, Mapping):
        return None
    for key in NESTED_KEYS:
        inner = loaded.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            return inner
    return loaded


def _tensors(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Only the tensors, each contiguous and with storage of its own (safetensors refuses shared memory)."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue  # step counters, hyper-parameters, optimiser settings: not weights
        tensor = value.detach().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen and tensor.numel():
            tensor = tensor.clone()  # tied weights: give the second name its own copy
        seen.add(storage)
        tensors[str(name)] = tensor
    return tensors


def convert_to_safetensors(src: Path, dest: Path) -> dict[str, int]:
    """Write the tensors of the PyTorch checkpoint ``src`` to the safetensors file ``dest``.

    Returns {"tensors": how many, "bytes": their total size}. ``dest`` appears complete or not at all.
    """
    from safetensors.torch import save_file

    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise StudioError(f"There is no checkpoint file at {src}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "pickle protocol 4": noise next to the answer we give
            loaded = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError/KeyError/EOFError/… by what it met
        if is_safetensors(src):
            raise StudioError(f"{src} is not a PyTorch checkpoint, so it could not be converted. "
                              "It is already a safetensors file, which Studio reads as it is.") from None
        # pickle.UnpicklingError, named rather than imported: Studio imports no pickle module.
        if type(exc).__name__ == "UnpicklingError" and any(sign in str(exc) for sign in REFUSED_SIGNS):
            raise StudioError(f"{src} contains code or objects that a weights file should not have, "
                              "so it was not loaded.") from None
        raise StudioError(f"{src} is not a PyTorch checkpoint, so it could not be converted.") from None

    state = _state_dict(loaded)
    tensors = _tensors(state) if state is not None else {}
    if not tensors:
        raise StudioError(f"{src} holds no tensors, so there is nothing to convert.")

    temp: str | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        os.close(handle)
        save_file(tensors, temp, metadata={"format": "pt", "converted_from": src.name})
        os.replace(temp, dest)  # atomic within one folder: a reader never sees half a file
    except BaseException as exc:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StudioError(f"Could not write {dest}: {os_reason(exc)}.") from None
        raise
    return {"tensors": len(tensors), "bytes": sum(t.numel() * t.element_size() for t in tensors.values())}


def is_safetensors(path: Path) -> bool:
    """By content, not by name: a pickle renamed .safetensors is not one."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt"):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not safetensors"
        return False
