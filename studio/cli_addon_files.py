"""The files a ``studio generate`` request adds to its model (LoRAs, a VAE, ControlNets, the hires fix's upscaler),
found as the engine will find them and checked to fit the model from their headers, so that what is wrong is said
as bad input before the engine starts (which would say it only once started)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.control import ControlGuide
from studio.core.errors import InvalidRequest, ModelError
from studio.core.hires import BUILT_IN_UPSCALERS
from studio.core.model_library import KIND_FOLDERS, LibraryItem, item_for_file, item_for_folder, scan_library
from studio.core.attention_width import CONTEXT_FAMILY
from studio.core.model_kind import other_kind_sentence
from studio.core.models import checkpoint_kind, find_weights
from studio.core.prompt_loras import the_library_item
from studio.core.requests import LoraChoice
from studio.core.settings import Settings
from studio.core.weight_files import check_weights_file

if TYPE_CHECKING:
    from studio.engine.control_nets import ControlSource


def hires_upscaler(name: str, settings: Settings, said_as: str = "") -> str:
    """The hires fix's upscaler as the engine will find it: a built-in one (any case), a model in the upscalers
    folder (by name or path), or one in the library's linked folders (given then by its path). Bad input
    otherwise, with the names there are, before the engine starts (which would say it only once started); so is
    a model with the spandrel library that loads it not installed.
    ``said_as``: after its name where the person never typed it (" (the settings' hires upscaler)")."""
    from studio.core.upscalers import check_spandrel_installed  # names only: no torch

    wanted = name.strip()
    built_in = next((known for known in BUILT_IN_UPSCALERS if known.casefold() == wanted.casefold()), None)
    if built_in is not None or not wanted:  # none at all: prepare_request says so
        return built_in or name
    model = _upscaler_model(name, wanted, settings, said_as)
    try:
        check_spandrel_installed()
    except ModelError as exc:
        raise InvalidRequest(str(exc)) from None
    return model


def _upscaler_model(name: str, wanted: str, settings: Settings, said_as: str) -> str:
    folder = settings.models_dir / KIND_FOLDERS["upscaler"]
    if find_weights(folder, wanted) is not None:  # the engine's lookup (a pickle is refused, with how to convert it)
        return wanted
    items = [item for item in scan_library(settings.models_dir, settings.extra_model_paths) if item.kind == "upscaler"]
    match = next((item for item in items if wanted.casefold() in (item.name.casefold(), item.path.name.casefold())),
                 None)
    if match is not None and match.problem:  # one the engine would refuse (a pickle, a damaged file)
        raise InvalidRequest(match.problem)
    if match is not None:  # by the name the window records for one in the upscalers folder, else by its path
        return match.name if match.path.parent == folder and not match.linked else str(match.path)
    names = [*BUILT_IN_UPSCALERS, *(item.name for item in items if item.usable)]
    raise InvalidRequest(f"No upscaler called {name!r}{said_as} is installed; --hires-upscaler takes "
                         f"{', '.join(names)}, or the name of an upscaler model put in {folder}.")


def find_files(loras: tuple[LoraChoice, ...], vae: str, controls: tuple[ControlGuide, ...], settings: Settings
                ) -> tuple[tuple[LoraChoice, ...], str, tuple[ControlGuide, ...], tuple[ControlSource, ...]]:
    """The LoRAs, VAE and ControlNets as the engine will find them: by name in the models folder, else by name
    in the library's linked folders (an AUTOMATIC1111 ``Lora`` folder, say), given then as paths. Bad input when
    neither has one, before the engine starts (it looks again). With them, the guides' ControlNets as found."""
    from studio.engine.control_nets import find_controlnet  # no torch: names are checked before the engine starts
    from studio.engine.loras import find_lora
    from studio.engine.vae_override import find_vae

    items: list[LibraryItem] | None = None

    def found(name: str, kind: str, find: Callable[[Path, str], object]) -> tuple[str, Any]:
        """The name as recorded, and what ``find`` gave for it (None when found in the library instead)."""
        nonlocal items
        try:
            where = find(settings.models_dir, name)
            path = Path(getattr(where, "path", where))
            # A file given by its path, outside the models folder: recorded whole, so a rerun elsewhere finds it.
            return (name if path.resolve().is_relative_to(settings.models_dir.resolve()) else str(path.resolve()),
                    where)
        except (ModelError, InvalidRequest):  # not in the models folder (find_controlnet says so as bad input)
            if items is None:
                items = scan_library(settings.models_dir, settings.extra_model_paths)
            match = _library_match(name, kind, items)
            if match is None and (other := _other_kind(name, kind, items)):
                raise InvalidRequest(other) from None
            if match is None:
                raise
            if match.problem:  # one the engine would refuse once the model is loaded (a Control-LoRA, a pickle)
                raise InvalidRequest(match.problem) from None
            return str(match.path), None

    sources: list[ControlSource] = []
    linked = settings.extra_model_paths  # named in the "No … named" sentences: found() looks there too

    def with_controlnet(guide: ControlGuide) -> ControlGuide:
        name, source = found(guide.model, "controlnet", partial(find_controlnet, linked=linked))
        sources.append(source if source is not None else find_controlnet(settings.models_dir, name))
        return replace(guide, model=name)

    loras = tuple(replace(c, name=found(c.name.strip(), "lora", partial(find_lora, tag=c.tag, linked=linked))[0])
                  if c.name.strip() else c for c in loras)
    controls = tuple(with_controlnet(g) if g.model else g for g in controls)
    vae = found(vae.strip(), "vae", partial(find_vae, linked=linked))[0] if vae.strip() else ""
    return loras, vae, controls, tuple(sources)


