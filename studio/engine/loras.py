"""LoRAs for one job, through diffusers' PEFT-backed LoRA loading.

Each job loads its LoRAs, runs, and takes them all off again (``unload_lora_weights`` removes the PEFT
layers), so the next job without LoRAs runs exactly the base model. They are loaded per job, not cached:
simple and always correct, at the cost of reading and wrapping the files each time. Measured on CPU with a
24 MiB rank-32 LoRA on a full-size SD 1.5 UNet: about 0.2-0.5 s to attach, 40 ms to take off.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from studio.core.errors import InvalidRequest, ModelError, first_line
from studio.core.model_kinds import (
    CONTEXT_FAMILY,
    FAMILY_LABELS,
    detect_kind,
    with_article,
)
from studio.core.model_library import KIND_FOLDERS
from studio.core.models import SAFE_SUFFIX, find_weights
from studio.core.requests import LoraChoice
from studio.core.weight_files import SafetensorsInfo, check_weights_file

LORA_FOLDER = KIND_FOLDERS["lora"]
# attn2.to_k's down projection, in diffusers/PEFT ("attn2.to_k.lora_A") and kohya ("attn2_to_k.lora_down") keys.
_CROSS_ATTENTION_KEY = re.compile(r"attn2[._]to_k[._]lora(?:_A|_down|\.down)\.weight$")


class LoraFile(NamedTuple):
    name: str  # the name it is recorded under
    path: Path
    weight: float


def find_lora(models_root: Path, name: str) -> Path:
    """``<models>/loras/<name>.safetensors``, else a .safetensors file at ``name``; ModelError naming both."""
    folder = models_root / LORA_FOLDER
    path = find_weights(folder, name)
    if path is None:
        stem = name.removesuffix(SAFE_SUFFIX)
        raise ModelError(f"No LoRA named {name!r} was found: Studio looked for {folder / (stem + SAFE_SUFFIX)} "
                         f"and for a file at {Path(name).expanduser()}.")
    if path.suffix.lower() != SAFE_SUFFIX:  # diffusers picks its reader by the file's name
        raise ModelError(f"The LoRA file {path.name} must be named .safetensors for Studio to load "
                         f"it; rename it to {path.stem}{SAFE_SUFFIX}.")
    return path


def recorded_name(folder: Path, path: Path) -> str:
    """A weights file's or folder's name as recipes record it: its path inside folder (so the recipe finds it
    again in another machine's models folder), else its own name; without .safetensors either way."""
    for inside, root in ((path.absolute(), folder.absolute()), (path.resolve(), folder.resolve())):
        if inside.is_relative_to(root):
            return inside.relative_to(root).as_posix().removesuffix(SAFE_SUFFIX)
    return path.name.removesuffix(SAFE_SUFFIX)


def resolve_loras(models_root: Path, choices: Sequence[LoraChoice]) -> list[LoraFile]:
    """The files of the chosen LoRAs, each named as it will be recorded (its name in the folder, or its file's stem)."""
    files: list[LoraFile] = []
    for choice in choices:
        path = find_lora(models_root, choice.name)
        name = recorded_name(models_root / LORA_FOLDER, path)
        if any(f.path.resolve() == path.resolve() for f in files):
            raise InvalidRequest(f"The LoRA file {path.name} is chosen twice; keep it once, with one weight.")
        files.append(LoraFile(name, path, float(choice.weight)))
    return files


def context_width(info: SafetensorsInfo) -> int | None:
    """The text-embedding width a LoRA's cross-attention layers take (768 for SD 1.x ...), if it has such layers."""
    for key, tensor in info.tensors.items():
        if _CROSS_ATTENTION_KEY.search(key) and len(tensor.shape) >= 2:
            return tensor.shape[1]
    return None


def _kind(family: str, width: int | None) -> str:
    return FAMILY_LABELS.get(family) or f"{width}-wide text-embedding"


def _check_fits(lora: LoraFile, info: SafetensorsInfo, pipe: Any, model_name: str) -> None:  # noqa: ANN401
    """A LoRA for another family is refused before loading, with both named; diffusers' shape errors say less."""
    kind = detect_kind(info, lora.path.name)
    if kind.kind == "unknown":
        raise ModelError(f"{lora.path.name} is not a LoRA: Studio found no LoRA layers in it.")
    if kind.kind != "lora":
        what = kind.label + (" checkpoint" if kind.kind == "checkpoint" else " file")
        raise ModelError(f"{lora.path.name} is not a LoRA but {with_article(what)}; pick it where that kind is used.")
    have = getattr(getattr(getattr(pipe, "unet", None), "config", None), "cross_attention_dim", None)
    if not isinstance(have, int):
        return
    model_family = CONTEXT_FAMILY.get(have, "")
    wanted = context_width(info)
    if kind.family and kind.family != model_family:
        made_for = _kind(kind.family, wanted)
    elif not kind.family and wanted is not None and wanted != have:
        made_for = _kind("", wanted)
    else:
        return
    model_kind = _kind(model_family, have)
    raise ModelError(f"The LoRA {lora.name} was made for {made_for} models and does not fit {model_name}, "
                     f"which is {with_article(model_kind)} model; choose a LoRA made for {model_kind} models.")


def _load(pipe: Any, lora: LoraFile, adapter: str, model_name: str) -> None:  # noqa: ANN401
    from safetensors import SafetensorError

    try:
        with warnings.catch_warnings():
            # peft warns on every adapter after the first; several adapters are the point here.
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            # A folder and an explicit .safetensors name: diffusers reads that local file, never a pickle or the hub.
            pipe.load_lora_weights(str(lora.path.parent), weight_name=lora.path.name, adapter_name=adapter,
                                   use_safetensors=True, local_files_only=True)
    except (RuntimeError, ValueError, KeyError, IndexError, TypeError, OSError, SafetensorError) as exc:
        text = str(exc).strip()
        if "size mismatch" in text or "not found in the base model" in text:
            raise ModelError(f"The LoRA {lora.name} does not fit {model_name}: its layers were made for a different "
                             "kind of model; choose a LoRA made for this one.") from None
        raise ModelError(f"The LoRA {lora.name} could not be loaded onto {model_name}: {first_line(exc)}.") from None
    attached = pipe.get_list_adapters()
    if not any(adapter in names for names in attached.values()):
        raise ModelError(f"The LoRA {lora.name} has no layers that match {model_name}; it was made for a "
                         "different kind of model.")


@contextmanager
def loras_attached(pipe: Any, files: Sequence[LoraFile], model_name: str = "the model") -> Iterator[None]:  # noqa: ANN401
    """The pipeline with the LoRAs on, at their weights, for the block; all of them taken off afterwards.

    Every file goes through the safetensors content check first (a pickle renamed .safetensors is refused
    unread), and a LoRA made for another model family is refused with a sentence naming both.
    """
    if not files:
        yield
        return
    from diffusers.utils import USE_PEFT_BACKEND

    if not USE_PEFT_BACKEND:
        raise ModelError("LoRAs need the peft package, which is not installed; install it with: pip install peft.")
    checked = [(lora, check_weights_file(lora.path)) for lora in files]
    for lora, info in checked:
        _check_fits(lora, info, pipe, model_name)
    adapters = [f"studio_lora_{index}" for index in range(len(files))]
    try:
        for (lora, _info), adapter in zip(checked, adapters, strict=True):
            _load(pipe, lora, adapter, model_name)
        pipe.set_adapters(adapters, adapter_weights=[lora.weight for lora in files])
        yield
    finally:
        pipe.unload_lora_weights()
