"""Image recipes: the A1111-compatible ``parameters`` text and Studio's own JSON chunk.

A1111's format is what most tools and model sites read, so Studio writes it exactly:

    <prompt>
    Negative prompt: <negative>
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 0123456789, Model: name

LoRAs are written as A1111 writes them: a ``<lora:name:weight>`` tag each, after the prompt (A1111, and the tools that
read its text, such as Civitai, find LoRAs there), and ``Lora hashes: "name: hash, ..."``; plus ``Lora weights``, which
older Studio versions read. The recipe itself keeps the prompt as the model encoded it, without tags, as Studio's JSON
does: reading the text back takes the tags out again, and they become the recipe's LoRAs, each once. Another tool's
text is read the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import PurePath
from typing import Any

from studio import __version__
from studio.core.control import a1111_text, controls_from_settings, control_records
from studio.core.hires import HiresFix, hires_from_settings
from studio.core.units import finite_or, is_finite_number, short_number

STUDIO_CHUNK = "studio"
PARAMETERS_CHUNK = "parameters"
RECIPE_CHUNKS = (PARAMETERS_CHUNK, STUDIO_CHUNK)  # the PNG text chunks a recipe is written in
RECIPE_FORMAT = 1


@dataclass(frozen=True)
class LoraRecord:
    """A LoRA that made an image: its name, its short hash (AutoV3, as A1111 writes it), and its weight."""

    name: str
    hash: str = ""
    weight: float = 1.0


@dataclass(frozen=True)
class Recipe:
    """Everything that made one image, enough to make it again."""

    prompt: str
    negative_prompt: str
    steps: int
    sampler: str
    cfg_scale: float
    seed: int
    width: int
    height: int
    model_name: str
    model_hash: str = ""
    strength: float | None = None  # set for img2img and inpainting
    mask_blur: float | None = None  # the rest: set for inpainting only (A1111's names in the text)
    inpaint_area: str | None = None  # "Only masked" | "Whole picture"
    masked_padding: int | None = None
    masked_content: str | None = None  # original | noise | blurred
    generator: str = "diffusers"
    version: str = f"Studio {__version__}"
    generator_version: str = ""  # the plugin's version, for plugin generators
    plugin: str = ""  # the id of the plugin that made it ("" for Studio's own generator)
    params: dict[str, Any] = field(default_factory=dict, compare=False)  # a plugin generator's parameters
    post: tuple[dict[str, Any], ...] = ()  # post-processing steps: {"processor", "version", "params"}
    loras: tuple[LoraRecord, ...] = ()
    vae_name: str = ""  # "" = the model's own VAE
    vae_hash: str = ""
    ti_hashes: str = ""  # A1111's "TI hashes": "name: hash, …" of the textual inversions the prompts used
    # A hires fix's second pass (width x height and steps are the first pass's, as A1111 writes them).
    hires_scale: float | None = None
    hires_steps: int | None = None  # 0: as many as the first pass
    hires_strength: float | None = None
    hires_upscaler: str | None = None
    # ControlNet guides (ControlGuide.to_record: model, hash, preprocessor, weight, start, end, thresholds, image)
    controls: tuple[dict[str, Any], ...] = ()
    # The precision the job computed in (float16 on a GPU; float32, or bfloat16 with the fast path, on the CPU): the
    # same settings in another one make a slightly different picture. "" where not recorded (older pictures).
    precision: str = field(default="", compare=False)

    @property
    def hires(self) -> HiresFix | None:
        """The hires fix that made the picture, or None (also for a recipe whose fields are malformed)."""
        if self.hires_scale is None:
            return None
        return HiresFix.from_record({"scale": self.hires_scale, "steps": self.hires_steps or 0,
                                     "strength": self.hires_strength, "upscaler": self.hires_upscaler or ""})

    def with_hires(self, hires: HiresFix) -> Recipe:
        return replace(self, hires_scale=hires.scale, hires_steps=hires.steps, hires_strength=hires.strength,
                       hires_upscaler=hires.upscaler)

    @classmethod
    def post_only(cls, width: int, height: int) -> Recipe:
        """For a picture Studio did not make: it records only the post-processing Studio does to it."""
        return cls(prompt="", negative_prompt="", steps=0, sampler="", cfg_scale=0, seed=-1, width=width,
                   height=height, model_name="", generator="")

    @property
    def describes_generation(self) -> bool:
        """False for a ``post_only`` recipe: no prompt or settings to write as A1111's text or to load."""
        return bool(self.generator)

    @property
    def by_plugin(self) -> bool:
        """Made by a plugin's generator, which takes no steps, sampler nor CFG scale unless its recipe says so."""
        return self.generator not in ("", "diffusers")

    def to_parameters(self) -> str:
        from studio.core.prompt_loras import tag_weight, with_tags, written_tag  # it imports requests (this module)

        plugin = self.by_plugin
        fields_ = {  # what a plugin's job did not use (0 steps, CFG 0, no sampler) is left out
            "Steps": None if plugin and not self.steps else self.steps,
            "Sampler": self.sampler,
            "CFG scale": None if plugin and not self.cfg_scale else short_number(self.cfg_scale),
            "Seed": self.seed,
            "Size": f"{self.width}x{self.height}",
            "Model hash": self.model_hash or None,
            "Model": self.model_name,
            "VAE hash": self.vae_hash or None,
            "VAE": self.vae_name or None,
            "Denoising strength": short_number(self.strength) if self.strength is not None else
            None if self.hires_strength is None else short_number(self.hires_strength),
            "Mask blur": None if self.mask_blur is None else short_number(self.mask_blur),
            "Inpaint area": self.inpaint_area,
            "Masked area padding": self.masked_padding,
            "Masked content": self.masked_content,
            "Hires upscale": None if self.hires_scale is None else short_number(self.hires_scale),
            "Hires steps": self.hires_steps or None,
            "Hires upscaler": self.hires_upscaler if self.hires_scale is not None else None,
            "Generator": None if self.generator == "diffusers" else
            f"{self.plugin + '/' if self.plugin else ''}{self.generator} {self.generator_version}".strip(),
            "Generator settings": plugin_settings_text(self.params) if plugin else None,
            **{f"ControlNet {index}": a1111_text(record) for index, record in enumerate(self.controls)},
            "Post-processing": " > ".join(step.get("processor", "?") for step in self.post) or None,
            "Lora hashes": ", ".join(f"{_lora_label(lora.name)}: {lora.hash}" for lora in self.loras) or None,
            "Lora weights": ", ".join(f"{_lora_label(lora.name)}: {tag_weight(lora.weight)}"
                                      for lora in self.loras) or None,
            "TI hashes": self.ti_hashes or None,
            "Version": self.version,
        }
        settings = ", ".join(f"{k}: {_quote(v)}" for k, v in fields_.items() if v not in (None, ""))
        lines = [with_tags(self.prompt, [written_tag(lora.name, lora.weight) for lora in self.loras])]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        lines.append(settings)
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"format": RECIPE_FORMAT, **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a recipe is a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "post" in values:
            values["post"] = tuple(step for step in values["post"] or () if isinstance(step, dict))
        if not isinstance(values.get("params", {}), dict):
            values["params"] = {}
        if "loras" in values:
            values["loras"] = _lora_records(values["loras"])
        if "controls" in values:
            values["controls"] = control_records(values["controls"])
        return cls(**values)

    @classmethod
    def from_parameters(cls, text: str) -> Recipe:
        """Read A1111 ``parameters`` text (Studio's own, or another tool's with the same layout)."""
        from studio.core.prompt_loras import without_tags, written_prompt  # it imports requests (this module)

        prompt, negative, settings = split_parameters(text)
        width, _, height = settings.get("Size", "0x0").partition("x")
        strength = settings.get("Denoising strength")
        hires = hires_from_settings(settings)
        blur, padding = settings.get("Mask blur"), settings.get("Masked area padding")
        # As the model encoded it; its tags are the LoRAs. Studio's own tags come off exactly as they were put on.
        written = written_prompt(prompt) if settings.get("Version", "").startswith("Studio ") else None
        recipe = cls(
            prompt=without_tags(prompt) if written is None else written,
            negative_prompt=negative,
            steps=int(settings.get("Steps", 0)),
            sampler=settings.get("Sampler", ""),
            cfg_scale=float(settings.get("CFG scale", 0)),
            seed=int(settings.get("Seed", -1)),
            width=int(width or 0),
            height=int(height or 0),
            model_name=settings.get("Model", ""),
            model_hash=settings.get("Model hash", ""),
            strength=None if strength is None or hires is not None else float(strength),
            mask_blur=None if blur is None else float(blur),
            inpaint_area=settings.get("Inpaint area"),
            masked_padding=None if padding is None else int(padding),
            masked_content=settings.get("Masked content"),
            version=settings.get("Version", ""),
            loras=parse_loras(prompt, settings),
            vae_name=settings.get("VAE", ""),
            vae_hash=settings.get("VAE hash", ""),
            ti_hashes=settings.get("TI hashes", ""),
            controls=controls_from_settings(settings),
        )
        return recipe if hires is None else recipe.with_hires(hires)


