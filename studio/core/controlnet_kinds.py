"""ControlNet files and folders, and the guide models like them that Studio cannot run, told by key names."""

from __future__ import annotations

from studio.core.attention_width import CONTEXT_FAMILY, UNET_TO_K, context_width
from studio.core.model_kind import FAMILY_LABELS, ModelKind
from studio.core.weight_files import SafetensorsInfo

# The families ControlNets are made for (no refiner's), by the same width.
CONTROL_FAMILIES: dict[int, str] = {w: family for w, family in CONTEXT_FAMILY.items() if family != "sdxl-refiner"}

# ControlNets: lllyasviel's original layout (``control_model.``, or bare as thibaud's SD 2.1 files), diffusers' own
# key names (a saved ControlNetModel), and the guide kinds diffusers' ControlNetModel cannot run, told by their keys
# as ComfyUI tells them (``lora_controlnet``: Stability's Control-LoRAs; ``body.``/``adapter.``: T2I-Adapters).
CONTROL_PREFIX = "control_model."
CONTROL_DIFFUSERS_MARKS = ("controlnet_cond_embedding.", "controlnet_down_blocks.")
CONTROL_UNSUPPORTED = {"Control-LoRA": "a Control-LoRA", "T2I-Adapter": "a T2I-Adapter",
                       "ControlNet Union": "a ControlNet Union model", "ControlNet-XS": "a ControlNet-XS model"}
# A folder's config.json class for each of those; ControlNetModel is the one Studio runs.
CONTROL_CLASSES = {"T2IAdapter": "T2I-Adapter", "MultiAdapter": "T2I-Adapter",
                   "ControlNetUnionModel": "ControlNet Union", "ControlNetXSAdapter": "ControlNet-XS"}


def controlnet_kind(family: str, detail: str, width: int = 0) -> ModelKind:
    label = "ControlNet" if detail in ("original", "diffusers") else detail
    return ModelKind("controlnet", family, label=label + (f" ({FAMILY_LABELS[family]})" if family else ""),
                     detail=detail, width=width)


def control_problem(kind: ModelKind, name: str) -> str:
    """Why a ControlNet-like file or folder cannot be used (a Control-LoRA, a T2I-Adapter…); "" when it can."""
    what = CONTROL_UNSUPPORTED.get(kind.detail) if kind.kind == "controlnet" else None
    if what is None:
        return ""
    return (f"{name} is {what}, which Studio cannot use as a control guide yet; it runs ControlNet models "
            "(ControlNetModel in diffusers' layout, or lllyasviel's original control_model layout).")


def detect_controlnet(info: SafetensorsInfo) -> ModelKind | None:
    keys = info.tensors
    if "lora_controlnet" in keys:
        return controlnet_kind("sdxl" if info.has_prefix("label_emb.") else "", "Control-LoRA")
    if info.has_prefix("adapter.body.") or (info.has_prefix("body.0.") and any(
            key.startswith(("body.0.block1.", "body.0.in_conv.", "body.0.resnets.")) for key in keys)):
        return controlnet_kind("", "T2I-Adapter")
    original = info.has_prefix(CONTROL_PREFIX)
    prefix = CONTROL_PREFIX if original else ""
    if not original and not ("input_hint_block.0.weight" in keys or any(
            key.startswith(CONTROL_DIFFUSERS_MARKS) for key in keys)):
        return None
    if info.has_prefix(prefix + "task_embedding") or info.has_prefix(prefix + "control_add_embedding."):
        return controlnet_kind("sdxl", "ControlNet Union")
    width = context_width(info, prefix, UNET_TO_K)
    family = CONTROL_FAMILIES.get(width or 0, "")
    if not family and (info.has_prefix(prefix + "add_embedding.") or info.has_prefix(prefix + "label_emb.")):
        family = "sdxl"  # SDXL's size conditioning; its small variants keep little cross-attention
    return controlnet_kind(family, "original" if original or "input_hint_block.0.weight" in keys else "diffusers",
                    width or 0)
