"""The one place Studio reads a pickle checkpoint: an explicit, person-requested conversion to safetensors.

``torch.load`` runs with ``weights_only=True``, whose restricted unpickler builds tensors and plain
containers only and refuses anything that would import or call code.
"""

from __future__ import annotations

import os
import secrets
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.core.errors import StudioError, os_reason
from studio.core.weight_files import special_file_problem

# Where training scripts nest the weights: Lightning/most ("state_dict"), timm/others ("model"),
# BasicSR/Real-ESRGAN ("params_ema" preferred over "params", as their own loaders do).
NESTED_KEYS = ("state_dict", "model", "params_ema", "params")
# How torch's weights-only unpickler words a refusal to import or call something (an unknown opcode
# in random bytes reads "Unsupported operand" instead, which is simply not a checkpoint).
REFUSED_SIGNS = ("GLOBAL", "unrecognized function", "Can only create new object", "Can only build")


@dataclass(frozen=True)
class Conversion:
    """What ``convert_to_safetensors`` wrote, and what it left out, so that a person hears of all of it."""

    tensors: int
    bytes: int
    taken_from: str | None = None  # the key the weights were nested under ("state_dict"), if any
    beside: tuple[str, ...] = ()  # the checkpoint's other keys, left out with it (optimizer state, epoch)
    not_tensors: tuple[str, ...] = ()  # dotted names of values in the weights that are not tensors ("step (int)")


def _holds_tensors(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, Mapping):
        return any(_holds_tensors(inner) for inner in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_tensors(inner) for inner in value)
    return False


def _weights(loaded: Mapping[Any, Any]) -> tuple[Mapping[Any, Any], str | None]:
    """The weights of a training checkpoint are nested under one key; anything else is the weights themselves."""
    for key in NESTED_KEYS:
        inner = loaded.get(key)
        if isinstance(inner, Mapping) and _holds_tensors(inner):
            return inner, key
    return loaded, None


def _children(value: Any) -> list[tuple[str, Any]] | None:
    if isinstance(value, Mapping):
        return [(str(key), inner) for key, inner in value.items()]
    if isinstance(value, (list, tuple)):
        return [(str(index), inner) for index, inner in enumerate(value)]
    return None