def _library_match(name: str, kind: str, items: list[LibraryItem]) -> LibraryItem | None:
    """The library's model of ``kind`` that ``name`` names (its name or file name), else the one it names but for
    case (``INK`` for ink, as the window matches it), else the one LoRA with that alias (A1111's <lora:ALIAS>);
    None when none or several are."""
    return the_library_item(name, (i for i in items if i.kind == kind), lambda i: (i.name, i.path.name),
                            lambda i: i.alias)


def _other_kind(name: str, kind: str, items: list[LibraryItem]) -> str:
    """"NAME is a Stable Diffusion model (SD 1.x), not a ControlNet." where ``name`` is a file or folder, or a
    model in the library, of another kind than ``kind`` (a lookup said only "No ControlNet named …"); else ""."""
    given = Path(name).expanduser()
    if given.is_dir() or given.is_file():
        found: LibraryItem | None = item_for_folder(given, "given") if given.is_dir() else item_for_file(given, "given")
    else:
        found = next((i for i in items if name in (i.name, i.path.name)), None)
    if found is None or found.kind in (kind, "unknown"):
        return ""
    return other_kind_sentence(name, found.kind, found.label, kind)


def check_controlnets_fit(sources: tuple[ControlSource, ...], model: Path) -> None:
    """Each ControlNet is made for the model's family, as the engine checks once the model is loaded (seconds
    later): from the files' headers, where the model's family is known from them."""
    from studio.engine.control_nets import fit_problem  # no torch

    width, name = _context_width(model), _model_name(model)
    for source in sources:
        if problem := fit_problem(source, width, name):
            raise InvalidRequest(problem)


def check_loras_fit(loras: tuple[LoraChoice, ...], model: Path, settings: Settings) -> None:
    """Each LoRA's file is readable and made for the model's family, as the engine checks once the model is loaded
    (seconds later): from the files' headers, with the engine's sentences."""
    from studio.engine.loras import fit_problem, resolve_loras  # no torch

    width, name = _context_width(model), _model_name(model)
    for lora in resolve_loras(settings.models_dir, loras):  # found as the engine finds them, named as it names them
        if problem := fit_problem(lora, check_weights_file(lora.path), width, name):
            raise InvalidRequest(problem)


def check_vae_fits(vae: str, model: Path, settings: Settings) -> None:
    """The VAE's files are readable, a VAE's, and make the model's latents, as the engine checks once the model is
    loaded (seconds later): from the files' headers and configs, with the engine's sentences."""
    if not vae:
        return
    from studio.engine.vae_override import check_vae_files, find_vae, shape_problem, vae_shape  # no torch

    source = find_vae(settings.models_dir, vae)
    check_vae_files(source)
    mine, theirs = vae_shape(source.path), vae_shape(model)
    if mine and theirs and (problem := shape_problem(source.name, mine, theirs, _model_name(model),
                                                     single_file=not source.path.is_dir())):
        raise InvalidRequest(problem)


def _model_name(model: Path) -> str:
    """The model as the engine names it in its sentences."""
    return model.stem if model.is_file() else model.name


def _context_width(model: Path) -> int:
    """The model's cross-attention width (its text encoder's: what a ControlNet must be made for), from its
    headers or its UNet's config.json; 0 when they do not tell."""
    if model.is_file():
        family = checkpoint_kind(model).family
        return next((width for width, known in CONTEXT_FAMILY.items() if known == family), 0)
    try:
        width = json.loads((model / "unet" / "config.json").read_text(encoding="utf-8")).get("cross_attention_dim")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return 0
    return width if isinstance(width, int) and not isinstance(width, bool) else 0
