"""What a weights file or diffusers folder holds, told from tensor names and shapes (no tensor is read).

The checkpoint keys are the ones diffusers' ``single_file_utils.infer_diffusers_model_type`` reads;
the upscaler keys follow spandrel's ESRGAN and Compact detection.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import ModelError
from studio.core.weight_files import SafetensorsInfo

FAMILY_LABELS: dict[str, str] = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "sdxl-refiner": "SDXL refiner"}
TURBO_LABELS: dict[str, str] = {"sd1": "SD 1.x Turbo", "sd2": "SD-Turbo", "sdxl": "SDXL-Turbo"}
KIND_LABELS: dict[str, str] = {
    "vae": "VAE", "upscaler": "Upscaler (ESRGAN)", "style": "Style-transfer weights", "ip-adapter": "IP-Adapter",
    "embedding": "Textual inversion", "controlnet": "ControlNet", "unknown": "Unknown",
}
# The side each family's models were trained at (SD 2.x: its 768 px v-models, the common ones).
NATIVE_SIDES: dict[str, int] = {"sd1": 512, "sd2": 768, "sdxl": 1024, "sdxl-refiner": 1024}
# Cross-attention width = the text encoder's output: tells the family from any UNet attention layer.
CONTEXT_FAMILY: dict[int, str] = {768: "sd1", 1024: "sd2", 2048: "sdxl", 1280: "sdxl-refiner"}
# The families ControlNets are made for (no refiner's), by the same width.
CONTROL_FAMILIES: dict[int, str] = {w: family for w, family in CONTEXT_FAMILY.items() if family != "sdxl-refiner"}

UNET = "model.diffusion_model."
IN_CONV = UNET + "input_blocks.0.0.weight"  # (320, in_channels, 3, 3): 9 in-channels = inpainting
SDXL_ADM = UNET + "label_emb.0.0.weight"  # SDXL's size/crop conditioning: 2816 wide (base) or 2560 (refiner)
LORA_MARKS = (".lora_down.", ".lora_up.", ".lora.down.", ".lora.up.", ".lora_A.", ".lora_B.", "lora_linear_layer.",
              "_lora.down.", ".hada_w1_", ".lokr_w1")
LORA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
# LyCORIS's other adapters (kohya's names, LoRA's prefixes): diffusers applies neither to SD 1.x/2.x/SDXL.
LYCORIS_MARKS = {".hada_w1_": "LoHa", ".lokr_w1": "LoKr"}
VAE_PARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
VAE_EXTRAS = ("model_ema.", "loss.")  # bookkeeping some VAE files carry
# SD 2.x comes as 2.x-base (512 px, predicts the noise: "epsilon") and 2.x-v (768 px, predicts "v"); the layers
# are the same. ComfyUI's rule (supported_models.SD20.model_type): v models spread this 320-wide bias wider.
SD2_V_PROBE = UNET + "output_blocks.11.1.transformer_blocks.0.norm1.bias"
SD2_V_STD = 0.09
PREDICTION_LABELS = {"v": "768, v", "epsilon": "512, epsilon"}
SIDECAR_SUFFIXES = (".yaml", ".yml")  # AUTOMATIC1111's: the model's LDM config, next to it under its name


@dataclass(frozen=True)
class ModelKind:
    kind: str  # checkpoint | lora | vae | upscaler | style | ip-adapter | embedding | controlnet | preview-decoder
    # | unknown
    family: str = ""  # sd1 | sd2 | sdxl | sdxl-refiner | ""
    inpainting: bool = False
    turbo: bool = False
    label: str = "Unknown"
    detail: str = ""  # the format or architecture, when it says more than the label ("kohya", "VGG-19")
    prediction: str = ""  # SD 2.x single files: "v" (768 px) or "epsilon" (512 px, and SD-Turbo)
    width: int = 0  # a ControlNet's cross-attention width: the text encoder it was trained with (0: not known)


UNKNOWN_KIND = ModelKind("unknown")
# The parts of a Stable Diffusion model found loose (a model folder that lost its model_index.json), by the class
# their config names (diffusers' _class_name, transformers' architectures): listed as what they are, not usable alone.
PART_CLASSES = {"UNet2DConditionModel": "UNet", "CLIPTextModel": "text encoder",
                "CLIPTextModelWithProjection": "text encoder"}


def model_part(class_name: str) -> ModelKind | None:
    """The kind of a loose part of a model (its UNet, its text encoder), or None for any other class."""
    part = PART_CLASSES.get(class_name)
    return ModelKind("unknown", label=f"{part[0].upper()}{part[1:]} ({class_name})", detail=class_name) if part \
        else None


def part_problem(kind: ModelKind, name: str) -> str:
    """Why a loose part of a model cannot be used on its own, as one sentence; "" for anything else."""
    if kind.kind != "unknown" or kind.detail not in PART_CLASSES:
        return ""
    return (f"{name} is the {PART_CLASSES[kind.detail]} of a Stable Diffusion model, which Studio does not use on "
            "its own: the folder it is in has no model_index.json, so it is no whole model; copy or download that "
            "model again.")


def with_article(label: str) -> str:
    """"an SDXL model", "a VAE file": SD is read "ess-dee", Upscaler and IP-Adapter start with a vowel."""
    return f"{'an' if label.startswith(('SD', '8', 'A', 'E', 'I', 'O', 'U')) else 'a'} {label}"


# What a lookup wanted, for the sentence when what it was given is something else.
WANTED_KINDS = {"controlnet": "a ControlNet", "lora": "a LoRA", "vae": "a VAE"}


def other_kind_sentence(name: str, kind: str, label: str, wanted: str) -> str:
    """"NAME is a Stable Diffusion model (SD 1.x), not a ControlNet.": what ``name`` is (its ``kind`` and
    ``label``), given where ``wanted`` (a WANTED_KINDS key) was; the engine and ``studio generate`` say it alike."""
    what = f"a Stable Diffusion model ({label})" if kind == "checkpoint" else with_article(label)
    return f"{name} is {what}, not {WANTED_KINDS[wanted]}."


def checkpoint_label(family: str, inpainting: bool = False, turbo: bool = False, prediction: str = "") -> str:
    label = (TURBO_LABELS.get(family) if turbo else None) or FAMILY_LABELS.get(family, "Unknown")
    if prediction in PREDICTION_LABELS and not turbo and not inpainting:
        label += f" ({PREDICTION_LABELS[prediction]})"
    return label + (" inpainting" if inpainting else "")


def _checkpoint(family: str, inpainting: bool, turbo: bool, detail: str = "", prediction: str = "") -> ModelKind:
    return ModelKind("checkpoint", family, inpainting, turbo, checkpoint_label(family, inpainting, turbo, prediction),
                     detail, prediction)


def _simple(kind: str, detail: str = "", family: str = "") -> ModelKind:
    return ModelKind(kind, family, label=KIND_LABELS[kind], detail=detail)


def _looks_turbo(metadata: dict[str, str], filename: str) -> bool:
    """Distillation leaves no trace in the weights: only the name or the ModelSpec metadata can say so."""
    fields = (metadata.get("modelspec.title", ""), metadata.get("modelspec.architecture", ""), filename)
    return any("turbo" in field.lower() for field in fields)


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


def _dim(info: SafetensorsInfo, key: str, axis: int) -> int | None:
    shape = info.shape(key)
    return shape[axis] if shape is not None and len(shape) > axis else None


def _context_width(info: SafetensorsInfo, prefix: str, pattern: re.Pattern[str]) -> int | None:
    """The last dim of the first cross-attention key projection (or its LoRA down matrix) under ``prefix``."""
    for key, tensor in info.tensors.items():
        if key.startswith(prefix) and pattern.search(key) and len(tensor.shape) >= 2:
            return tensor.shape[-1]
    return None


_UNET_TO_K = re.compile(r"attn2\.to_k\.weight$")
_LORA_TO_K = re.compile(r"attn2[._]to_k.*(lora_down|lora\.down|lora_A|_lora\.down|lora_linear_layer\.down)")


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
    width = _context_width(info, UNET, _UNET_TO_K)
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


def _lora_family(info: SafetensorsInfo) -> str:
    keys = info.tensors
    if any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in keys):
        return "sdxl"
    width = _context_width(info, "", _LORA_TO_K)
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


def _detect_lora(info: SafetensorsInfo) -> ModelKind:
    family = _lora_family(info)
    lycoris = next((name for mark, name in LYCORIS_MARKS.items() if any(mark in key for key in info.tensors)), "")
    if lycoris:
        label = f"LyCORIS {lycoris}" + (f" ({FAMILY_LABELS[family]})" if family else "")
        return ModelKind("lora", family, label=label, detail=f"LyCORIS {lycoris}")
    kohya = any(key.startswith(LORA_PREFIXES) for key in info.tensors)
    label = f"LoRA ({FAMILY_LABELS[family]})" if family else "LoRA"
    return ModelKind("lora", family, label=label, detail="kohya" if kohya else "diffusers")


def _is_lora(keys: list[str]) -> bool:
    return any(key.startswith(LORA_PREFIXES) or any(mark in key for mark in LORA_MARKS) for key in keys)


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


def _control(family: str, detail: str, width: int = 0) -> ModelKind:
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


def _detect_controlnet(info: SafetensorsInfo) -> ModelKind | None:
    keys = info.tensors
    if "lora_controlnet" in keys:
        return _control("sdxl" if info.has_prefix("label_emb.") else "", "Control-LoRA")
    if info.has_prefix("adapter.body.") or (info.has_prefix("body.0.") and any(
            key.startswith(("body.0.block1.", "body.0.in_conv.", "body.0.resnets.")) for key in keys)):
        return _control("", "T2I-Adapter")
    original = info.has_prefix(CONTROL_PREFIX)
    prefix = CONTROL_PREFIX if original else ""
    if not original and not ("input_hint_block.0.weight" in keys or any(
            key.startswith(CONTROL_DIFFUSERS_MARKS) for key in keys)):
        return None
    if info.has_prefix(prefix + "task_embedding") or info.has_prefix(prefix + "control_add_embedding."):
        return _control("sdxl", "ControlNet Union")
    width = _context_width(info, prefix, _UNET_TO_K)
    family = CONTROL_FAMILIES.get(width or 0, "")
    if not family and (info.has_prefix(prefix + "add_embedding.") or info.has_prefix(prefix + "label_emb.")):
        family = "sdxl"  # SDXL's size conditioning; its small variants keep little cross-attention
    return _control(family, "original" if original or "input_hint_block.0.weight" in keys else "diffusers",
                    width or 0)


def _detect_embedding(info: SafetensorsInfo) -> ModelKind | None:
    keys = set(info.tensors)
    if "clip_l" in keys and "clip_g" in keys:
        return _simple("embedding", family="sdxl")
    tensors = [t for k, t in info.tensors.items() if k == "emb_params" or k.startswith("string_to_param.")]
    if not tensors and 0 < len(keys) <= 4 and all("." not in k for k in keys):
        tensors = list(info.tensors.values())  # diffusers' format: one tensor per token, named by the token
    widths = {t.shape[-1] for t in tensors if 1 <= len(t.shape) <= 2}
    if tensors and len(widths) == 1 and widths <= {768, 1024}:
        return _simple("embedding", family=CONTEXT_FAMILY[widths.pop()])
    return None


def detect_kind(info: SafetensorsInfo, filename: str = "", path: Path | None = None) -> ModelKind:
    """What the file holds, from its header; ``filename`` helps to tell a turbo checkpoint. Given the file's
    ``path``, an SD 2.x checkpoint's prediction also comes from a NAME.yaml next to it and one small tensor."""
    keys = list(info.tensors)
    control = _detect_controlnet(info)  # first: a ControlNet may come bundled with the model it was trained on
    if control is not None:
        return control
    if IN_CONV in info.tensors or info.has_prefix(UNET):
        return _detect_checkpoint(info, _looks_turbo(info.metadata, filename), filename, path)
    if _is_lora(keys):
        return _detect_lora(info)
    if info.has_prefix("image_proj.") and info.has_prefix("ip_adapter."):
        width = _context_width(info, "ip_adapter.", re.compile(r"to_k_ip\.weight$"))
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


