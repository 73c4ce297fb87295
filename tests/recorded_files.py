"""Tiny LoRA, VAE and ControlNet files and a history entry made with them, for the "changed since" warnings: the
files are valid safetensors (one byte tensor) that nothing loads, only hashes."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from studio.core.control import ControlGuide
from studio.core.hashing import controlnet_hash, lora_hash, model_hash
from studio.core.images import save_image
from studio.core.metadata import LoraRecord, Recipe
from studio.services.history_store import HistoryEntry

# sd-webui-controlnet's hash reads the 64 KiB at 1 MiB into the file: a smaller file has one hash whatever it holds.
CONTROLNET_BYTES = (1 << 20) + (1 << 16)
# The tensor name that makes a file a ControlNet (lllyasviel's layout) to Studio's checks, as a rerun makes them.
CONTROLNET_KEY = "input_hint_block.0.weight"


def weights_file(path: Path, fill: int, size: int = 64, key: str = "w") -> Path:
    """A safetensors file whose one tensor, ``key``, is ``size`` bytes of ``fill``: another fill, another file."""
    header = json.dumps({key: {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
    header += b" " * (-len(header) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes([fill]) * size)
    return path


def made_with_files(models: Path, pictures: Path, *, lora: bool = True, vae: bool = True,
                    controlnet: bool = True) -> HistoryEntry:
    """An entry (and its picture, whose recipe records the hashes as the engine writes them) made with the LoRA
    ``ink``, the VAE ``soft`` and the ControlNet ``canny``, each written in ``models`` now."""
    params: dict = {}
    loras: tuple[LoraRecord, ...] = ()
    vae_hash = ""
    if lora:
        loras = (LoraRecord("ink", lora_hash(weights_file(models / "loras" / "ink.safetensors", 1)), 0.7),)
        params["loras"] = [{"name": "ink", "weight": 0.7}]
    if vae:
        vae_hash = model_hash(weights_file(models / "vae" / "soft.safetensors", 2))
        params["vae"] = "soft"
    pictures.mkdir(parents=True, exist_ok=True)
    if controlnet:
        Image.new("RGB", (8, 8)).save(pictures / "lines.png")  # the guide's kept picture: a rerun needs it
        digest = controlnet_hash(weights_file(models / "controlnet" / "canny.safetensors", 3, CONTROLNET_BYTES,
                                                 CONTROLNET_KEY))
        params["controls"] = [ControlGuide("canny", image_path=str(pictures / "lines.png")).to_record(digest)]
    recipe = Recipe(prompt="a fox", negative_prompt="", steps=2, sampler="Euler", cfg_scale=5, seed=7, width=8,
                    height=8, model_name="tiny", loras=loras, vae_name="soft" if vae else "", vae_hash=vae_hash)
    picture = save_image(Image.new("RGB", (8, 8)), pictures / "fox.png", recipe)
    return HistoryEntry(prompt="a fox", seed=7, steps=2, image_path=str(picture), params=params)
