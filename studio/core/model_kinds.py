"""What a weights file or diffusers folder holds, told from tensor names and shapes (no tensor is read).

The checkpoint keys are the ones diffusers' ``single_file_utils.infer_diffusers_model_type`` reads;
the upscaler keys follow spandrel's ESRGAN and Compact detection.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from studio.core.attention_width import CONTEXT_FAMILY, UNET_TO_K, context_width
from studio.core.controlnet_kinds import CONTROL_CLASSES, CONTROL_FAMILIES, controlnet_kind, detect_controlnet
from studio.core.errors import ModelError
from studio.core.lora_kinds import detect_lora, is_lora
from studio.core.model_kind import KIND_LABELS, UNKNOWN_KIND, ModelKind, checkpoint_label, model_part
from studio.core.sd2_prediction import sd2_prediction
from studio.core.weight_files import SafetensorsInfo

UNET = "model.diffusion_model."
IN_CONV = UNET + "input_blocks.0.0.weight"  # (320, in_channels, 3, 3): 9 in-channels = inpainting
SDXL_ADM = UNET + "label_emb.0.0.weight"  # SDXL's size/crop conditioning: 2816 wide (base) or 2560 (refiner)
VAE_PARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
VAE_EXTRAS = ("model_ema.", "loss.")  # bookkeeping some VAE files carry


def _checkpoint(family: str, inpainting: bool, turbo: bool, detail: str = "", prediction: str = "") -> ModelKind:
    return ModelKind("checkpoint", family, inpainting, turbo, checkpoint_label(family, inpainting, turbo, prediction),
                     detail, prediction)


def _simple(kind: str, detail: str = "", family: str = "") -> ModelKind:
    return ModelKind(kind, family, label=KIND_LABELS[kind], detail=detail)


def _looks_turbo(metadata: dict[str, str], filename: str) -> bool:
    """Distillation leaves no trace in the weights: only the name or the ModelSpec metadata can say so."""
    fields = (metadata.get("modelspec.title", ""), metadata.get("modelspec.architecture", ""), filename)
    return any("turbo" in field.lower() for field in fields)


def _dim(info: SafetensorsInfo, key: str, axis: int) -> int | None:
    shape = info.shape(key)
    return shape[axis] if shape is not None and len(shape) > axis else None


def _detect_checkpoint(info: SafetensorsInfo, turbo: bool, filename: str = "", path: Path | None = None) -> ModelKind:
    in_channels = _dim(info, IN_CONV, 1)
    if in_channels not in (4, 9):
        # x4 upscaler (7), InstructPix2Pix (8), SD3/Flux (no input_blocks): not what Studio generates with.
        return ModelKind("unknown", detail="a diffusion checkpoint of an architecture Studio does not know")
    inpainting = in_channels == 9
    if info.has_prefix("conditioner.embedders.1.model."):
        return _checkpoint("sdxl", inpainting, turbo)
    if info.has_prefix("conditioner.embedders.0.model."):
        return _checkpoint("sdxl-refiner", inpainting, turbo)
    width = context_width(info, UNET, UNET_TO_K)
    if width == 1024 or info.has_prefix("cond_stage_model.model."):
        # Inpainting and Turbo models are all 512 px epsilon; the others need telling apart.
        prediction = "epsilon" if inpainting or turbo else sd2_prediction(info, filename, path)
        return _checkpoint("sd2", inpainting, turbo, prediction=prediction)
    if width == 768 or info.has_prefix("cond_stage_model.transformer."):
        return _checkpoint("sd1", inpainting, turbo)
    adm = _dim(info, SDXL_ADM, 1)
    family = CONTEXT_FAMILY.get(width or 0) or {2816: "sdxl", 2560: "sdxl-refiner"}.get(adm or 0, "")
    if not family:
        return ModelKind("unknown", detail="a diffusion checkpoint of an architecture Studio does not know")
    return _checkpoint(family, inpainting, turbo, "UNet only")


def _detect_vae(info: SafetensorsInfo) -> ModelKind | None:
    keys = list(info.tensors)
    for prefix in ("first_stage_model.", "vae.", ""):
        inner = [k[len(prefix):] for k in keys if k.startswith(prefix) and not k.startswith(VAE_EXTRAS)]
        if len(inner) != len([k for k in keys if not k.startswith(VAE_EXTRAS)]) or not inner:
            continue
        if all(k.startswith(VAE_PARTS) for k in inner) and any(k.startswith("decoder.") for k in inner):
            latent = _dim(info, prefix + "decoder.conv_in.weight", 1)
            if latent not in (None, 4):  # SD3/Flux VAEs: 16 latent channels, useless to SD
                return ModelKind("unknown", detail=f"a VAE with {latent} latent channels, not one for Stable Diffusion")
            return _simple("vae")
    return None


def _detect_upscaler(info: SafetensorsInfo) -> ModelKind | None:
    keys = info.tensors
    if "model.0.weight" in keys and any(k.startswith("model.1.sub.0.RDB1.") for k in keys):
        return _simple("upscaler", "ESRGAN")
    if "conv_first.weight" in keys and "conv_last.weight" in keys and (
            "body.0.rdb1.conv1.weight" in keys or "RRDB_trunk.0.RDB1.conv1.weight" in keys):
        return _simple("upscaler", "ESRGAN (new layout)")
    first, second = info.shape("body.0.weight"), info.shape("body.1.weight")
    if first is not None and second is not None and len(first) == 4 and len(second) == 1:  # conv, then PReLU
        return ModelKind("upscaler", label="Upscaler (Real-ESRGAN Compact)", detail="Real-ESRGAN Compact")
    return None


def _detect_style(info: SafetensorsInfo) -> ModelKind | None:
    for prefix in ("features.", ""):  # torchvision's VGG-19, whole or its features only
        if info.shape(prefix + "0.weight") == (64, 3, 3, 3) and info.shape(prefix + "2.weight") == (64, 64, 3, 3):
            return _simple("style", "VGG-19")
    if info.shape("0.weight") == (3, 3, 1, 1) and info.shape("2.weight") == (64, 3, 3, 3):
        return _simple("style", "AdaIN encoder")  # pytorch-AdaIN's vgg_normalised
    if info.shape("1.weight") == (256, 512, 3, 3) and any(s == (3, 64, 3, 3) for s in
                                                           (t.shape for t in info.tensors.values())):
        return _simple("style", "AdaIN decoder")
    return None


def _detect_embedding(info: SafetensorsInfo) -> ModelKind | None:
    keys = set(info.tensors)
    if "clip_l" in keys and "clip_g" in keys:
        return _simple("embedding", family="sdxl")
    tensors = [t for k, t in info.tensors.items() if k == "emb_params" or k.startswith("string_to_param.")]
    named_by_a1111 = bool(tensors)  # its own keys say what it is, whatever the width (a job says if it does not fit)
    if not tensors and 0 < len(keys) <= 4 and all("." not in k for k in keys):
        tensors = list(info.tensors.values())  # diffusers' format: one tensor per token, named by the token
    widths = {t.shape[-1] for t in tensors if 1 <= len(t.shape) <= 2}
    if tensors and len(widths) == 1 and (widths <= {768, 1024} or named_by_a1111):
        return _simple("embedding", family=CONTEXT_FAMILY.get(widths.pop(), ""))
    return None


def detect_kind(info: SafetensorsInfo, filename: str = "", path: Path | None = None) -> ModelKind:
    """What the file holds, from its header; ``filename`` helps to tell a turbo checkpoint. Given the file's
    ``path``, an SD 2.x checkpoint's prediction also comes from a NAME.yaml next to it and one small tensor."""
    keys = list(info.tensors)
    control = detect_controlnet(info)  # first: a ControlNet may come bundled with the model it was trained on
    if control is not None:
        return control
    if IN_CONV in info.tensors or info.has_prefix(UNET):
        return _detect_checkpoint(info, _looks_turbo(info.metadata, filename), filename, path)
    if is_lora(keys):
        return detect_lora(info)
    if info.has_prefix("image_proj.") and info.has_prefix("ip_adapter."):
        width = context_width(info, "ip_adapter.", re.compile(r"to_k_ip\.weight$"))
        return _simple("ip-adapter", family=CONTEXT_FAMILY.get(width or 0, ""))
    for detect in (_detect_vae, _detect_upscaler, _detect_style, _detect_embedding):
        found = detect(info)
        if found is not None:
            return found
    return UNKNOWN_KIND


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise ModelError(f"{path.parent.name}/{path.name} could not be read as JSON.") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path.parent.name}/{path.name} is not a JSON object.")
    return data


