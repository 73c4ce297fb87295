"""ModelKind, what a model file or folder holds, and the words Studio uses for it."""

from __future__ import annotations

from dataclasses import dataclass

FAMILY_LABELS: dict[str, str] = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "sdxl-refiner": "SDXL refiner"}
TURBO_LABELS: dict[str, str] = {"sd1": "SD 1.x Turbo", "sd2": "SD-Turbo", "sdxl": "SDXL-Turbo"}
KIND_LABELS: dict[str, str] = {
    "vae": "VAE", "upscaler": "Upscaler (ESRGAN)", "style": "Style-transfer weights", "ip-adapter": "IP-Adapter",
    "embedding": "Textual inversion", "controlnet": "ControlNet", "unknown": "Unknown",
}
# The side each family's models were trained at (SD 2.x: its 768 px v-models, the common ones).
NATIVE_SIDES: dict[str, int] = {"sd1": 512, "sd2": 768, "sdxl": 1024, "sdxl-refiner": 1024}
PREDICTION_LABELS = {"v": "768, v", "epsilon": "512, epsilon"}


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

