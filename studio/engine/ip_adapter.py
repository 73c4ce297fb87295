"""A reference picture steering generation through IP-Adapter, with diffusers' own IP-Adapter loading.

diffusers loads the adapter (``load_ip_adapter``): its CLIP image encoder, an image projection on the UNet
and attention processors with their own key/value projections. A UNet with the adapter attached refuses jobs
without a reference, and the txt2img/img2img pipelines share it, so it is attached for one job and taken off
afterwards (``unload_ip_adapter``).

What was loaded is kept, not attached, for the next job with a reference picture: the encoder (about 1.2 GB
in float16 for SD 1.x, 3.6 GB for SDXL; most of what loading costs), the projection and the processors. A
next reference job with the same files attaches those same objects again, so nothing is read, and the fast
path's graph captured for the last reference job still reads the adapter's weights where they are. Any
other job lets them go before its memory plan counts the free memory (``let_reference_go``), so memory is
held only between reference jobs.

The reference picture is encoded once (CLIP, the 632 M-parameter ViT-H for SD 1.x) and its embeddings kept
with the adapter, so the pictures of a batch and the next jobs with the same picture encode nothing.

The strength lives in the adapter's value projections (``to_v_ip``), not in diffusers' per-processor scale:
attention is linear in its values, so scaling them scales the adapter's contribution exactly as the scale
does, and a captured graph reads a weight from memory where it would freeze a Python number. The weights at
strength 1 are kept on the CPU, so each strength is set from them, never by rescaling a rescaled weight.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Hashable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from studio.core.errors import ModelError, first_line
from studio.core.hashing import files_key
from studio.core.model_library import KIND_FOLDERS
from studio.core.weight_files import numbers_in

FOLDER = KIND_FOLDERS["ip-adapter"]
# What h94/IP-Adapter publishes, laid out as it is there (models/ and sdxl_models/ flattened into one folder).
FILES = {"sd": ("ip-adapter_sd15.safetensors", "image_encoder"),
         "sdxl": ("ip-adapter_sdxl.safetensors", "sdxl_image_encoder")}


@dataclass(frozen=True)
class AdapterFiles:
    folder: Path
    weight_name: str
    encoder_folder: str


def find_ip_adapter(models_dir: Path, family: str) -> AdapterFiles:
    """The IP-Adapter for a model family in ``<models>/ip-adapter``; ModelError saying what to get otherwise."""
    weight_name, encoder = FILES.get(family, FILES["sd"])
    folder = models_dir / FOLDER
    if not (folder / weight_name).is_file() or not (folder / encoder / "config.json").is_file():
        label = "SDXL" if family == "sdxl" else "SD 1.x"
        raise ModelError(
            f"A reference picture needs IP-Adapter weights for {label} models: put {weight_name} and the "
            f"{encoder}/ folder (config.json and model.safetensors of its CLIP image encoder, from h94/IP-Adapter) "
            f"in {folder}/.")
    return AdapterFiles(folder, weight_name, encoder)


@dataclass
class _Adapter:
    """An adapter as loaded for a UNet: attached during a reference job, kept aside between them."""

    encoder_key: tuple[Hashable, ...]  # the encoder folder's files as they were when it was loaded
    adapter_key: tuple[Hashable, ...]  # the adapter file, likewise
    encoder: Any
    feature_extractor: Any
    projection: Any  # unet.encoder_hid_proj
    processors: dict[str, Any]  # unet.attn_processors with the adapter on
    values: list[Any]  # the processors' to_v_ip weights, which carry the strength
    unit_values: list[Any]  # their values at strength 1, on the CPU
    strength: float = 1.0
    embeddings: tuple[Hashable, list[Any]] | None = None  # (the picture's digest, its embeddings, with CFG's)


# By UNet, as the pipelines sharing a UNet share a model; an entry goes with its model.
_kept: weakref.WeakKeyDictionary[Any, _Adapter] = weakref.WeakKeyDictionary()


def _encoder_files(files: AdapterFiles) -> list[Path]:
    return [f for f in sorted((files.folder / files.encoder_folder).iterdir()) if f.is_file()]


def _keys(files: AdapterFiles) -> tuple[tuple[Hashable, ...], tuple[Hashable, ...]]:
    """The encoder folder's files and the adapter file, as they are now: a kept adapter matches while these do."""
    return files_key(_encoder_files(files)), files_key([files.folder / files.weight_name])


def reference_bytes(pipe: Any, files: AdapterFiles, itemsize: int) -> int:  # noqa: ANN401
    """What attaching the adapter will add to the device's memory, in ``itemsize``-byte numbers: its image
    encoder and its own layers, less what is kept there from the job before (counted as used already)."""
    kept = _kept.get(pipe.unet)
    keys = _keys(files)
    numbers = 0
    if kept is None or kept.encoder_key != keys[0]:
        numbers += numbers_in(_encoder_files(files))
    if kept is None or (kept.encoder_key, kept.adapter_key) != keys:
        numbers += numbers_in([files.folder / files.weight_name])
    return numbers * itemsize


def let_reference_go(pipe: Any) -> None:  # noqa: ANN401
    """For a job without a reference picture: the kept adapter and image encoder give their memory back."""
    unet = getattr(pipe, "unet", None)
    if unet is not None:
        _kept.pop(unet, None)


