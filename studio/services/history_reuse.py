"""Using a history entry again: the exact request that remakes it, and what it was made with (whether those files
changed: ``changed_files``)."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image

from studio.core.control import ControlGuide, control_records, resolved_controls
from studio.core.errors import InvalidRequest, StudioError, and_list
from studio.core.hires import HiresFix
from studio.core.images import open_image, read_recipe
from studio.core.inpaint import InpaintOptions
from studio.core.mask import mask_from_image
from studio.core.metadata import LoraRecord, Recipe
from studio.core.model_library import WEIGHT_SUFFIXES
from studio.core.requests import DEFAULT_SCHEDULER, GenerationRequest, LoraChoice, PostStep
from studio.core.settings import Settings
from studio.core.settings_sections import PostStepSetting
from studio.core.style_weights import weights_used_by
from studio.plugin_host.registry import POSTPROCESSOR, Registry
from studio.services.history_store import HistoryEntry
from studio.services.outputs import is_kept_control


def request_for_entry(entry: HistoryEntry, settings: Settings | None = None, *,
                      label: str | None = None) -> GenerationRequest:
    """The request that runs entry again exactly: same model path, seed and settings, one image,
    its own source picture and mask. InvalidRequest (one sentence) when a file it needs is gone; ``label`` names the
    entry in it ("history entry 3" unless given: the window names it as its gallery does). A gone model is said by
    its name first, the path last: the window's status line cuts a long sentence off, and the path would fill it.

    How it runs on this machine (memory, speed) is the person's: from settings, their current ones, as a
    job started from the window or ``studio generate`` (the request's defaults only when none are given); but the
    precision the entry recorded is asked for, so the CPU computes in it where it can, whatever Speed says."""
    label = label or f"history entry {entry.id}"
    if entry.generator == "diffusers" and not entry.model_path:
        raise InvalidRequest(f"No model is recorded in {label}, so it cannot be run again.")
    if entry.generator == "diffusers" and (name := gone_model(entry)):
        raise InvalidRequest(f"The model {name} is gone, so {label} cannot be run again; {entry.model_path} no "
                             "longer exists.")
    init_image = _source(entry.source_image_path, "source picture", label)
    mask = _source(entry.source_mask_path, "mask", label)
    if mask is not None:
        if init_image is None:
            raise InvalidRequest(f"The source picture of {label} is not recorded, only its mask.")
        mask = Image.fromarray(mask_from_image(mask), "L")
    known = {f.name for f in fields(InpaintOptions)}
    inpaint_params = entry.params.get("inpaint")
    inpaint = InpaintOptions(**{k: v for k, v in inpaint_params.items() if k in known}) \
        if isinstance(inpaint_params, dict) else InpaintOptions()
    loras, vae = loras_and_vae(entry)
    return GenerationRequest(
        model=entry.model_path, prompt=entry.prompt, negative_prompt=entry.negative_prompt,
        width=entry.width or 512, height=entry.height or 512, steps=entry.steps, cfg_scale=entry.cfg_scale,
        seed=entry.seed, scheduler=entry.sampler or DEFAULT_SCHEDULER, batch_count=1,
        init_image=init_image, strength=0.75 if entry.strength is None else entry.strength, mask=mask,
        inpaint=inpaint, generator=entry.generator,
        params=_rerun_params(entry.params.get("generator_params"), "its generator's", label),
        plugin=plugin if isinstance(plugin := entry.params.get("plugin"), str) else "",
        post=tuple(PostStep(s["processor"], _rerun_params(s.get("params"), f"its {s['processor']!r} step's", label),
                            _strength(s.get("strength"))) for s in _post_records(entry.params.get("post"))),
        loras=loras, vae=vae, hires=HiresFix.from_record(entry.params.get("hires")),
        controls=control_guides(entry, label),
        precision=precision if isinstance(precision := entry.params.get("precision"), str) else "",
        **({"memory": settings.memory, "speed": settings.speed} if settings is not None else {}),
    )


def gone_model(entry: HistoryEntry) -> str | None:
    """The name of the Stable Diffusion model the entry was made with when its file or folder is gone, else None.
    A stat: run it off the window's thread."""
    if entry.generator not in ("", "diffusers"):
        return None
    return missing_model(entry.model_path, entry.model_name)


def missing_model(model_path: str | None, name: str = "") -> str | None:
    """The name of the model at ``model_path`` (``name``, else its checkpoint's stem or its folder's whole name)
    when that file or folder is gone, else None: a history entry's, or the one the model list names for a dropped
    picture (the list, read before it went, still shows it). A stat: run it off the window's thread."""
    if not model_path or (path := Path(model_path)).exists():
        return None
    return name or (path.stem if path.suffix.lower() in WEIGHT_SUFFIXES else path.name)


def recorded_post(entry: HistoryEntry) -> tuple[PostStepSetting, ...]:
    """The post-processing chain the entry was made with, as recorded (none for an entry made without)."""
    return recorded_chain(entry.params.get("post"))


def recorded_chain(records: object) -> tuple[PostStepSetting, ...]:
    """A post-processing chain as a history entry's params or a picture's recipe record it (a list of
    ``{"processor", "params", "strength"}``): the steps that can be read, pictures only noted left out."""
    return tuple(PostStepSetting(processor=step["processor"], params=_recorded(step.get("params")),
                                 strength=_strength(step.get("strength"))) for step in _post_records(records))


def _post_records(records: object) -> list[dict[str, Any]]:
    return [step for step in records if isinstance(step, dict) and isinstance(step.get("processor"), str)] \
        if isinstance(records, list | tuple) else []


class RecordedChain(NamedTuple):
    """The part of an entry's post-processing chain this Studio can set up, and a sentence for each step not."""
    steps: tuple[PostStepSetting, ...]
    notes: list[str]


def usable_chain(records: object, registry: Registry, style_dir: Path) -> RecordedChain:
    """A recorded chain (a history entry's ``params["post"]``, a picture's ``Recipe.post``) for Load parameters or a
    dropped picture: a step whose post-processor is not installed and enabled is left out;
    one of Studio's style transfers whose weight files are missing in ``style_dir`` is kept (Generate makes the
    picture without it until they are imported), and both are said, as is a step's picture that was not kept (a
    canvas picture recorded only by its size). Stats files: run it off the window's thread."""
    steps, notes = [], []
    for step, record in zip(recorded_chain(records), _post_records(records), strict=True):
        if not registry.has(POSTPROCESSOR, step.processor):
            notes.append(f"Its post-processing step {step.processor!r} was left out of the chain: no installed and "
                         "enabled plugin provides it.")
            continue
        steps.append(step)
        contribution = registry.get(POSTPROCESSOR, step.processor)
        names = [w.name for w in weights_used_by(step.processor)] if contribution.builtin else []
        if missing := [name for name in names if not (style_dir / name).is_file()]:
            notes.append(f"Its {contribution.title} step needs {and_list(missing)}, missing in {style_dir}: until "
                         f"Filters › Style Weights… imports {'it' if len(missing) == 1 else 'them'}, pictures are "
                         "made without that step.")
        if isinstance(record.get("params"), dict) and any(k not in step.params for k in record["params"]):
            notes.append(f"Its {contribution.title} step's picture was not kept; choose one for it in the "
                         "post-processing chain.")
        if gone := [v for v in step.params.values() if isinstance(v, str) and is_kept_control(v)
                    and not Path(v).is_file()]:
            notes.append(f"Its {contribution.title} step's picture {gone[0]} is gone; choose another for it in the "
                         "post-processing chain.")
    return RecordedChain(tuple(steps), notes)


def control_guides(entry: HistoryEntry, label: str | None = None) -> tuple[ControlGuide, ...]:
    """The entry's ControlNet guides with their kept pictures opened. InvalidRequest (one sentence) for a guide
    that cannot be remade: a record Studio cannot read, or a picture that was not kept or is gone (running without
    it would make another picture, not this one again)."""
    records = entry.params.get("controls") or []
    if not isinstance(records, list):
        records = [records]
    label = label or f"history entry {entry.id}"
    guides = []
    for number, record in enumerate(records, 1):
        which = "the control guide" if len(records) == 1 else f"control guide {number}"
        guide = ControlGuide.from_record(record)
        if guide is None:
            raise InvalidRequest(f"The record of {which} of {label} is damaged, so it cannot be run again.")
        if not guide.image_path:
            raise InvalidRequest(f"The control picture of {which} of {label} was not kept, so it cannot be run "
                                 "again.")
        guides.append(replace(guide, image=_source(guide.image_path, "control picture", label)))
    return tuple(guides)


class RecordedChoices(NamedTuple):
    """What an entry was made with beyond its plain fields, from its params or else its picture's recipe."""
    loras: tuple[LoraChoice, ...]
    vae: str
    lora_records: tuple[LoraRecord, ...]  # those LoRAs with the hashes recorded for them ("" where none)
    controls: tuple[dict[str, Any], ...]  # the guides' records, their pictures' paths resolved
    missing: list[str]  # the guides' kept pictures that are gone


def recorded_choices(entry: HistoryEntry, outputs: Path) -> RecordedChoices:
    """The LoRAs, VAE and guides an entry was made with: from its params where the job recorded them (names or
    paths as chosen, guides by full paths), else from its picture's recipe, read once (names in the models folder,
    guides by paths in the outputs folder); and the kept control pictures that are gone. Reads files: run it in a
    worker thread."""
    params = entry.params
    recipe = picture_recipe(entry) if not _lists_loras(params) or "controls" not in params else None
    loras, vae = chosen_loras_and_vae(params, recipe)
    if "controls" in params:
        controls = control_records(params["controls"])
    else:
        controls = resolved_controls(recipe.controls, outputs) if recipe is not None else ()
    return RecordedChoices(loras, vae, _with_hashes(loras, params, recipe), controls, missing_pictures(controls))


def _with_hashes(loras: tuple[LoraChoice, ...], params: dict, recipe: Recipe | None) -> tuple[LoraRecord, ...]:
    """The LoRAs ``chosen_loras_and_vae`` found, each with the hash recorded beside it where it came from (the
    params, else the recipe): a LoRA renamed since is found by it, as for a dropped picture."""
    if _lists_loras(params):
        items = [item for item in params.get("loras") or () if isinstance(item, dict)]
        recorded = [(item.get("name"), item.get("hash")) for item in items]
    else:
        recorded = [(lora.name, lora.hash) for lora in recipe.loras] if recipe is not None else []
    hashes = {name: digest for name, digest in recorded if isinstance(name, str) and isinstance(digest, str)}
    return tuple(LoraRecord(choice.name, hashes.get(choice.name, ""), choice.weight) for choice in loras)


def missing_pictures(records: tuple[dict[str, Any], ...]) -> list[str]:
    """The pictures that guides' records name and that are gone."""
    return [r["image"] for r in records if r["image"] and not Path(r["image"]).is_file()]


def loras_and_vae(entry: HistoryEntry) -> tuple[tuple[LoraChoice, ...], str]:
    """The LoRAs (name, weight) and VAE an entry was made with: from its params where the job recorded them
    (names or paths as chosen), else from its image's recipe (names in the models folder)."""
    return chosen_loras_and_vae(entry.params, None if _lists_loras(entry.params) else picture_recipe(entry))


def _lists_loras(params: dict) -> bool:
    return "loras" in params or "vae" in params


def chosen_loras_and_vae(params: dict, recipe: Recipe | None) -> tuple[tuple[LoraChoice, ...], str]:
    """The LoRAs and VAE a rerun asks for: the params' where the job recorded them, else the recipe's."""
    if _lists_loras(params):
        loras = tuple(LoraChoice(item["name"], float(item.get("weight", 1.0))) for item in params.get("loras") or ()
                      if isinstance(item, dict) and isinstance(item.get("name"), str)
                      and isinstance(item.get("weight", 1.0), (int, float)))
        vae = params.get("vae")
        return loras, vae if isinstance(vae, str) else ""
    if recipe is not None:
        return tuple(LoraChoice(lora.name, lora.weight) for lora in recipe.loras), recipe.vae_name
    return (), ""


def picture_recipe(entry: HistoryEntry) -> Recipe | None:
    """The recipe of the entry's picture, or None where it has none or is gone."""
    if not entry.image_path or not Path(entry.image_path).is_file():
        return None
    try:
        return read_recipe(entry.image_path)
    except (StudioError, ValueError, TypeError):  # a damaged file only loses what it would have told
        return None


def _recorded(params: object) -> dict:
    """Recorded parameter values that can be used again (pictures are only noted in the history)."""
    if not isinstance(params, dict):
        return {}
    return {k: v for k, v in params.items() if not _noted_picture(v)}


def _rerun_params(params: object, whose: str, label: str) -> dict:
    """Recorded parameter values for a rerun: a picture by the copy Studio kept of it. InvalidRequest (one sentence,
    naming the parameter) for a picture that was only noted by its size, or whose kept copy is gone: running without
    it would make another picture, not this one again."""
    for name, value in params.items() if isinstance(params, dict) else ():
        if _noted_picture(value):
            raise InvalidRequest(f"The picture of {whose} parameter {name!r} was not kept, so {label} cannot be run "
                                 "again.")
        if isinstance(value, str) and is_kept_control(value) and not Path(value).is_file():
            raise InvalidRequest(f"The picture of {whose} parameter {name!r} is gone, so {label} cannot be run "
                                 f"again; {value} no longer exists.")
    return _recorded(params)


def _noted_picture(value: object) -> bool:
    """Whether a recorded value is a picture noted only by its size ("<picture 100x80>")."""
    return isinstance(value, str) and value.startswith("<picture ")


def _strength(value: object) -> float:
    """A chain step's recorded strength (entries from before it was recorded ran at full strength)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1 else 1.0


def _source(path: str | None, what: str, label: str) -> Image.Image | None:
    if not path:
        return None
    if not Path(path).is_file():
        raise InvalidRequest(f"The {what} {path} of {label} no longer exists.")
    return open_image(path)

