"""A reference picture steering generation through IP-Adapter, with diffusers' own IP-Adapter loading.

The adapter is attached to the pipeline for one job and taken off afterwards: a UNet with an
adapter attached refuses jobs without a reference, and the txt2img/img2img pipelines share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def reference_attached(pipe: Any, files: AdapterFiles, reference: Image.Image, scale: float) -> Iterator[dict]:  # noqa: ANN401
    """The pipeline with the adapter on for the block; yields the extra call arguments."""
    try:
        pipe.load_ip_adapter(str(files.folder), subfolder="", weight_name=files.weight_name,
                             image_encoder_folder=files.encoder_folder, local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"The IP-Adapter in {files.folder} could not be loaded for this model: "
                         f"{first_line(exc)}.") from None
    try:
        pipe.set_ip_adapter_scale(scale)
        yield {"ip_adapter_image": reference.convert("RGB")}
    finally:
        pipe.unload_ip_adapter()
