"""Other tools' metadata (AUTOMATIC1111 and look-alikes, ComfyUI, InvokeAI, Fooocus, NovelAI), read through
sd-parsers' parsers, with the limits and fixes that keep them fast and right (see
``studio.core.image_inspection`` for why Studio gets the text out of the file itself)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from studio.core.control import controls_from_settings
from studio.core.hires import hires_from_settings
from studio.core.image_info import ImageInfo
from studio.core.metadata import PARAMETERS_CHUNK, parse_loras, split_parameters
from studio.core.metadata_values import as_float, as_int, as_positive, as_text, is_json
from studio.core.other_tools_extras import a1111_unused_notes, weights_name, with_tool_extras
from studio.core.prompt_loras import without_tags
from studio.core.sampler_names import studio_scheduler

# Tighter limits where sd-parsers is slow on long input (see _keep_sd_parsers_fast).
MAX_PARAMETERS_CHARS = 64 * 1024
MAX_SOURCE_CHARS = 256
MAX_COMFYUI_NODES = 1000
MAX_COMFYUI_SAMPLERS = 16

# Texts that are JSON by format; a malformed one is dropped (with a note) before any parser sees it.
_JSON_CHUNKS = {"prompt": "ComfyUI", "workflow": "ComfyUI", "invokeai_metadata": "InvokeAI",
                "invokeai_graph": "InvokeAI", "sd-metadata": "InvokeAI"}


def from_other_tools(texts: dict[str, str], notes: list[str]) -> ImageInfo | None:
    if not texts:
        return None
    from sd_parsers import ParserManager
    from sd_parsers.exceptions import ParserError

    texts = dict(texts)
    for key, tool in _JSON_CHUNKS.items():
        if key in texts and not is_json(texts[key]):
            notes.append(f"The {tool} {key!r} text in this image is not valid JSON; it was ignored.")
            del texts[key]
    # NovelAI's Comment is JSON; other tools' Comment is plain text ("Created with GIMP").
    if texts.get("Comment", "").lstrip().startswith("{") and not is_json(texts["Comment"]):
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
            return with_tool_extras(info, texts, notes)
        except Exception as exc:  # noqa: BLE001 - sd-parsers' result had a shape nobody expected
            notes.append(f"The {parser.generator.value} metadata could not be read ({type(exc).__name__}).")
    # Fooocus' 'parameters' is JSON, A1111's is text (which may start with "{" too): judged only now.
    parameters = texts.get(PARAMETERS_CHUNK, "").strip()
    looks_json = parameters.startswith("{") and parameters.endswith("}")
    if looks_json and not is_json(parameters):
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
        return as_text(model.get("name")) if isinstance(model, dict) else None
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
    notes += a1111_unused_notes(parameters, prompt, negative, settings)
    prompt = without_tags(prompt)  # as A1111 encoded it: its tags come back once, as the LoRAs
    info = replace(info, prompt=prompt or None, negative_prompt=negative or None,
                   loras=tuple((lora.name, lora.weight) for lora in records),
                   lora_hashes=tuple(lora.hash for lora in records))
    if not settings:
        return info
    width, height = _size(settings)
    sampler = settings.get("Sampler")
    return replace(info, seed=as_int(settings.get("Seed")), steps=as_int(settings.get("Steps")),
                   cfg_scale=as_float(settings.get("CFG scale")), sampler=sampler, width=width, height=height,
                   model=settings.get("Model"), model_hash=settings.get("Model hash"),
                   scheduler=studio_scheduler(sampler, settings.get("Schedule type")),
                   schedule=settings.get("Schedule type"),
                   hires=hires_from_settings(settings), controls=controls_from_settings(settings),
                   clip_skip=as_int(settings.get("Clip skip")), vae=(vae := weights_name(settings.get("VAE"))),
                   vae_hash=settings.get("VAE hash") if vae else None)


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
    sampler_name = as_text(sampler.name) if sampler is not None else None
    if sampler_name == "unknown":  # sd-parsers' placeholder for a ComfyUI sampler without a name
        sampler_name = None
    model = sampler.model if sampler is not None else None
    width, height = _size(metadata)
    return ImageInfo(
        tool=tool,
        prompt=_joined(result.prompts),
        negative_prompt=_joined(result.negative_prompts),
        seed=as_int(param("seed", "noise_seed")),
        steps=as_int(param("steps")),
        cfg_scale=as_float(param("cfg_scale", "cfg", "scale", "guidance_scale")),
        sampler=sampler_name,
        width=width,
        height=height,
        model=as_text(model.name) if model is not None else None,
        model_hash=as_text(model.hash) if model is not None else None,
        scheduler=studio_scheduler(sampler_name, as_text(param("scheduler", "noise_schedule"))),
        schedule=as_text(param("scheduler", "noise_schedule")),
    )


def _size(metadata: dict[Any, Any]) -> tuple[int | None, int | None]:
    """The generation size from what sd-parsers leaves in its metadata, each tool its own way."""
    for key, pattern in (("Size", r"\s*(\d+)\s*x\s*(\d+)\s*"),  # A1111
                         ("resolution", r"\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*")):  # Fooocus
        value = metadata.get(key)
        if isinstance(value, str) and (match := re.fullmatch(pattern, value)):
            return as_positive(match.group(1)), as_positive(match.group(2))
    if "width" in metadata and "height" in metadata:  # InvokeAI, NovelAI
        return as_positive(metadata["width"]), as_positive(metadata["height"])
    sizes = set()  # ComfyUI: the one empty-latent node, if there is exactly one
    for key, nodes in metadata.items():
        if isinstance(key, str) and "Latent" in key and isinstance(nodes, list):
            for node in nodes:
                if isinstance(node, dict):
                    sizes.add((as_positive(node.get("width")), as_positive(node.get("height"))))
    if len(sizes) == 1:
        return sizes.pop()
    return None, None


def _joined(prompts: Any) -> str | None:
    values = [p.value for p in prompts if isinstance(getattr(p, "value", None), str)]
    return ", ".join(values) if values else None
