"""LoRAs for a job, merged into the model's weights through diffusers' PEFT-backed LoRA loading.

The chosen LoRAs are loaded as PEFT layers, merged into the weights they adapt (``fuse_lora``, at each
LoRA's weight) and the PEFT layers taken off again (``unload_lora_weights``). The UNet then runs as a plain
UNet: no extra LoRA matrix products in every step, and the fast path's captured step still applies, because
merging changes the weights' values where they are, never where they live (a CUDA graph reads them by address).

The original values of every tensor a merge changes are kept on the CPU, as ComfyUI and Forge keep theirs.
The merged LoRAs stay for the next job that asks for the same files at the same weights, which then loads
nothing; any other job first gets the base weights back, copied in place, bit for bit.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

from studio.core.attention_width import CONTEXT_FAMILY
from studio.core.errors import InvalidRequest, ModelError, first_line
from studio.core.lora_kinds import lycoris_problem
from studio.core.model_kind import FAMILY_LABELS, with_article
from studio.core.model_kinds import detect_kind
from studio.core.model_library import KIND_FOLDERS
from studio.core.models import SAFE_SUFFIX, find_weights
from studio.core.prompt_loras import the_one_named
from studio.core.requests import LoraChoice
from studio.core.weight_files import SafetensorsInfo, check_weights_file
from studio.engine.addon_names import in_linked_folders, recorded_name
from studio.engine.library_output import library_output_to_studio_log

if TYPE_CHECKING:
    import torch  # the engine loads it; `studio generate` checks LoRA names before it does

LORA_FOLDER = KIND_FOLDERS["lora"]
# attn2.to_k's down projection, in diffusers/PEFT ("attn2.to_k.lora_A") and kohya ("attn2_to_k.lora_down") keys.
_CROSS_ATTENTION_KEY = re.compile(r"attn2[._]to_k[._]lora(?:_A|_down|\.down)\.weight$")


class LoraFile(NamedTuple):
    name: str  # the name it is recorded under
    path: Path
    weight: float


def find_lora(models_root: Path, name: str, tag: str = "", linked: Sequence[Path] = ()) -> Path:
    """``<models>/loras/<name>.safetensors``, else a .safetensors file at ``name``; ModelError naming both, or the
    one path a path names (and ``tag``, the prompt's ``<lora:…>`` tag that named it, if one did). ``linked``: the
    linked files and folders the caller looked in too (through the model library), named in that sentence."""
    folder = models_root / LORA_FOLDER
    path = find_weights(folder, name) or _named_but_for_case(folder, name)
    if path is None:
        stem = name.removesuffix(SAFE_SUFFIX)
        named = f" (the prompt's {tag})" if tag else ""
        given = Path(name).expanduser()
        if given.is_absolute():  # a path: the folder lookups are that same path, so it is named once
            if given.is_dir():
                raise ModelError(f"The LoRA {given}{named} is a folder; choose a LoRA's .safetensors file.")
            raise ModelError(f"The LoRA file {given}{named} does not exist (it was removed or moved).")
        raise ModelError(f"No LoRA named {name!r}{named} was found: Studio looked for "
                         f"{folder / (stem + SAFE_SUFFIX)} and for a file at {Path(name).expanduser()}"
                         f"{in_linked_folders('a LoRA of that name or alias', linked)}.")
    if path.suffix.lower() != SAFE_SUFFIX:  # diffusers picks its reader by the file's name
        check_weights_file(path)  # a picture or a pickle is refused as what it is, before any renaming advice
        raise ModelError(f"The LoRA file {path.name} must be named .safetensors for Studio to load "
                         f"it; rename it to {path.stem}{SAFE_SUFFIX}.")
    return path


def _named_but_for_case(folder: Path, name: str) -> Path | None:
    """The one LoRA in ``folder`` whose path inside it is ``name`` but for case (``<lora:INK>`` for ink.safetensors,
    as the window matches it); None when none or several are. Only the folders on ``name``'s path are listed (any
    case), not the whole LoRA folder."""
    if not name.strip() or Path(name).expanduser().is_absolute():
        return None
    *folders, _ = PurePosixPath(name.strip()).parts
    level = [folder]
    for part in folders:
        level = [entry for parent in level for entry in _entries(parent)
                 if entry.name.casefold() == part.casefold() and entry.is_dir()]
    files = [entry for parent in level for entry in _entries(parent)
             if entry.name.endswith(SAFE_SUFFIX) and entry.is_file()]
    return the_one_named(name, files, lambda path: (path.relative_to(folder).as_posix(),))


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:  # not there, not a folder, not readable: nothing to match
        return []


def resolve_loras(models_root: Path, choices: Sequence[LoraChoice]) -> list[LoraFile]:
    """The files of the chosen LoRAs, each named as it will be recorded (its name in the folder, or its file's stem)."""
    files: list[LoraFile] = []
    for choice in choices:
        path = find_lora(models_root, choice.name, choice.tag)
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
    have = getattr(getattr(getattr(pipe, "unet", None), "config", None), "cross_attention_dim", None)
    if problem := fit_problem(lora, info, have if isinstance(have, int) else 0, model_name):
        raise ModelError(problem)


def fit_problem(lora: LoraFile, info: SafetensorsInfo, width: int, model_name: str) -> str | None:
    """Why the LoRA cannot be applied to ``model_name``, whose cross-attention is ``width`` wide (0: not known), in a
    sentence: not a LoRA, a LyCORIS kind Studio does not apply, or made for another family; None when it can. No
    torch: ``studio generate`` asks it from the files' headers before the engine starts."""
    kind = detect_kind(info, lora.path.name)
    if kind.kind == "unknown":
        return f"{lora.path.name} is not a LoRA: Studio found no LoRA layers in it."
    if kind.kind != "lora":
        what = kind.label + (" checkpoint" if kind.kind == "checkpoint" else " file")
        return f"{lora.path.name} is not a LoRA but {with_article(what)}; pick it where that kind is used."
    if problem := lycoris_problem(kind, lora.path.name):
        return problem
    if not width:
        return None
    model_family = CONTEXT_FAMILY.get(width, "")
    wanted = context_width(info)
    if kind.family and kind.family != model_family:
        made_for = _kind(kind.family, wanted)
    elif not kind.family and wanted is not None and wanted != width:
        made_for = _kind("", wanted)
    else:
        return None
    model_kind = _kind(model_family, width)
    return (f"The LoRA {lora.name} was made for {made_for} models and does not fit {model_name}, which is "
            f"{with_article(model_kind)} model; choose a LoRA made for {model_kind} models.")


def _load(pipe: Any, lora: LoraFile, adapter: str, model_name: str) -> None:  # noqa: ANN401
    from safetensors import SafetensorError

    try:
        with library_output_to_studio_log(f"loading the LoRA {lora.path} as {adapter}"):
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


@dataclass
class _Merged:
    """The LoRAs merged into one model's weights, and the original values of every tensor the merge changed."""

    key: tuple[Hashable, ...]
    originals: list[tuple[torch.Tensor, torch.Tensor]]  # (the model's tensor, its values before the merge)


# By UNet: the merge goes with the model (the text encoders' merged layers travel with their UNet's entry).
_merged: weakref.WeakKeyDictionary[Any, _Merged] = weakref.WeakKeyDictionary()


def lora_key(files: Sequence[LoraFile]) -> tuple[Hashable, ...]:
    """What a merge depends on: each file as it is on disk now, and its weight."""
    key: list[Hashable] = []
    for lora in files:
        stat = lora.path.stat()
        key.append((str(lora.path.resolve()), stat.st_mtime_ns, stat.st_size, lora.weight))
    return tuple(key)


def merged_key(pipe: Any) -> tuple[Hashable, ...]:  # noqa: ANN401
    """The key of the LoRAs merged into this pipeline's model now; () for the base model."""
    merged = _merged_into(pipe)
    return merged.key if merged is not None else ()


def _merged_into(pipe: Any) -> _Merged | None:  # noqa: ANN401
    unet = getattr(pipe, "unet", None)
    return _merged.get(unet) if unet is not None else None


def use_loras(pipe: Any, files: Sequence[LoraFile], model_name: str = "the model",  # noqa: ANN401
              loading: Callable[[], None] | None = None) -> bool:
    """Make the pipeline's weights the base model's plus exactly these LoRAs at their weights; True when they
    changed. ``loading()`` is called before LoRA files are read (a status line: that part takes a while).

    Every file goes through the safetensors content check first (a pickle renamed .safetensors is refused
    unread), and a LoRA made for another model family is refused with a sentence naming both, before any
    weight changes. A LoRA that fails to load leaves the base model, with no PEFT layers.
    """
    key = lora_key(files)
    merged = _merged_into(pipe)
    if (merged.key if merged is not None else ()) == key:
        return False
    if files:
        if getattr(pipe, "unet", None) is None:
            raise ModelError(f"{model_name} has no UNet, so it takes no LoRAs; remove the LoRAs from this job.")
        from diffusers.utils import USE_PEFT_BACKEND

        if not USE_PEFT_BACKEND:
            raise ModelError("LoRAs need the peft package, which is not installed; install it with: pip install peft.")
        checked = [(lora, check_weights_file(lora.path)) for lora in files]
        for lora, info in checked:
            _check_fits(lora, info, pipe, model_name)
    unet = pipe.unet
    if merged is not None:
        _put_back(_merged.pop(unet).originals)
    if not files:
        return True
    if loading is not None:
        loading()
    adapters = [f"studio_lora_{index}" for index in range(len(files))]
    originals: list[tuple[torch.Tensor, torch.Tensor]] = []
    try:
        for lora, adapter in zip(files, adapters, strict=True):
            _load(pipe, lora, adapter, model_name)
        pipe.set_adapters(adapters, adapter_weights=[lora.weight for lora in files])
        originals = _originals(pipe)
        pipe.fuse_lora(adapter_names=adapters)
        pipe.unload_lora_weights()
    except BaseException:
        try:
            pipe.unload_lora_weights()
        finally:
            _put_back(originals)  # a merge that stopped part way
        raise
    _merged[unet] = _Merged(key, originals)
    return True


def _originals(pipe: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:  # noqa: ANN401
    """A CPU copy of every tensor under a PEFT layer of the pipeline: what ``fuse_lora`` will change."""
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = (module for component in pipe.components.values() if isinstance(component, torch.nn.Module)
              for module in component.modules() if isinstance(module, BaseTunerLayer))
    saved: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for layer in layers:
        for tensor in layer.get_base_layer().parameters(recurse=False):
            saved.setdefault(id(tensor), (tensor, tensor.detach().to("cpu", copy=True)))
    return list(saved.values())


def _put_back(originals: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    import torch

    with torch.no_grad():
        for tensor, values in originals:
            tensor.data.copy_(values)  # in place: the weights stay where a captured graph reads them