def kept_reference(pipe: Any) -> tuple[Any, ...]:  # noqa: ANN401
    """The parts of the adapter kept for the pipeline's model that hold weights (its image encoder, projection
    and attention layers), or () when none is kept."""
    unet = getattr(pipe, "unet", None)
    kept = _kept.get(unet) if unet is not None else None
    if kept is None:
        return ()
    parts = (kept.encoder, kept.projection, *kept.processors.values())
    return tuple(part for part in parts if hasattr(part, "parameters"))


@contextmanager
def reference_attached(pipe: Any, files: AdapterFiles, reference: Image.Image,  # noqa: ANN401
                       scale: float, guidance: float) -> Iterator[dict]:
    """The pipeline with the adapter on, at strength ``scale``, for the block; yields the extra call arguments
    (the picture's embeddings, for a job at CFG scale ``guidance``)."""
    keys = _keys(files)
    kept = _kept.pop(pipe.unet, None)
    if kept is not None and (kept.encoder_key, kept.adapter_key) == keys and pipe.unet.encoder_hid_proj is None:
        adapter = _attach(pipe, kept)
    else:
        adapter = _load(pipe, files, keys, kept)
    try:
        _set_strength(adapter, scale)
        # As diffusers' pipelines decide it; with CFG the embeddings are (no picture, the picture).
        cfg = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
        embeddings = _embeddings(pipe, adapter, reference.convert("RGB"))
        yield {"ip_adapter_image_embeds": embeddings if cfg else [e.chunk(2)[1] for e in embeddings]}
    finally:
        _take_off(pipe, adapter)


def _load(pipe: Any, files: AdapterFiles, keys: tuple[tuple[Hashable, ...], ...],  # noqa: ANN401
          kept: _Adapter | None) -> _Adapter:
    """Load with diffusers (handing it a kept encoder that still matches its files) and note what was loaded."""
    import torch

    if kept is not None and kept.encoder_key == keys[0] and getattr(pipe, "image_encoder", None) is None:
        pipe.register_modules(image_encoder=kept.encoder)  # diffusers' loader then leaves it as it is
    try:
        pipe.load_ip_adapter(str(files.folder), subfolder="", weight_name=files.weight_name,
                             image_encoder_folder=files.encoder_folder, local_files_only=True)
        pipe.set_ip_adapter_scale(1.0)  # the strength goes into the weights (see the module's note)
        processors = dict(pipe.unet.attn_processors)
        _own_weights(pipe.image_encoder, pipe.unet.encoder_hid_proj, *processors.values())
        values = [layer.weight for p in processors.values() for layer in getattr(p, "to_v_ip", ())]
        with torch.no_grad():
            unit_values = [value.detach().to("cpu", copy=True) for value in values]
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        with suppress(Exception):  # whatever half of it was attached, the kept encoder included, comes off
            pipe.unload_ip_adapter()
        raise ModelError(f"The IP-Adapter in {files.folder} could not be loaded for this model: "
                         f"{first_line(exc)}.") from None
    return _Adapter(keys[0], keys[1], pipe.image_encoder, getattr(pipe, "feature_extractor", None),
                    pipe.unet.encoder_hid_proj, processors, values, unit_values)


def _own_weights(*parts: Any) -> None:  # noqa: ANN401 - the encoder, the projection, the processors
    """What stays on the CPU (a CPU job's, an offloaded one's) in the process's own memory, not pages of the
    adapter's files: a file cut short in place while a job runs would be SIGBUS at the next read."""
    from studio.engine.memory import own_weights

    for part in parts:
        if hasattr(part, "parameters"):
            own_weights(part)


def _attach(pipe: Any, adapter: _Adapter) -> _Adapter:  # noqa: ANN401
    """Put a kept adapter back as diffusers' loader attaches one (``_load_ip_adapter_weights``)."""
    pipe.register_modules(image_encoder=adapter.encoder)
    if getattr(pipe, "feature_extractor", None) is None:
        pipe.register_modules(feature_extractor=adapter.feature_extractor)
    unet = pipe.unet
    unet.set_attn_processor(dict(adapter.processors))  # diffusers pops from the dict it is given
    unet.encoder_hid_proj = adapter.projection
    unet.config.encoder_hid_dim_type = "ip_image_proj"
    return adapter


def _set_strength(adapter: _Adapter, strength: float) -> None:
    if strength == adapter.strength:
        return
    import torch

    adapter.strength = float("nan")  # until every weight has it: a failure part way must not look done
    with torch.inference_mode(False), torch.no_grad():
        for value, unit in zip(adapter.values, adapter.unit_values, strict=True):
            value.copy_(unit)
            value.mul_(strength)
    adapter.strength = strength


def _embeddings(pipe: Any, adapter: _Adapter, picture: Image.Image) -> list[Any]:  # noqa: ANN401
    digest = (picture.size, hashlib.blake2b(picture.tobytes(), digest_size=16).digest())
    if adapter.embeddings is None or adapter.embeddings[0] != digest:
        import torch

        with torch.inference_mode():
            encoded = pipe.prepare_ip_adapter_image_embeds(picture, None, pipe._execution_device, 1, True)
        adapter.embeddings = (digest, encoded)
    return adapter.embeddings[1]


def _take_off(pipe: Any, adapter: _Adapter) -> None:  # noqa: ANN401
    """diffusers' unload; the adapter is kept for the next reference job unless CPU offload moves it."""
    unet = pipe.unet
    encoder = getattr(pipe, "image_encoder", None)
    pipe.unload_ip_adapter()
    offloaded = any(getattr(m, "_hf_hook", None) is not None for m in (unet, encoder))
    if encoder is adapter.encoder and not offloaded:
        _kept[unet] = adapter
