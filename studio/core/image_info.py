"""What an image file says about how it was made: Studio's own recipe, or another tool's metadata.

Studio's JSON chunk is read first (exact). Everything else goes through sd-parsers' parsers
(AUTOMATIC1111 and look-alikes, ComfyUI, InvokeAI, Fooocus, NovelAI); this module only gets the raw
text out of the file, with limits, and hands it over.

Metadata text is data: nothing here evaluates it. A text over ``MAX_TEXT_BYTES``, malformed JSON, or
a parser that fails is skipped with a note in ``ImageInfo.notes``, never a crash. Why the text is
pulled out here rather than by sd-parsers' ``ParserManager``:

- Pillow decodes PNG text chunks while opening the file and raises for a compressed chunk that
  expands past ``PngImagePlugin.MAX_TEXT_CHUNK`` (the whole image becomes unreadable), and keeps
  uncompressed chunks of any size; reading the chunks here skips just the offending one.
- ``ParserManager`` only catches ``ParserError``; a parser's ``TypeError`` on odd-but-valid JSON
  (``sd-metadata: []``) escapes it.
- sd-parsers' JPEG extractor caches the last UserComment by ``id(image)``, so a picture without
  metadata opened at a freed image's address is reported with the previous picture's prompt.
- Fooocus writes its JPEG/WebP UserComment in the main EXIF directory as plain text, where
  sd-parsers' extractor does not look.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


from studio.core.control import controls_from_settings
from studio.core.errors import ImageError
from studio.core.hires import HiresFix, hires_from_settings
from studio.core.image_text import PNG_SIGNATURE, read_exif_texts, read_png_texts
from studio.core.metadata import PARAMETERS_CHUNK, STUDIO_CHUNK, Recipe, parse_loras, split_parameters
from studio.core.prompt_loras import without_tags
from studio.core.requests import MAX_CFG, MAX_SEED, MAX_SIZE, MAX_STEPS, MIN_SIZE
from studio.core.sampler_names import missing_scheduler, studio_scheduler
from studio.core.safe_text import escaped
from studio.core.units import finite_or

# Tighter limits where sd-parsers is slow on long input (see _keep_sd_parsers_fast).
MAX_PARAMETERS_CHARS = 64 * 1024
MAX_SOURCE_CHARS = 256
MAX_COMFYUI_NODES = 1000
MAX_COMFYUI_SAMPLERS = 16
MAX_NOTES = 20
STUDIO_TOOL = "Studio"
JSON_KEYS = ("tool", "prompt", "negative_prompt", "seed", "steps", "cfg_scale", "sampler", "width", "height",
             "model")

# Texts that are JSON by format; a malformed one is dropped (with a note) before any parser sees it.
_JSON_CHUNKS = {"prompt": "ComfyUI", "workflow": "ComfyUI", "invokeai_metadata": "InvokeAI",
                "invokeai_graph": "InvokeAI", "sd-metadata": "InvokeAI"}


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
        ``loras``, ``vae`` and ``vae_hash``, and ``post`` (Studio's post-processing) only for a picture made with
        them, so every other picture keeps exactly the keys it always had."""
        values = {key: getattr(self, key) for key in JSON_KEYS}
        if self.controls:
            values["controls"] = [dict(record) for record in self.controls]
        if self.loras:
            values["loras"] = self.lora_records()
        if self.vae:
            values |= {"vae": self.vae, "vae_hash": self.vae_hash}
        if self.post:
            values["post"] = [dict(step) for step in self.post]
        return values