def _flatten(src: Path, state: Mapping[Any, Any]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Every tensor, however deep in dicts and lists, named by its path with dots ("encoder.0.weight", as kohya and
    A1111 name nested weights), each contiguous and with storage of its own (safetensors refuses shared memory);
    and the names of the values that are not tensors, with their type."""
    tensors: dict[str, torch.Tensor] = {}
    left_out: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[str, Any, frozenset[int]]] = [(name, value, frozenset({id(state)}))
                                                   for name, value in reversed(_children(state) or [])]
    while stack:
        name, value, above = stack.pop()
        if isinstance(value, torch.Tensor):
            if name in tensors:
                raise StudioError(f"{src} has two tensors that would both be named {name}, so it was not converted.")
            _refuse_unstorable(src, name, value)
            tensor = value.detach().contiguous()
            storage = tensor.untyped_storage().data_ptr()
            if storage in seen and tensor.numel():
                tensor = tensor.clone()  # tied weights: give the second name its own copy
            seen.add(storage)
            tensors[name] = tensor
        elif (children := _children(value)) is not None:
            if id(value) not in above:  # a list that holds itself: its tensors are named once already
                inside = above | {id(value)}
                stack.extend((f"{name}.{key}", inner, inside) for key, inner in reversed(children))
        else:  # step counters, hyper-parameters, notes: not weights
            left_out.append(f"{name} ({'None' if value is None else type(value).__name__})")
    return tensors, left_out


def _refuse_unstorable(src: Path, name: str, tensor: torch.Tensor) -> None:
    """A safetensors file holds dense tensors of plain dtypes only; weights_only loads sparse, quantized and meta
    tensors as well, which would fail deep inside torch or safetensors."""
    if tensor.is_meta:  # a shape without values (a model built on the "meta" device, then saved)
        raise StudioError(f"{src} holds a meta tensor {name!r}, which holds no data; it was not converted.")
    if tensor.layout != torch.strided:
        raise StudioError(f"{src} holds a sparse tensor {name!r}, which a safetensors file cannot store; "
                          "it was not converted.")
    if tensor.is_quantized:
        raise StudioError(f"{src} holds a quantized tensor {name!r}, which a safetensors file cannot store; "
                          "it was not converted.")


def _load(src: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "pickle protocol 4": noise next to the answer we give
            return torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError/KeyError/EOFError/… by what it met
        if is_safetensors(src):
            raise StudioError(f"{src} is not a PyTorch checkpoint, so it could not be converted. "
                              "It is already a safetensors file, which Studio reads as it is.") from None
        # pickle.UnpicklingError, named rather than imported: Studio imports no pickle module.
        if type(exc).__name__ == "UnpicklingError" and any(sign in str(exc) for sign in REFUSED_SIGNS):
            raise StudioError(f"{src} contains code or objects that a weights file should not have, "
                              "so it was not loaded.") from None
        raise StudioError(f"{src} is not a PyTorch checkpoint, so it could not be converted.") from None


def _new_file_beside(dest: Path) -> Path:
    """An empty hidden file next to ``dest``, made with the mode any new file gets (0644 under umask 022), not
    mkstemp's owner-only 0600: its mode is the one the converted weights get, as a copy would."""
    while True:
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue


def check_checkpoint(src: Path) -> None:
    """StudioError with one sentence where ``src`` is no file to read a checkpoint from: a folder, a named pipe (which
    would wait for a writer for ever), a device, or nothing at all."""
    if src.is_dir():
        raise StudioError(f"{src} is a folder, not a checkpoint file.")
    if problem := special_file_problem(src):  # the words every weights file is refused in
        raise StudioError(problem)
    if not src.is_file():
        raise StudioError(f"There is no checkpoint file at {src}.")


def convert_to_safetensors(src: Path, dest: Path) -> Conversion:
    """Write the tensors of the PyTorch checkpoint ``src`` to the safetensors file ``dest``, in a folder that
    exists. ``dest`` appears complete or not at all; one written over keeps its mode."""
    from safetensors.torch import save_file

    src, dest = Path(src), Path(dest)
    check_checkpoint(src)
    loaded = _load(src)
    if isinstance(loaded, torch.Tensor):
        raise StudioError(f"{src} holds a single tensor without a name; a safetensors file names each tensor, "
                          "so it was not converted.")
    taken_from, beside = None, []
    if isinstance(loaded, Mapping):
        state, taken_from = _weights(loaded)
        beside = [str(key) for key in loaded if taken_from is not None and key != taken_from]
    else:
        state = loaded if isinstance(loaded, (list, tuple)) else {}
    tensors, not_tensors = _flatten(src, state)
    if not tensors:
        raise StudioError(f"{src} holds no tensors, so there is nothing to convert.")

    temp: Path | None = None
    try:
        temp = _new_file_beside(dest)
        # --overwrite: the file keeps who may read it; a new one, what the umask gives (safetensors writes 0600)
        mode = stat.S_IMODE((dest if dest.is_file() else temp).stat().st_mode)
        save_file(tensors, str(temp), metadata={"format": "pt", "converted_from": src.name})
        os.chmod(temp, mode)
        os.replace(temp, dest)  # atomic within one folder: a reader never sees half a file
    except BaseException as exc:
        if temp is not None:
            temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StudioError(f"Could not write {dest}: {os_reason(exc)}.") from None
        raise
    return Conversion(len(tensors), sum(t.numel() * t.element_size() for t in tensors.values()), taken_from,
                      tuple(beside), tuple(not_tensors))


def is_safetensors(path: Path) -> bool:
    """By content, not by name: a pickle renamed .safetensors is not one."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt"):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not safetensors"
        return False
