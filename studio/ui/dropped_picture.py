"""A picture dropped on the prompt panel: what it says about how it was made, read off the UI thread, and the
sentences for what of it the panel cannot take as it is (history_actions fills the panel with it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from studio.core.control import resolved_controls
from studio.core.errors import StudioError
from studio.core.image_info import STUDIO_TOOL, ImageInfo
from studio.core.image_inspection import inspect_image
from studio.core.images import read_recipe
from studio.core.metadata import Recipe
from studio.core.model_match import bare_model_name, folder_joined_names, listed_model_hash, matching_model
from studio.plugin_host.registry import Registry
from studio.services.history_reuse import RecordedChain, missing_model, missing_pictures, usable_chain
from studio.ui.model_picker import GENERATOR_PREFIX
from studio.ui.prompt_panel_values import model_not_listed

if TYPE_CHECKING:
    from studio.ui.prompt_panel import PromptPanel


class DroppedPicture(NamedTuple):
    """What a picture dropped on the prompt panel sets beyond its plain fields."""
    info: ImageInfo
    controls: tuple[dict[str, Any], ...]  # its guides, their pictures' paths in the outputs folder
    missing: list[str]  # those guides' kept pictures that are gone
    model_path: str | None  # the listed model of the name it names (None: none listed)
    gone: str | None  # that model's name when its file or folder is gone
    chain: RecordedChain | None  # the post-processing chain its Studio recipe records (None: it records none)
    recipe: Recipe | None = None  # Studio's recipe (its generator, a plugin's options, img2img), None for others'


def read_dropped(path: Path, outputs: Path, listed: list[tuple[str, Any]], registry: Registry,
                 style_dir: Path, hash_cache: Path) -> DroppedPicture:
    """What a dropped picture says about how it was made, its guides (a Studio recipe names a kept picture relative
    to the outputs folder), the model of the ``listed`` (name, path) it names (by name, else by the hash the cache
    knows: matching_model) and whether that is gone, and the chain it records: reads and stats files, so it runs in
    a worker thread."""
    info = inspect_image(path)
    controls = resolved_controls(info.controls, outputs)
    recipe = _studio_recipe(path) if info.tool == STUDIO_TOOL else None
    # Only models: a plugin generator's item ("generator:procedural") is no file, and its title is no model's name.
    models = [(n, d) for n, d in listed if isinstance(d, str) and d and not d.startswith(GENERATOR_PREFIX)]
    model_path = None if recipe is not None and recipe.generator not in ("", "diffusers") else \
        matching_model(info.model or "", info.model_hash or "", models, listed_model_hash(hash_cache))
    chain = usable_chain(info.post, registry, style_dir) if info.tool == STUDIO_TOOL and info.post else None
    return DroppedPicture(info, controls, missing_pictures(controls), model_path,
                          missing_model(model_path, info.model or ""), chain, recipe)


def _studio_recipe(path: Path) -> Recipe | None:
    """The Studio recipe in a dropped picture, or None where it is damaged (inspect_image has said what it read)."""
    try:
        return read_recipe(path)
    except StudioError:
        return None


def model_notes(panel: PromptPanel, model_name: str | None, dropped: DroppedPicture, model_path: str | None,
                listed: list[tuple[str, Any]]) -> list[str]:
    """What is said of the model a dropped picture names (``model_name``; None for a plugin generator's picture)
    once the panel is filled: that the list lacks it (see model_not_listed), or that another listed name was picked
    by its hash (renamed since), ``model_path`` being the one picked."""
    if model_name and dropped.model_path is None:
        return [model_not_listed(panel, f"The model {model_name!r} it names", ".")]
    if model_name and model_path and (listed_name := next(n for n, d in listed if d == model_path)) and \
            bare_model_name(listed_name) != bare_model_name(model_name) and \
            bare_model_name(model_name) not in folder_joined_names(Path(model_path)):  # by its hash: renamed
        return [f"It names the model {model_name!r}; {listed_name} has the same hash, so it was picked."]
    return []


def source_note(recipe: Recipe | None) -> list[str]:
    """That a Studio picture was made from a picture (and a mask), which a dropped file does not bring back."""
    if recipe is None or recipe.strength is None:  # made from the prompt alone, or another tool's
        return []
    inpaint = recipe.mask_blur is not None or recipe.inpaint_area is not None
    return [f"It was made from a picture{' and a mask' if inpaint else ''} (strength {recipe.strength:g}), which a "
            f"dropped file does not bring back; Load Parameters in the Gallery restores {'them' if inpaint else 'it'}."]


def kept_value(panel: PromptPanel, key: str) -> str:
    """The panel's value for one a picture names that Studio cannot take (a refused_values key): it stays."""
    if key == "size":
        return f"{panel.width_spin.value()}x{panel.height_spin.value()}"
    if key == "seed":
        return panel.seed_edit.text() or "a random seed"
    if key == "cfg_scale":
        return f"{panel.cfg_spin.value():g}"
    if key == "clip_skip":
        return "the model's usual text encoder output"
    return panel.scheduler_combo.currentText() if key == "scheduler" else str(panel.steps_spin.value())