def parse_loras(prompt: str, settings: Mapping[str, str]) -> tuple[LoraRecord, ...]:
    """The LoRAs of an A1111-style text, each once, in the order they first appear: hashes from ``Lora hashes``,
    weights from ``Lora weights`` (Studio) or else the prompt's ``<lora:name:weight>`` tags (the UNet weight, which
    Studio applies). A tag and a list entry are one LoRA where the tag's name, with the marks A1111 leaves out of
    the lists taken out, is the entry's; the tag's name is kept, the full one. A weight that is not a number is 1."""
    from studio.core.prompt_loras import read_tags  # it imports requests, which imports this module

    found: dict[str, tuple[str, str, float | None]] = {}  # label: (name, hash, weight)
    for name, digest in _pairs(settings.get("Lora hashes", "")).items():
        found.setdefault(_lora_label(name), (name, digest, None))
    for name, value in _pairs(settings.get("Lora weights", "")).items():
        known, digest, weight = found.get(_lora_label(name), (name, "", None))
        found[_lora_label(name)] = (known, digest, finite_or(value, 1.0) if weight is None else weight)
    named_by_tag: set[str] = set()
    for tag in read_tags(prompt):
        label = _lora_label(tag.name)
        _, digest, weight = found.get(label, (tag.name, "", None))
        if label not in named_by_tag:
            named_by_tag.add(label)
            found[label] = (tag.name, digest, finite_or(tag.weight_text, 1.0) if weight is None else weight)
    return tuple(LoraRecord(name, digest, 1.0 if weight is None else weight)
                 for label, (name, digest, weight) in found.items() if label)