def detect_folder_kind(path: Path) -> ModelKind:
    """What a diffusers folder holds, from model_index.json and unet/config.json (or a bare VAE config.json)."""
    path = Path(path)
    index = _read_json(path / "model_index.json")
    if index is None:
        config = _read_json(path / "config.json")
        if config is not None and (config.get("_class_name") == "ControlNetModel"
                                   or config.get("_class_name") in CONTROL_CLASSES):
            width = config.get("cross_attention_dim")
            width = width if isinstance(width, int) else 0
            family = CONTROL_FAMILIES.get(width, "")
            return _control(family, CONTROL_CLASSES.get(config["_class_name"], "diffusers"), width)
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
    inpainting = "Inpaint" in name or unet.get("in_channels") == 9
    turbo = "turbo" in path.name.lower()
    width = unet.get("cross_attention_dim")
    if "XL" in name:
        text_encoder = index.get("text_encoder")
        no_clip_l = not text_encoder or (isinstance(text_encoder, list) and not any(text_encoder))
        refiner = width == 1280 or ("Img2Img" in name and (no_clip_l or bool(index.get("requires_aesthetics_score"))))
        return _checkpoint("sdxl-refiner" if refiner else "sdxl", inpainting, turbo, "diffusers")
    return _checkpoint("sd2" if width == 1024 else "sd1", inpainting, turbo, "diffusers")
