"""The sections of the settings file: the prompt panel's last values (with its LoRAs, guides and post chain),
named presets, prompt styles and the window's layout."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from studio.core import hires as hires_fix
from studio.core.control import MAX_GUIDES, control_records
from studio.core.inpaint import INPAINT_FILLS
from studio.core.requests import (
    DEFAULT_SCHEDULER,
    MAX_CFG,
    MAX_LORA_WEIGHT,
    MAX_LORAS,
    MAX_SEED,
    SCHEDULER_NAMES,
    canonical_scheduler,
)
from studio.core.settings_checks import (
    Checked,
    Refused,
    nearest_in_range,
    one_of,
    reading_file,
)


class GenerationDefaults(BaseModel):
    """The prompt panel as the person last left it."""

    model_config = ConfigDict(extra="ignore")

    model: str = ""
    prompt: str = ""
    negative_prompt: str = ""
    width: int = Field(512, ge=64, le=4096)
    height: int = Field(512, ge=64, le=4096)
    steps: int = Field(20, ge=1, le=1000)
    cfg_scale: float = Field(7.0, ge=0, le=MAX_CFG)
    seed: int = Field(-1, ge=-1, le=MAX_SEED)  # -1: random
    scheduler: str = DEFAULT_SCHEDULER
    batch_count: int = Field(1, ge=1, le=100)
    strength: float = Field(0.75, gt=0, le=1)
    inpaint_masked_only: bool = True
    inpaint_padding: int = Field(32, ge=0, le=1024)
    inpaint_fill: str = "original"  # one of INPAINT_FILLS
    inpaint_feather: float = Field(8.0, ge=0, le=256)
    generator: str = "diffusers"  # or a plugin generator's id
    generator_params: dict[str, dict[str, Any]] = Field(default_factory=dict)  # last values, per generator
    post: list[PostStepSetting] = Field(default_factory=list)  # applied to every result, in order
    loras: list[Checked[LoraSetting]] = Field(default_factory=list)  # for the next generation (at most MAX_LORAS)
    vae: str = ""  # a VAE name in <models>/vae, or a path; "" = the model's own
    hires: bool = False  # a hires fix for new pictures, with these settings (kept while it is off)
    hires_scale: float = Field(hires_fix.DEFAULT_SCALE, gt=1, le=hires_fix.MAX_SCALE)
    hires_steps: int = Field(0, ge=0, le=1000)
    hires_strength: float = Field(hires_fix.DEFAULT_STRENGTH, gt=0, le=1)
    hires_upscaler: str = hires_fix.LANCZOS
    # ControlNet guides as ControlGuide.to_record keeps them (the picture by its file's path), plus "enabled".
    controls: list[Checked[dict[str, Any]]] = Field(default_factory=list)

    # A value Studio cannot use raises: load_settings gives it its default and names it in Settings.load_note.
    _known_fill = field_validator("inpaint_fill")(lambda value: one_of(value, INPAINT_FILLS, "fill"))

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        return one_of(canonical_scheduler(value) or value, SCHEDULER_NAMES, "sampler")  # "euler_a" is Euler a

    @field_validator("loras", mode="before")
    @classmethod
    def _at_most_max_loras(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, list) or len(value) <= MAX_LORAS:
            return value
        if reading_file(info):  # each LoRA past the limit is named in the load note
            return [*value[:MAX_LORAS], *[Refused(f"more than {MAX_LORAS} LoRAs")] * (len(value) - MAX_LORAS)]
        return value[:MAX_LORAS]

    @field_validator("controls", mode="before")
    @classmethod
    def _well_formed_guides(cls, value: object, info: ValidationInfo) -> object:
        """Guides a job could take once a ControlNet is chosen, at most MAX_GUIDES (a guide set up before there is
        a ControlNet for the model stays, its picture and values with it): a hand-edited file may hold anything, and
        one bad guide must not cost the person the rest of their settings. Read from the file, each other item is
        refused in its place, so the load note names it."""
        reading = reading_file(info)
        if not isinstance(value, list):
            return value if reading else []
        guides: list[dict[str, Any] | Refused] = []
        for item in value:
            record = next(iter(control_records([item], unchosen_model=True)), None)
            if record is not None and sum(isinstance(guide, dict) for guide in guides) < MAX_GUIDES:
                guides.append({**record, "enabled": not (isinstance(item, dict) and item.get("enabled") is False)})
            elif reading:
                guides.append(Refused("not a control guide Studio can use" if record is None else
                                      f"more than {MAX_GUIDES} control guides"))
        return guides


class LoraSetting(BaseModel):
    """One chosen LoRA: its name in ``<models>/loras`` (or a .safetensors path) and its weight."""

    name: str
    weight: float = Field(1.0, ge=-MAX_LORA_WEIGHT, le=MAX_LORA_WEIGHT)

    _nearest_weight = field_validator("weight", mode="wrap")(lambda value, handler: nearest_in_range(value, handler))


class PostStepSetting(BaseModel):
    """One post-processor applied after each generation, with the parameters last chosen for it."""

    processor: str
    params: dict[str, Any] = Field(default_factory=dict)
    strength: float = Field(1.0, ge=0, le=1)  # blend with the picture before the step


class GenerationPreset(BaseModel):
    """Named generation settings: model or generator, size, sampling, inpaint options and the chain."""

    name: str
    generation: GenerationDefaults


def _styled(style: str, text: str) -> str:
    if "{prompt}" in style:
        return style.replace("{prompt}", text)
    return ", ".join(part for part in (text.strip(), style.strip()) if part)


class PromptStyle(BaseModel):
    """A saved style: ``{prompt}`` in its prompt (or negative prompt) is replaced by the person's prompt (or
    negative prompt)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    prompt: str = "{prompt}"
    negative_prompt: str = ""

    def apply(self, prompt: str, negative: str) -> tuple[str, str]:
        """The person's prompts with the style's, as AUTOMATIC1111 applies styles: each ``{prompt}`` in the style's
        prompt (and in its negative prompt) stands for the person's; without one, the style's words come after."""
        return _styled(self.prompt, prompt), _styled(self.negative_prompt, negative)


class WindowLayout(BaseModel):
    """How the person left the window: where it was and how big, where the panels were, and the brush and mask
    tools as they set them. A number past the tools' own limits takes the nearest one they allow (and is named in the
    load note); the window clamps them again when it applies them."""

    model_config = ConfigDict(extra="ignore")

    geometry: str = ""  # QMainWindow.saveGeometry(), base64: size, place, maximised
    docks: str = ""  # QMainWindow.saveState(), base64: which panels are shown, where, and how wide
    brush_size: float = Field(48.0, ge=1, le=1024)  # pixels, as the brush size box allows
    brush_hardness: float = Field(0.8, ge=0, le=1)
    mask_color: str = ""  # "" = the default colour
    mask_opacity: float = Field(0.5, ge=0, le=1)
    grow_pixels: int = Field(8, ge=1, le=256)  # as the grow box allows

    _nearest_tool_value = field_validator("brush_size", "brush_hardness", "mask_opacity", "grow_pixels", mode="wrap")(
        lambda value, handler: nearest_in_range(value, handler))