def read_model_index(folder: Path) -> dict[str, Any] | None:
    """The folder's model_index.json, parsed; None when it has none, ModelError when it is not a JSON object."""
    return _read_json(Path(folder) / "model_index.json")


def detect_folder_kind(path: Path, index: dict[str, Any] | None = None,
                       configs: dict[str, dict[str, Any]] | None = None) -> ModelKind:
    """What a diffusers folder holds, from model_index.json and unet/config.json (or a bare VAE config.json).
    ``index``: its model_index.json as ``read_model_index`` gave it, so that a scan reads it once; ``configs``, where
    given, gets the component configs read here, by their place in the folder ("unet/config.json"), for the
    folder's checks (``models.check_model_folder``) to reuse."""
    path = Path(path)
    index = index if index is not None else read_model_index(path)
    if index is None:
        config = _read_json(path / "config.json")
        if config is not None and (config.get("_class_name") == "ControlNetModel"
                                   or config.get("_class_name") in CONTROL_CLASSES):
            width = config.get("cross_attention_dim")
            width = width if isinstance(width, int) else 0
            family = CONTROL_FAMILIES.get(width, "")
            return controlnet_kind(family, CONTROL_CLASSES.get(config["_class_name"], "diffusers"), width)
        if config is not None and (part := model_part(str(config.get("_class_name", "")))):
            return part
        if config is not None and config.get("_class_name") == "AutoencoderTiny":
            return ModelKind("preview-decoder", label="TAESD preview decoder", detail="AutoencoderTiny")
        if config is not None and config.get("_class_name") == "AutoencoderKL":
            latent = config.get("latent_channels", 4)
            if latent != 4:
                return ModelKind("unknown", detail=f"a VAE with {latent} latent channels, not one for Stable Diffusion")
            return _simple("vae")
        return UNKNOWN_KIND
    name = str(index.get("_class_name", ""))
    if not re.fullmatch(r"StableDiffusion(XL)?(Img2Img|Inpaint)?Pipeline", name):
        return UNKNOWN_KIND
    unet = _read_json(path / "unet" / "config.json") or {}
    if unet and configs is not None:
        configs["unet/config.json"] = unet
    inpainting = "Inpaint" in name or unet.get("in_channels") == 9
    turbo = "turbo" in path.name.lower()
    width = unet.get("cross_attention_dim")
    if "XL" in name:
        text_encoder = index.get("text_encoder")
        no_clip_l = not text_encoder or (isinstance(text_encoder, list) and not any(text_encoder))
        refiner = width == 1280 or ("Img2Img" in name and (no_clip_l or bool(index.get("requires_aesthetics_score"))))
        return _checkpoint("sdxl-refiner" if refiner else "sdxl", inpainting, turbo, "diffusers")
    return _checkpoint("sd2" if width == 1024 else "sd1", inpainting, turbo, "diffusers")
