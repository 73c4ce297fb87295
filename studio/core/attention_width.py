"""The family a model or adapter is for, told by its cross-attention width (the text encoder's output)."""

from __future__ import annotations

import re

from studio.core.weight_files import SafetensorsInfo

# Cross-attention width = the text encoder's output: tells the family from any UNet attention layer.
CONTEXT_FAMILY: dict[int, str] = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl-refiner"}


def context_width(info: SafetensorsInfo, prefix: str, pattern: re.Pattern[str]) -> int | None:
    """The last dim of the first cross-attention key projection (or its LoRA down matrix) under ``prefix``."""
    for key, tensor in info.tensors.items():
        if key.startswith(prefix) and pattern.search(key) and len(tensor.shape) >= 2:
            return tensor.shape[-1]
    return None


# A UNet's (or a ControlNet's) cross-attention key projection, whose last dim is that width.
UNET_TO_K = re.compile(r"attn2\.to_k\.weight$")
