"""A reference picture steering generation through IP-Adapter, with diffusers' own IP-Adapter loading.

The adapter is attached to the pipeline for one job and taken off afterwards: a UNet with an
adapter attached refuses jobs without a reference, and the txt2img/img2img pipelines share it.

Its CLIP image encoder (about 1.2 GB in float16 for SD 1.x, 3.6 GB for SDXL) is most of what loading costs,
so it is kept, where it is, for the next job: a job that also has a reference picture, with the same encoder
files, hands it back to diffusers, which then skips loading it. Any other job lets it go before that job's
memory plan counts the free memory (``let_encoder_go``), so memory is held only between reference jobs.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from studio.core.errors import ModelError, first_line
from studio.core.model_library import KIND_FOLDERS

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


@dataclass(frozen=True)
class _KeptEncoder:
    key: tuple[Hashable, ...]  # the encoder folder's files as they were when it was loaded
    encoder: Any


# By UNet, as the pipelines sharing a UNet share a model; an entry goes with its model.
_kept: weakref.WeakKeyDictionary[Any, _KeptEncoder] = weakref.WeakKeyDictionary()


def _encoder_key(files: AdapterFiles) -> tuple[Hashable, ...]:
    folder = files.folder / files.encoder_folder
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(folder.iterdir()) if f.is_file())


def let_encoder_go(pipe: Any) -> None:  # noqa: ANN401
    """For a job without a reference picture: the kept image encoder's memory is given back."""
    unet = getattr(pipe, "unet", None)
    if unet is not None:
        _kept.pop(unet, None)


@contextmanager
def reference_attached(pipe: Any, files: AdapterFiles, reference: Image.Image, scale: float) -> Iterator[dict]:  # noqa: ANN401
    """The pipeline with the adapter on for the block; yields the extra call arguments."""
    key = _encoder_key(files)
    kept = _kept.pop(pipe.unet, None)
    if kept is not None and kept.key == key and getattr(pipe, "image_encoder", None) is None:
        pipe.register_modules(image_encoder=kept.encoder)  # diffusers' loader then leaves it as it is
    try:
        pipe.load_ip_adapter(str(files.folder), subfolder="", weight_name=files.weight_name,
                             image_encoder_folder=files.encoder_folder, local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        with suppress(Exception):  # whatever half of it was attached, the kept encoder included, comes off
            pipe.unload_ip_adapter()
        raise ModelError(f"The IP-Adapter in {files.folder} could not be loaded for this model: "
                         f"{first_line(exc)}.") from None
    try:
        pipe.set_ip_adapter_scale(scale)
        yield {"ip_adapter_image": reference.convert("RGB")}
    finally:
        encoder = getattr(pipe, "image_encoder", None)
        pipe.unload_ip_adapter()
        if encoder is not None and getattr(encoder, "_hf_hook", None) is None:  # not one CPU offload moves
            _kept[pipe.unet] = _KeptEncoder(key, encoder)
