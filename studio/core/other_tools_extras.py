"""What sd-parsers does not read from ComfyUI, InvokeAI and Fooocus pictures: their LoRAs, VAE and clip skip,
read from the tool's own JSON where it says them clearly, and a note naming what Studio does not carry over."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from studio.core.image_info import ImageInfo
from studio.core.metadata import PARAMETERS_CHUNK
from studio.core.metadata_values import as_float, as_int, as_text
from studio.core.model_library import without_weights_suffix

_COMFYUI_LORA_LOADERS = ("LoraLoader", "LoraLoaderModelOnly")
_COMFYUI_CHECKPOINT = "Checkpoint"  # CheckpointLoaderSimple, CheckpointLoader|pysssss…: the model's own VAE
_FOOOCUS_LORA = re.compile(r"lora_combined_(\d+)")


def weights_name(name: object) -> str | None:
    """A weights file's name as Studio's recipes name it: without its extension (A1111 writes "VAE:
    vae-ft-mse-840000-ema-pruned.safetensors", ComfyUI "add_detail.safetensors"); None for none."""
    return without_weights_suffix((as_text(name) or "").strip()) or None


def with_tool_extras(info: ImageInfo, texts: dict[str, str], notes: list[str]) -> ImageInfo:
    """info with the LoRAs, VAE and clip skip its tool's JSON says; notes get what else it used that Studio lacks.
    JSON shaped other than the tool writes it leaves info as it is, with a note, never losing the prompt and model."""
    readers = {"ComfyUI": ("prompt", _comfyui), "InvokeAI": ("invokeai_metadata", _invokeai),
               "Fooocus": (PARAMETERS_CHUNK, _fooocus)}
    key, reader = readers.get(info.tool or "", ("", None))
    if reader is None or key not in texts or (info.tool == "Fooocus" and not texts[key].lstrip().startswith("{")):
        return info
    try:
        data = json.loads(texts[key])
    except ValueError:  # Fooocus' parameters are only checked to be JSON where sd-parsers reads them
        return info
    if not isinstance(data, dict):
        return info
    try:
        return reader(info, data, notes)
    except (ValueError, TypeError, AttributeError):  # a value of another type than the tool writes
        notes.append(_unreadable(info.tool or ""))
        return info


def _unreadable(tool: str) -> str:
    return f"Studio could not read the LoRAs and VAE in this picture's {tool} metadata, so they were not carried over."


def _comfyui(info: ImageInfo, graph: dict[Any, Any], notes: list[str]) -> ImageInfo:
    """The LoRA loaders on the first sampler's model link back to its checkpoint, in the order they apply; the
    VAE its decoder takes (the checkpoint's own, or a VAELoader's); its one CLIPSetLastLayer's clip skip."""
    nodes = {str(key): node for key, node in graph.items() if isinstance(node, dict)
             and isinstance(node.get("inputs"), dict)}

    def linked(node: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        link = node["inputs"].get(name) if node is not None else None
        return nodes.get(str(link[0])) if isinstance(link, list) and len(link) == 2 else None

    sampler = next((n for n in nodes.values() if {"sampler_name", "steps", "cfg", "model"} <= n["inputs"].keys()),
                   None)
    chain: list[dict[str, Any]] = []
    node = linked(sampler, "model")
    while node is not None and node.get("class_type") in _COMFYUI_LORA_LOADERS and all(node is not n for n in chain):
        chain.append(node)
        node = linked(node, "model")
    loras = []
    for node in reversed(chain):  # from the checkpoint out, the order they apply in
        name, weight = weights_name(node["inputs"].get("lora_name")), as_float(node["inputs"].get("strength_model"))
        if name and weight is not None:
            loras.append((name, weight))
            clip = as_float(node["inputs"].get("strength_clip"))
            if clip is not None and clip != weight:
                notes.append(f"The LoRA {name!r} had text encoder strength {clip:g} apart from its model strength "
                             f"{weight:g}; Studio applies {weight:g} to both.")
    others = sorted({str(n.get("class_type")) for n in nodes.values() if "lora" in str(n.get("class_type")).lower()
                     and all(n is not used for used in chain)})
    if others:
        notes.append(f"Studio did not carry over its LoRA nodes other than a LoraLoader chain into the sampler "
                     f"({', '.join(others)}).")
    decoder = next((n for n in nodes.values() if n.get("class_type") == "VAEDecode"), None)
    vae_node, vae = linked(decoder, "vae"), info.vae
    if vae_node is not None and vae_node.get("class_type") == "VAELoader":
        vae = weights_name(vae_node["inputs"].get("vae_name"))
    elif vae_node is not None and _COMFYUI_CHECKPOINT in str(vae_node.get("class_type")):
        vae = ""  # the checkpoint's own
    layers = [as_int(n["inputs"].get("stop_at_clip_layer")) for n in nodes.values()
              if n.get("class_type") == "CLIPSetLastLayer"]
    clip_skip = -layers[0] if len(layers) == 1 and layers[0] is not None and layers[0] < 0 else info.clip_skip
    return replace(info, loras=tuple(loras), lora_hashes=("",) * len(loras), vae=vae, clip_skip=clip_skip)


def _invokeai(info: ImageInfo, data: dict[str, Any], notes: list[str]) -> ImageInfo:
    """InvokeAI 3 names a LoRA {"lora": {"model_name"}, "weight"}, 4 and later {"model": {"name"}, "weight"}; the
    VAE likewise. Its clip_skip counts the layers skipped (A1111's Clip skip less one)."""
    loras = []
    named = data.get("loras") or []
    if not isinstance(named, list):
        notes.append(_unreadable("InvokeAI"))
    for item in named if isinstance(named, list) else ():
        model = (item.get("model") or item.get("lora")) if isinstance(item, dict) else None
        name = _invokeai_name(model)
        weight = as_float(item.get("weight")) if isinstance(item, dict) else None
        if name and weight is not None:
            loras.append((name, weight))
    vae = _invokeai_name(data.get("vae")) or ""  # none named: the model's own
    skipped = as_int(data.get("clip_skip"))
    unused = [label for key, label in (("controlnets", "ControlNets"), ("ipAdapters", "IP-Adapters"),
                                       ("t2iAdapters", "T2I-Adapters"), ("regions", "regional prompts"))
              if data.get(key)]
    if data.get("hrf_enabled"):
        unused.append("high resolution fix")
    if unused:
        notes.append(f"Studio did not carry over its InvokeAI {', '.join(unused)}.")
    return replace(info, loras=tuple(loras), lora_hashes=("",) * len(loras), vae=vae,
                   clip_skip=skipped + 1 if skipped is not None and skipped >= 0 else info.clip_skip)


def _invokeai_name(model: object) -> str | None:
    return weights_name(model.get("name") or model.get("model_name")) if isinstance(model, dict) else None


def _fooocus(info: ImageInfo, data: dict[str, Any], notes: list[str]) -> ImageInfo:
    """Fooocus writes each LoRA as "lora_combined_N": "name.safetensors : weight", its VAE as "Default (model)" or a
    file name, and clip skip as A1111 counts it. Its styles and prompt expansion change the prompt it used."""
    loras = []
    for key in sorted((k for k in data if _FOOOCUS_LORA.fullmatch(k)), key=lambda k: int(k.rpartition("_")[2])):
        name, colon, weight = str(data[key]).rpartition(" : ")
        if colon and weights_name(name) and as_float(weight.strip()) is not None:
            loras.append((weights_name(name) or "", as_float(weight.strip()) or 0.0))
    vae = as_text(data.get("vae"))
    unused = []
    styles = as_text(data.get("styles"))
    if styles and styles.strip("[] "):
        unused.append(f"styles ({styles.strip('[]')})")
    if data.get("full_prompt"):
        unused.append("full prompt made by its styles and prompt expansion (the typed prompt is loaded)")
    if as_text(data.get("refiner_model")) not in (None, "None"):
        unused.append(f"refiner {data['refiner_model']}")
    if unused:
        notes.append(f"Studio did not carry over its Fooocus {', its '.join(unused)}.")
    return replace(info, loras=tuple(loras), lora_hashes=("",) * len(loras),
                   vae="" if vae in (None, "Default (model)", "None") else weights_name(vae),
                   clip_skip=as_int(data.get("clip_skip")) if data.get("clip_skip") is not None else info.clip_skip)


# A1111 settings Studio has nothing like, as the sentence names them; a key that starts with "ADetailer " counts too.
_A1111_UNUSED = {"Variation seed": "variation seed", "Variation seed strength": "variation seed",
                 "Tiling": "tiling", "Face restoration": "face restoration", "Refiner": "refiner",
                 "Refiner switch at": "refiner", "Template": "Dynamic Prompts template",
                 "Negative Template": "Dynamic Prompts template"}
_COMPOSABLE_AND = re.compile(r"\bAND\b")
_WILDCARD = re.compile(r"__[\w.*/-]+__")


def a1111_unused_notes(parameters: str, prompt: str, negative: str, settings: dict[str, str]) -> list[str]:
    """Sentences naming the A1111 settings Studio did not carry over, and the prompt syntax it reads as words:
    ``AND`` (composable diffusion) and ``__wildcard__`` (Dynamic Prompts)."""
    # Dynamic Prompts writes its template in the settings line or on a line of its own after it.
    after = parameters.strip("\n").split("\n")
    after = after[max((i for i, line in enumerate(after) if "Steps:" in line), default=len(after)) + 1:]
    keys = [*settings, *(line.partition(":")[0] for line in after)]
    unused = dict.fromkeys(_A1111_UNUSED[key] if key in _A1111_UNUSED else "ADetailer" for key in keys
                           if key in _A1111_UNUSED or key.startswith("ADetailer "))
    *first, last = [*unused] or [""]
    notes = [f"Studio did not carry over its {', '.join(first) + ' and ' if first else ''}{last}."] if last else []
    syntax = [what for what, pattern in (("AND (composable diffusion)", _COMPOSABLE_AND),
                                         ("__wildcards__", _WILDCARD))
              if pattern.search(prompt) or pattern.search(negative)]
    if syntax:
        them = "them" if len(syntax) > 1 else "it"
        notes.append(f"Its prompt uses A1111's {' and '.join(syntax)}; Studio reads {them} as plain words.")
    return notes
