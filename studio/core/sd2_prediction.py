"""Whether an SD 2.x single-file checkpoint is a 2.x-base (512 px, predicts the noise: "epsilon") or a 2.x-v
(768 px, predicts "v") model: the layers are the same, so a sidecar config, the metadata, one bias or the name
tell."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from studio.core.weight_files import SafetensorsInfo

# ComfyUI's rule (supported_models.SD20.model_type): v models spread this 320-wide bias wider.
SD2_V_PROBE = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias"
SD2_V_STD = 0.09
SIDECAR_SUFFIXES = (".yaml", ".yml")  # AUTOMATIC1111's: the model's LDM config, next to it under its name


def _sidecar_prediction(path: Path) -> str:
    """From NAME.yaml next to the file (A1111's way to say how to run it): ``parameterization: "v"`` means v,
    any other config (LDM's default is "eps") epsilon."""
    for suffix in SIDECAR_SUFFIXES:
        sidecar = path.with_suffix(suffix)
        try:
            text = sidecar.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found = re.search(r"^\s*parameterization\s*:\s*[\"']?(\w+)", text, re.MULTILINE)
        return "v" if found and found.group(1).lower() in ("v", "v_prediction") else "epsilon"
    return ""


def _metadata_prediction(metadata: dict[str, str]) -> str:
    """ModelSpec's prediction_type (kohya writes "v" or "epsilon"), or its architecture name."""
    declared = metadata.get("modelspec.prediction_type", "").strip().lower()
    if declared in ("v", "v_prediction", "v-prediction"):
        return "v"
    if declared in ("epsilon", "eps"):
        return "epsilon"
    architecture = metadata.get("modelspec.architecture", "").lower()
    if "768-v" in architecture:
        return "v"
    return "epsilon" if architecture.endswith("-512") else ""


_FLOATS = {"F32": ("f", 4), "F16": ("e", 2), "BF16": ("H", 2)}


def _weights_prediction(path: Path, info: SafetensorsInfo) -> str:
    """ComfyUI's test: the population std of SD2_V_PROBE above SD2_V_STD means v (reads 320 numbers)."""
    tensor = info.tensors.get(SD2_V_PROBE)
    if tensor is None or tensor.dtype not in _FLOATS or not 0 < tensor.numel <= 4096:
        return ""
    code, width = _FLOATS[tensor.dtype]
    try:
        with open(path, "rb") as handle:
            handle.seek(8 + info.header_size + tensor.start)
            raw = handle.read(tensor.numel * width)
    except OSError:
        return ""
    if len(raw) != tensor.numel * width:
        return ""
    values = struct.unpack(f"<{tensor.numel}{code}", raw)
    if tensor.dtype == "BF16":  # the top half of a float32
        values = struct.unpack(f"<{tensor.numel}f", struct.pack(f"<{tensor.numel}I", *(v << 16 for v in values)))
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    if std != std:  # NaN: says nothing
        return ""
    return "v" if std > SD2_V_STD else "epsilon"


def _name_prediction(filename: str) -> str:
    """"v2-1_768-ema-pruned", "sd21-768-v" say v; "v2-1_512-ema-pruned", "sd2-base" say epsilon."""
    name = filename.lower()
    says_v = "768" in name or re.search(r"(^|[-_. ])v([-_. ]|$)|vpred|v-pred|v_pred", name) is not None
    says_epsilon = "512" in name or "base" in name or "epsilon" in name
    return "v" if says_v and not says_epsilon else "epsilon" if says_epsilon and not says_v else ""


def sd2_prediction(info: SafetensorsInfo, filename: str, path: Path | None = None) -> str:
    """What a (non-inpainting, non-turbo) SD 2.x checkpoint predicts: a NAME.yaml next to it wins, then the file's
    ModelSpec metadata, then its weights (ComfyUI's rule), then its name; else "v" (SD 2.1, the common one)."""
    # In that order, stopping at the first answer: the weights are read only when nothing before says.
    return ((_sidecar_prediction(path) if path is not None else "") or _metadata_prediction(info.metadata)
            or (_weights_prediction(path, info) if path is not None else "") or _name_prediction(filename) or "v")
