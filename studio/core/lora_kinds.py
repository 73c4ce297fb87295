"""LoRA files (kohya's, diffusers' and PEFT's layouts) and the LyCORIS ones Studio cannot apply, told by key names."""

from __future__ import annotations

import re

from studio.core.attention_width import CONTEXT_FAMILY, context_width
from studio.core.model_kind import FAMILY_LABELS, ModelKind
from studio.core.weight_files import SafetensorsInfo

LORA_MARKS = (".lora_down.", ".lora_up.", ".lora.down.", ".lora.up.", ".lora_A.", ".lora_B.", "lora_linear_layer.",
              "_lora.down.", ".hada_w1_", ".lokr_w1")
LORA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
# LyCORIS's other adapters (kohya's names, LoRA's prefixes): diffusers applies neither to SD 1.x/2.x/SDXL.
LYCORIS_MARKS = {".hada_w1_": "LoHa", ".lokr_w1": "LoKr"}


LORA_TO_K = re.compile(r"attn2[._]to_k.*(lora_down|lora\.down|lora_A|_lora\.down|lora_linear_layer\.down)")


def _lora_family(info: SafetensorsInfo) -> str:
    keys = info.tensors
    if any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in keys):
        return "sdxl"
    width = context_width(info, "", LORA_TO_K)
    if width in (768, 1024, 2048):
        return CONTEXT_FAMILY[width]
    base = (info.metadata.get("ss_base_model_version", "") + " " + info.metadata.get("modelspec.architecture", ""))
    base = base.lower()
    if "xl" in base:
        return "sdxl"
    if "v2" in base:
        return "sd2"
    if "v1" in base:
        return "sd1"
    # kohya SDXL names UNet blocks the original way (input_blocks_4_1), SD 1.x the diffusers way (down_blocks_0).
    if any(k.startswith("lora_unet_input_blocks_") for k in keys):
        return "sdxl"
    return ""


def lycoris_problem(kind: ModelKind, filename: str) -> str:
    """Why a LyCORIS LoHa/LoKr file cannot be used (it would fail inside diffusers with a message that says
    nothing); "" for anything else."""
    if not kind.detail.startswith("LyCORIS "):
        return ""
    return (f"{filename} is a {kind.detail} file; Studio applies LoRA and LoCon files, not LyCORIS LoHa or LoKr "
            "ones.")


def detect_lora(info: SafetensorsInfo) -> ModelKind:
    family = _lora_family(info)
    lycoris = next((name for mark, name in LYCORIS_MARKS.items() if any(mark in key for key in info.tensors)), "")
    if lycoris:
        label = f"LyCORIS {lycoris}" + (f" ({FAMILY_LABELS[family]})" if family else "")
        return ModelKind("lora", family, label=label, detail=f"LyCORIS {lycoris}")
    kohya = any(key.startswith(LORA_PREFIXES) for key in info.tensors)
    label = f"LoRA ({FAMILY_LABELS[family]})" if family else "LoRA"
    return ModelKind("lora", family, label=label, detail="kohya" if kohya else "diffusers")


def is_lora(keys: list[str]) -> bool:
    return any(key.startswith(LORA_PREFIXES) or any(mark in key for mark in LORA_MARKS) for key in keys)
