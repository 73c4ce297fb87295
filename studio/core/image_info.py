"""What an image file says about how it was made (ImageInfo, read by ``studio.core.image_inspection``), and
which of its values Studio can take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studio.core.hires import HiresFix
from studio.core.requests import MAX_CFG, MAX_SEED, MAX_SIZE, MAX_STEPS, MIN_SIZE
from studio.core.safe_text import escaped
from studio.core.sampler_names import missing_scheduler

STUDIO_TOOL = "Studio"
JSON_KEYS = ("tool", "prompt", "negative_prompt", "seed", "steps", "cfg_scale", "sampler", "width", "height",
             "model")


@dataclass(frozen=True)
class ImageInfo:
    """How an image was made, as far as its metadata tells; None where it does not say."""

    tool: str | None  # "Studio", "AUTOMATIC1111", "ComfyUI", "InvokeAI", "Fooocus", "NovelAI"; None: no metadata
    prompt: str | None
    negative_prompt: str | None
    seed: int | None
    steps: int | None
    cfg_scale: float | None
    sampler: str | None  # the tool's own name ("euler_ancestral", "DPM++ 2M", "dpmpp_2m_k"…)
    width: int | None  # the generation size when the metadata says it, else the image's own size
    height: int | None
    model: str | None
    model_hash: str | None
    scheduler: str | None  # the Studio scheduler that sampler (+ schedule) corresponds to, if any
    notes: tuple[str, ...] = ()
    loras: tuple[tuple[str, float], ...] = ()  # (name, weight), as the image names them
    lora_hashes: tuple[str, ...] = ()  # each LoRA's short hash, in the order of ``loras`` ("" where not said)
    vae: str | None = None
    vae_hash: str | None = None
    hires: HiresFix | None = None  # a hires fix's second pass (width x height are then the first pass's)
    controls: tuple[dict[str, Any], ...] = ()  # ControlNet guides, in ControlGuide.to_record's form
    schedule: str | None = None  # the tool's schedule named apart from its sampler (A1111's "Schedule type")
    post: tuple[dict[str, Any], ...] = ()  # Studio's post-processing after the generation, in its recipe's form
    clip_skip: int | None = None  # A1111's "Clip skip" (1: none); Studio has no such setting
    precision: str | None = None  # Studio's recipe: what the job computed in (float32, bfloat16 on the CPU, float16)

    @classmethod
    def unread(cls, tool: str | None = None) -> ImageInfo:
        """Nothing read yet (or nothing to read): every field None."""
        return cls(tool, *(None,) * 11)

    def lora_records(self) -> list[dict[str, Any]]:
        """The LoRAs as the history records them: ``{"name", "weight"}``, and ``"hash"`` where the image says it."""
        hashes = self.lora_hashes + ("",) * (len(self.loras) - len(self.lora_hashes))
        return [{"name": name, "weight": weight} | ({"hash": digest} if digest else {})
                for (name, weight), digest in zip(self.loras, hashes)]

    def to_json_dict(self) -> dict[str, Any]:
        """The keys of ``studio inspect --json``, absent values as None; ``controls`` (the ControlNet guides),
        ``loras``, ``vae`` and ``vae_hash``, ``post`` (Studio's post-processing) and ``precision`` only for a
        picture made with them, so every other picture keeps exactly the keys it always had."""
        values = {key: getattr(self, key) for key in JSON_KEYS}
        if self.controls:
            values["controls"] = [dict(record) for record in self.controls]
        if self.loras:
            values["loras"] = self.lora_records()
        if self.vae:
            values |= {"vae": self.vae, "vae_hash": self.vae_hash}
        if self.post:
            values["post"] = [dict(step) for step in self.post]
        if self.precision:
            values["precision"] = self.precision
        return values


def recipe_fields(info: ImageInfo) -> dict[str, Any]:
    """The prompt-panel fields an image can fill: only values it has, and only ones Studio accepts.

    Keys are GenerationRequest's names (prompt, negative_prompt, steps, cfg_scale, seed, scheduler,
    width, height, hires (a HiresFix, or False for none), loras, vae) plus model_name and model_hash, for finding
    the model. With a prompt, the negative prompt and LoRAs are always there (empty for none), and the VAE where the
    picture names one or is Studio's (empty for the model's own; left out: keep the one chosen). A value Studio
    cannot take (a seed past its range, ComfyUI's are 64-bit; a sampler it lacks) is left out: ``refused_values``
    says why.
    """
    refused = refused_values(info)
    fields: dict[str, Any] = {}
    if info.prompt is not None:
        fields["prompt"] = info.prompt
        # A loaded recipe replaces the panel's: one made without a negative prompt or LoRAs empties them, or the
        # previous picture's stay and the remake silently differs.
        fields["negative_prompt"] = info.negative_prompt or ""
        fields["loras"] = list(info.loras)
        # Studio records a VAE whenever it used one, so none means the model's own; other tools' "" says so too.
        # Their silence (None) says nothing sure (A1111 names one only when set, and its own "read parameters" then
        # keeps the VAE chosen).
        if info.vae is not None or info.tool == STUDIO_TOOL:
            fields["vae"] = info.vae or ""
    for key in ("steps", "cfg_scale", "seed", "scheduler"):
        if getattr(info, key) is not None and key not in refused:
            fields[key] = getattr(info, key)
    if info.tool is not None and info.width is not None and info.height is not None and "size" not in refused:
        fields["width"], fields["height"] = info.width, info.height
        fields["hires"] = info.hires or False  # the size is the first pass's: a picture made without one turns it off
    if info.model:
        fields["model_name"] = info.model
    if info.model_hash:
        fields["model_hash"] = info.model_hash
    return fields


def refused_values(info: ImageInfo) -> dict[str, str]:
    """Each value the image names that Studio cannot take (keys: steps, cfg_scale, seed, size, scheduler, clip_skip),
    with why, as the start of a sentence ("Steps 100000 is more than 1000 (the most)", "Studio has no DPM++ SDE Karras
    sampler"): loading its parameters keeps what was set for these, and says so."""
    refused = {}
    for key, label, value, least, most in (("steps", "Steps", info.steps, 1, MAX_STEPS),
                                           ("cfg_scale", "CFG scale", info.cfg_scale, 0, MAX_CFG),
                                           ("seed", "Seed", info.seed, 0, MAX_SEED)):
        if value is not None and not least <= value <= most:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            refused[key] = (f"{label} {shown} is less than {least} (the least)" if value < least else
                            f"{label} {shown} is more than {most} (the most)")
    width, height = info.width, info.height
    if (info.tool is not None and width is not None and height is not None
            and not (MIN_SIZE <= width <= MAX_SIZE and MIN_SIZE <= height <= MAX_SIZE)):
        refused["size"] = f"Size {width}x{height} is not from {MIN_SIZE} to {MAX_SIZE} pixels a side"
    if info.scheduler is None and (why := missing_scheduler(info.sampler, info.schedule)):
        refused["scheduler"] = why
    if info.clip_skip is not None and info.clip_skip != 1:
        refused["clip_skip"] = f"Studio has no clip skip setting (this picture used Clip skip {info.clip_skip})"
    return refused


def escape_text(text: str) -> str:
    """text with every non-printable character (newlines too, ESC, bidi overrides…) written as an escape."""
    return escaped(text, allowed="")