def _pairs(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in text.split(","):
        name, _, value = item.rpartition(":")
        if name.strip():
            result.setdefault(name.strip(), value.strip())
    return result


def _lora_label(name: str) -> str:
    # As A1111 does: its "name: hash, name: hash" list has no way to quote these; and a tag ends at ">".
    return name.replace(",", "").replace(":", "").replace(">", "")


def _lora_records(items: Any) -> tuple[LoraRecord, ...]:
    """LoRA entries of a recipe's JSON, which is untrusted: only well-formed ones are kept."""
    records = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        weight = item.get("weight", 1.0)
        if not is_finite_number(weight):
            continue
        digest = item.get("hash", "")
        records.append(LoraRecord(item["name"], digest if isinstance(digest, str) else "", float(weight)))
    return tuple(records)


def split_parameters(text: str) -> tuple[str, str, dict[str, str]]:
    """A1111 ``parameters`` text as A1111 reads it: (prompt, negative prompt, settings). The negative prompt
    starts at the first line that starts with "Negative prompt:" (the words elsewhere are part of a prompt), and
    the settings are the last line with "Steps:" (extensions such as Dynamic Prompts add lines after it, which are
    left out). ValueError for a quoted setting left unclosed."""
    lines = text.strip("\n").split("\n")
    last = next((i for i in range(len(lines) - 1, -1, -1) if "Steps:" in lines[i]), None)
    if last is None and _plugin_settings_line(lines[-1]):  # a plugin's picture: no steps were taken
        last = len(lines) - 1
    settings = parse_settings_line(lines[last]) if last is not None else {}
    body = lines[:last] if last is not None else lines
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in body:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].lstrip()
        (negative_lines if in_negative else prompt_lines).append(line)
    return "\n".join(prompt_lines), "\n".join(negative_lines), settings


def _plugin_settings_line(line: str) -> bool:
    """Studio's settings line for a plugin generator's picture, which has no "Steps:" (see Recipe.to_parameters)."""
    return "Generator: " in line and "Version: Studio " in line and "Seed: " in line


def plugin_settings_text(params: Mapping[str, Any]) -> str:
    """A plugin generator's parameters for a person: "stripes: 5, mode: normal, source: picture 100×80". A
    picture is named by its file's name where it was kept as its path (the history), else by its size."""
    return ", ".join(f"{name}: {_setting_value(value)}" for name, value in params.items())


def _setting_value(value: object) -> str:
    if isinstance(value, str) and value.startswith("<picture ") and value.endswith(">"):
        return "picture " + value[len("<picture "):-1].replace("x", "×")
    if isinstance(value, str) and PurePath(value).is_absolute() and PurePath(value).suffix:
        return PurePath(value).name  # a picture file the history keeps: its name says which
    if isinstance(value, float):
        return short_number(value)
    return str(value)


def parse_settings_line(line: str) -> dict[str, str]:
    """Split ``Key: value, Key: "quoted, value"`` into a dict, honouring A1111's JSON quoting."""
    result: dict[str, str] = {}
    i, n = 0, len(line)
    while i < n:
        colon = line.find(":", i)
        if colon < 0:
            break
        key = line[i:colon].strip()
        j = colon + 1
        while j < n and line[j] == " ":
            j += 1
        if j < n and line[j] == '"':
            value, end = json.JSONDecoder().raw_decode(line, j)
            j = end
        else:
            end = line.find(", ", j)
            end = n if end < 0 else end
            value, j = line[j:end], end
        result[key] = str(value)
        comma = line.find(",", j)
        i = n if comma < 0 else comma + 1
    return result


def _quote(value: object) -> str:
    text = str(value)
    # A1111 quotes values that would break its "k: v, k: v" line.
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:"\n') else text