def inspect_image(path: str | os.PathLike[str]) -> ImageInfo:
    """Read what an image file says about how it was made.

    Raises ImageError (one sentence) for a missing, non-image, or truncated file; anything wrong
    with the metadata itself only adds a note.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image file.")
    if not path.is_file():
        raise ImageError(f"The image {path} does not exist.")
    notes: list[str] = []
    try:
        with open(path, "rb") as f:
            is_png = f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
            if is_png:
                size, texts = read_png_texts(f, path.name, notes)
            else:
                size, texts = read_exif_texts(path, notes)
    except OSError as exc:
        raise ImageError(f"The image {path.name} could not be read ({exc.strerror or exc}).") from None

    info = _from_studio(texts, notes) or _from_sd_parsers(texts, notes)
    if info is None:
        if texts:
            where = ", ".join(repr(key) for key in sorted(texts)) if is_png else "its EXIF UserComment"
            notes.append(f"No generation settings Studio knows were found in this image's metadata ({where}).")
        info = ImageInfo.unread()
    width, height = info.width, info.height
    if width is None or height is None:
        width, height = size
    if len(notes) > MAX_NOTES:
        notes[MAX_NOTES - 1:] = [f"... and {len(notes) - MAX_NOTES + 1} more notes like these."]
    return replace(info, width=width, height=height, notes=tuple(notes))


def recipe_fields(info: ImageInfo) -> dict[str, Any]:
    """The prompt-panel fields an image can fill: only values it has, and only ones Studio accepts.

    Keys are GenerationRequest's names (prompt, negative_prompt, steps, cfg_scale, seed, scheduler,
    width, height, hires (a HiresFix, or False for none), loras, vae) plus model_name and model_hash, for finding
    the model. With a prompt, the negative prompt, LoRAs and VAE are always there (empty for none). A value Studio
    cannot take (a seed past its range, ComfyUI's are 64-bit; a sampler it lacks) is left out: ``refused_values``
    says why.
    """
    refused = refused_values(info)
    fields: dict[str, Any] = {}
    if info.prompt is not None:
        fields["prompt"] = info.prompt
        # A loaded recipe replaces the panel's: one made without a negative prompt, LoRAs or VAE empties them, or the
        # previous picture's stay and the remake silently differs.
        fields["negative_prompt"] = info.negative_prompt or ""
        fields["loras"], fields["vae"] = list(info.loras), info.vae or ""
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


# --- Studio's own recipe -----------------------------------------------------------------------------

def _from_studio(texts: dict[str, str], notes: list[str]) -> ImageInfo | None:
    recipe = None
    if STUDIO_CHUNK in texts:
        try:
            recipe = Recipe.from_json(texts[STUDIO_CHUNK])
        except (ValueError, TypeError, AttributeError, RecursionError):
            from studio.core.recipe_faults import unread_note  # pydantic's TypeAdapter: only for a faulty recipe

            notes.append(unread_note(texts[STUDIO_CHUNK]))
    recipe_json = texts[STUDIO_CHUNK] if recipe is not None else None
    if recipe is None and PARAMETERS_CHUNK in texts:
        # Studio's A1111 text (JPEG/WebP carry only this): read exactly, quoting and all.
        try:
            candidate = Recipe.from_parameters(texts[PARAMETERS_CHUNK])
        except (ValueError, TypeError, IndexError):
            candidate = None
        if candidate is not None and candidate.version.startswith(f"{STUDIO_TOOL} "):
            recipe = candidate
    if recipe is not None and not recipe.describes_generation:
        steps = " > ".join(str(step.get("processor", "?")) for step in recipe.post) or "nothing"
        notes.append(f"Studio post-processed this picture ({steps}); Studio did not make it.")
        texts.pop(STUDIO_CHUNK)  # what made it may still be told by the tool that did
        return None
    if recipe is None:
        return None
    read = {name: reader(getattr(recipe, name)) for name, reader in _RECIPE_READERS.items()}
    info = ImageInfo(
        tool=STUDIO_TOOL,
        prompt=read["prompt"],
        negative_prompt=read["negative_prompt"],
        seed=read["seed"],
        steps=read["steps"],
        cfg_scale=read["cfg_scale"],
        sampler=read["sampler"] or None,
        width=read["width"] or None,
        height=read["height"] or None,
        model=read["model_name"] or None,
        model_hash=read["model_hash"] or None,
        scheduler=studio_scheduler(read["sampler"]),
        loras=tuple((lora.name, lora.weight) for lora in recipe.loras),
        lora_hashes=tuple(lora.hash for lora in recipe.loras),
        vae=read["vae_name"] or None,
        vae_hash=(read["vae_hash"] or None) if read["vae_name"] else None,
        hires=recipe.hires,
        controls=recipe.controls,
        post=recipe.post,
    )
    if recipe_json is not None:
        # A value the readers took is never named: they take "25" as 25 steps, where pydantic's strict check would not.
        used = {name for name, value in read.items() if value is not None}
        used |= {"loras"} if info.loras else set()
        used |= {"controls"} if info.controls else set()
        used |= {"hires_scale", "hires_steps", "hires_strength", "hires_upscaler"} if info.hires else set()
        dropped = {name for name, value in read.items() if value is None}
        from studio.core.recipe_faults import wrong_kinds_note  # not on the way to the window's first frame

        notes += filter(None, [wrong_kinds_note(recipe_json, dropped=dropped, used=used)])
    return info


# --- other tools, through sd-parsers ------------------------------------------------------------------

def _from_sd_parsers(texts: dict[str, str], notes: list[str]) -> ImageInfo | None:
    if not texts:
        return None
    from sd_parsers import ParserManager
    from sd_parsers.exceptions import ParserError

    texts = dict(texts)
    for key, tool in _JSON_CHUNKS.items():
        if key in texts and not _is_json(texts[key]):
            notes.append(f"The {tool} {key!r} text in this image is not valid JSON; it was ignored.")
            del texts[key]
    # NovelAI's Comment is JSON; other tools' Comment is plain text ("Created with GIMP").
    if texts.get("Comment", "").lstrip().startswith("{") and not _is_json(texts["Comment"]):
        notes.append("The NovelAI 'Comment' text in this image is not valid JSON; it was ignored.")
        del texts["Comment"]
    _keep_sd_parsers_fast(texts, notes)

    # The same parsers, in the same order, as ParserManager.parse, each given the text found above.
    for parser in ParserManager().managed_parsers:
        try:
            result = parser.parse(dict(texts))
        except ParserError:
            continue
        except Exception as exc:  # noqa: BLE001 - a parser's bug on odd input: note it, try the next
            notes.append(f"The {parser.generator.value} reader failed on this image's metadata "
                         f"({type(exc).__name__}); it was skipped.")
            continue
        try:
            info = _info_from_prompt_info(result, notes)
            if info.model is None:
                info = replace(info, model=_model_named_elsewhere(info.tool, result.metadata, texts))
            parameters = texts.get(PARAMETERS_CHUNK, "")
            if result.generator.value == "AUTOMATIC1111" and parameters.strip():
                return _as_a1111_reads(info, parameters, notes)
            return info
        except Exception as exc:  # noqa: BLE001 - sd-parsers' result had a shape nobody expected
            notes.append(f"The {parser.generator.value} metadata could not be read ({type(exc).__name__}).")
    # Fooocus' 'parameters' is JSON, A1111's is text (which may start with "{" too): judged only now.
    parameters = texts.get(PARAMETERS_CHUNK, "").strip()
    looks_json = parameters.startswith("{") and parameters.endswith("}")
    if looks_json and not _is_json(parameters):
        notes.append("The 'parameters' text in this image looks like JSON but is not valid; it was ignored.")
    elif parameters and not looks_json:
        # A1111's layout, on which sd-parsers failed: "Negative prompt:" twice in a line, or no settings line at all,
        # where A1111 reads the whole text as the prompt (and its negative prompt from a "Negative prompt:" line).
        unread = ImageInfo.unread("AUTOMATIC1111")
        info = _as_a1111_reads(unread, parameters, notes)
        if info is not unread:
            notes[:] = [note for note in notes if not note.startswith("The AUTOMATIC1111 reader failed")]
            return info
    return None


def _keep_sd_parsers_fast(texts: dict[str, str], notes: list[str]) -> None:
    """Hold back input on which sd-parsers 0.6 takes seconds to hours (measured), and fill a gap.

    - AUTOMATIC1111: a ``Hashes: {`` regex and a per-line split are quadratic in the text (550 KB
      of repeated "Hashes: {" took 39 s); real parameters texts are a few KB.
    - NovelAI: the ``Source`` regex is quadratic in spaces (8 KB took 0.7 s, 1 MB would take hours).
    - ComfyUI: walking the graph costs about samplers x depth squared (500 samplers on a
      500-node chain took 14 s; 16 samplers on a 1,000-node chain, the most let through, about 2 s).
    - ComfyUI images saved without a ``workflow`` (API runs) carry the links in the ``prompt``
      graph itself; sd-parsers needs them as a workflow link list, so one is derived here.
    """
    parameters = texts.get(PARAMETERS_CHUNK)
    if parameters is not None and len(parameters) > MAX_PARAMETERS_CHARS:
        notes.append(f"The 'parameters' text is over {MAX_PARAMETERS_CHARS // 1024} KB, too long to be "
                     "generation settings; it was ignored.")
        del texts[PARAMETERS_CHUNK]
    source = texts.get("Source")
    if source is not None and len(source) > MAX_SOURCE_CHARS:
        notes.append("The 'Source' text is too long to be a model name; it was ignored.")
        texts["Source"] = ""
    if "prompt" in texts:
        graph = json.loads(texts["prompt"])  # checked above
        nodes = graph.values() if isinstance(graph, dict) else ()
        samplers = sum(1 for node in nodes if isinstance(node, dict) and isinstance(node.get("inputs"), dict)
                       and {"sampler_name", "steps", "cfg"} <= node["inputs"].keys())
        if len(nodes) > MAX_COMFYUI_NODES or samplers > MAX_COMFYUI_SAMPLERS:
            notes.append(f"The ComfyUI graph has {len(nodes)} nodes and {samplers} samplers, more than "
                         f"Studio reads ({MAX_COMFYUI_NODES} and {MAX_COMFYUI_SAMPLERS}); it was ignored.")
            texts.pop("prompt")
            texts.pop("workflow", None)
        elif "workflow" not in texts and isinstance(graph, dict):
            texts["workflow"] = json.dumps({"links": _comfyui_links(graph)})


def _comfyui_links(graph: dict[Any, Any]) -> list[list[Any]]:
    """A ComfyUI workflow's link list ([id, from node, slot, to node, slot, type]) from an API graph,
    whose inputs hold links as [node id, output slot]. The type is the input's name in capitals, which
    is what sd-parsers looks at ("CLIP" links are not followed for prompts)."""
    links: list[list[Any]] = []
    for target, node in graph.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
                    and isinstance(value[1], int) and not isinstance(value[1], bool)):
                links.append([len(links), str(value[0]), value[1], str(target), 0, str(name).upper()])
    return links


def _model_named_elsewhere(tool: str | None, metadata: Any, texts: dict[str, str]) -> str | None:
    """The model where sd-parsers 0.6 misses it: InvokeAI 4 and 5 name it ``model.name`` (3.x ``model_name``), and
    a ComfyUI graph with a LoRA loader between checkpoint and sampler links it through the loader (its one
    checkpoint loader names it)."""
    if tool == "InvokeAI" and "invokeai_metadata" in texts:
        data = json.loads(texts["invokeai_metadata"])  # checked to be JSON before any parser saw it
        model = data.get("model") if isinstance(data, dict) else None
        return _text(model.get("name")) if isinstance(model, dict) else None
    if tool == "ComfyUI" and isinstance(metadata, dict):
        names = {node.get("ckpt_name") for kind, nodes in metadata.items() if "Checkpoint" in str(kind)
                 and isinstance(nodes, list) for node in nodes if isinstance(node, dict)}
        names.discard(None)
        return names.pop() if len(names) == 1 and isinstance(next(iter(names)), str) else None
    return None


def _as_a1111_reads(info: ImageInfo, parameters: str, notes: list[str]) -> ImageInfo:
    """An A1111-style text read by A1111's own rules (``metadata.split_parameters``), where sd-parsers 0.6 bends
    them: it starts the negative prompt at "Negative prompt:" anywhere in a line, and splits the settings line at
    every comma, in quoted values too (a model "Realistic, Vision V5", an ADetailer prompt with "Seed: 9" in it).
    LoRAs come from ``Lora hashes`` and the prompt's ``<lora:name:weight>`` tags, which are taken out of the prompt."""
    try:
        prompt, negative, settings = split_parameters(parameters)
    except ValueError:
        notes.append("A quoted value in this image's settings line is never closed; the settings were read as far "
                     "as they could be, and its LoRAs were not.")
        return info
    records = parse_loras(prompt, settings)
    prompt = without_tags(prompt)  # as A1111 encoded it: its tags come back once, as the LoRAs
    info = replace(info, prompt=prompt or None, negative_prompt=negative or None,
                   loras=tuple((lora.name, lora.weight) for lora in records),
                   lora_hashes=tuple(lora.hash for lora in records))
    if not settings:
        return info
    width, height = _size(settings)
    sampler = settings.get("Sampler")
    return replace(info, seed=_int(settings.get("Seed")), steps=_int(settings.get("Steps")),
                   cfg_scale=_float(settings.get("CFG scale")), sampler=sampler, width=width, height=height,
                   model=settings.get("Model"), model_hash=settings.get("Model hash"),
                   scheduler=studio_scheduler(sampler, settings.get("Schedule type")),
                   schedule=settings.get("Schedule type"),
                   hires=hires_from_settings(settings), controls=controls_from_settings(settings),
                   clip_skip=_int(settings.get("Clip skip")))


def _info_from_prompt_info(result: Any, notes: list[str]) -> ImageInfo:
    metadata = result.metadata if isinstance(result.metadata, dict) else {}
    samplers = list(result.samplers)
    if len(samplers) > 1:
        notes.append(f"This image was made with {len(samplers)} sampler passes; the first one's settings are shown.")
    sampler = samplers[0] if samplers else None
    params = sampler.parameters if sampler is not None and isinstance(sampler.parameters, dict) else {}

    def param(*keys: str) -> Any:
        for key in keys:
            for source in (params, metadata):
                if source.get(key) is not None:
                    return source[key]
        return None

    tool = result.generator.value
    version = metadata.get("Version") or metadata.get("version")
    if isinstance(version, str) and version.startswith("Fooocus"):
        tool = "Fooocus"  # Fooocus' A1111-style metadata scheme
    sampler_name = _text(sampler.name) if sampler is not None else None
    if sampler_name == "unknown":  # sd-parsers' placeholder for a ComfyUI sampler without a name
        sampler_name = None
    model = sampler.model if sampler is not None else None
    width, height = _size(metadata)
    return ImageInfo(
        tool=tool,
        prompt=_joined(result.prompts),
        negative_prompt=_joined(result.negative_prompts),
        seed=_int(param("seed", "noise_seed")),
        steps=_int(param("steps")),
        cfg_scale=_float(param("cfg_scale", "cfg", "scale", "guidance_scale")),
        sampler=sampler_name,
        width=width,
        height=height,
        model=_text(model.name) if model is not None else None,
        model_hash=_text(model.hash) if model is not None else None,
        scheduler=studio_scheduler(sampler_name, _text(param("scheduler", "noise_schedule"))),
        schedule=_text(param("scheduler", "noise_schedule")),
    )


def _size(metadata: dict[Any, Any]) -> tuple[int | None, int | None]:
    """The generation size from what sd-parsers leaves in its metadata, each tool its own way."""
    for key, pattern in (("Size", r"\s*(\d+)\s*x\s*(\d+)\s*"),  # A1111
                         ("resolution", r"\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*")):  # Fooocus
        value = metadata.get(key)
        if isinstance(value, str) and (match := re.fullmatch(pattern, value)):
            return _positive(match.group(1)), _positive(match.group(2))
    if "width" in metadata and "height" in metadata:  # InvokeAI, NovelAI
        return _positive(metadata["width"]), _positive(metadata["height"])
    sizes = set()  # ComfyUI: the one empty-latent node, if there is exactly one
    for key, nodes in metadata.items():
        if isinstance(key, str) and "Latent" in key and isinstance(nodes, list):
            for node in nodes:
                if isinstance(node, dict):
                    sizes.add((_positive(node.get("width")), _positive(node.get("height"))))
    if len(sizes) == 1:
        return sizes.pop()
    return None, None


# --- small conversions: metadata values are untrusted -------------------------------------------------------

def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _joined(prompts: Any) -> str | None:
    values = [p.value for p in prompts if isinstance(getattr(p, "value", None), str)]
    return ", ".join(values) if values else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and len(value) <= 40:
        try:
            return int(value.strip())
        except ValueError:
            number = _float(value)
            return int(number) if number is not None and number.is_integer() else None
    return None


def _positive(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and number > 0 else None


def _float(value: Any) -> float | None:
    return None if isinstance(value, str) and len(value) > 40 else finite_or(value, None)


# How each value of Studio's recipe that an ImageInfo shows is read (untrusted: None where it cannot be used).
_RECIPE_READERS: dict[str, Callable[[Any], Any]] = {
    "prompt": _text, "negative_prompt": _text, "steps": _int, "sampler": _text, "cfg_scale": _float, "seed": _int,
    "width": _int, "height": _int, "model_name": _text, "model_hash": _text, "vae_name": _text, "vae_hash": _text}
