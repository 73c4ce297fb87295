"""Putting models into the library by import (a copy); linking in place is model_links'.

An import is checked by content first (safetensors only, header validated, kind detected) and copied
into the models folder under the kind's sub-folder (model_copying: a temporary name, then renamed), so a failed or
interrupted import leaves nothing half-written. A file whose hash is already in the library is not
copied twice. Style-transfer weights go in under the name their filter looks for (vgg19.safetensors…),
through the same code as Filters → Style Weights…. Where each import came from is written down (import_records);
removing is model_removal's, converting pickles model_conversion's, filing downloads download_filing's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from studio.core.errors import InvalidRequest, ModelError
from studio.core.model_kind import with_article
from studio.core.model_kinds import detect_kind
from studio.core.model_library import (
    KIND_FOLDERS,
    LibraryItem,
    item_for_file,
    item_for_folder,
    library_hash,
    scan_library,
    with_hashes,
)
from studio.core.models import MODEL_INDEX
from studio.core.paths import link_loop_problem, real_path
from studio.core.style_weights import WeightsFile, weights_file_for
from studio.core.weight_files import check_weights_file
from studio.services.import_records import record_import
from studio.services.model_copying import Cancelled, Progress, copy_into


@dataclass(frozen=True)
class ImportResult:
    item: LibraryItem
    copied: bool  # False when the same file was already in the library
    note: str = ""
    unrecorded: str = ""  # the model is in place, but where it came from could not be written down: why


def import_model(source: Path, models_dir: Path, *, hash_cache: Path | None = None,
                 progress: Progress | None = None, move: bool = False,
                 cancelled: Cancelled | None = None, unusable_too: bool = False,
                 linked: Sequence[Path] = (), named: str = "") -> ImportResult:
    """Copy (or, with ``move``, move) a checked model file or diffusers folder into the library;
    InvalidRequest/ModelError otherwise, JobCancelledError (nothing copied) once ``cancelled()`` says so.
    ``unusable_too``: a model of a known kind that Studio cannot use (an SD 3 pipeline) is filed too, and listed
    with why (a download, already on disk, is not refused). A model inside one of the ``linked`` files or
    folders is in the library already: it is not copied (the picker would list it twice). ``named``: what the
    sentences call the file, where it is not the one the person gave ("x.pth, converted," for a conversion's)."""
    source = Path(source).expanduser()
    named = named or source.name
    if not source.exists():
        raise InvalidRequest(link_loop_problem(source) or f"There is no file or folder at {source}.")
    item = _identify(source)
    if item.problem and not (unusable_too and item.kind != "unknown"):
        raise ModelError(item.problem)
    if item.kind == "unknown":
        what = "a folder" if source.is_dir() else "a safetensors file"
        raise ModelError(f"{named} is {what}, but not a kind of model Studio knows "
                         "(checkpoint, LoRA, VAE, ControlNet, upscaler, IP-Adapter, embedding or style weights).")
    if (link := _linked_from(source, linked)) is not None:
        return ImportResult(replace(item, path=real_path(source), source=f"linked: {link}", linked=True),
                            copied=False, note=f"{named} is already in the library (linked from {link}); "
                            "nothing was copied.")
    folder = models_dir / KIND_FOLDERS.get(item.kind, item.kind)
    style = _style_file(source) if item.kind == "style" else None
    target = folder / (style.name if style else source.name)
    # Only files of the same kind and size can be the same file: hash just those (hashing GBs takes seconds).
    # Style weights count only under the name the filters look for: a copy under another name is not used.
    library = scan_library(models_dir, linked)  # a copy of a linked model is the same model too
    alike = [i for i in library if i.kind == item.kind and i.size == item.size
             and (style is None or real_path(i.path) == real_path(target))]
    digest = library_hash(item, hash_cache) if alike else ""  # as the library hashes this kind (a LoRA: AutoV3)
    for existing in with_hashes(alike, hash_cache):
        if existing.hash == digest:
            return ImportResult(existing, copied=False,
                                note=f"{named} is already in the library as {existing.path}.")
    if target.exists() and style is not None:
        raise InvalidRequest(f"The library already has different {style.used_by} weights, {target}; remove "
                             f"that one first to use {source.name} instead.")
    if target.exists():
        raise InvalidRequest(f"The library already has a different {target.name} in {folder}; rename the "
                             "file you are importing first.")
    namesake = next((i for i in library if i.kind == item.kind and i.name == item.name and style is None), None)
    if namesake is not None:  # models are picked by name (the picker, --model, <lora:name>): two would be one
        raise InvalidRequest(f"The library already has {with_article(item.label)} named {item.name} "
                             f"({namesake.path}); rename the one you are importing first.")
    if style is not None:
        return _install_style(source, models_dir, style, move=move, progress=progress)
    copy_into(source, folder, target, move=move, progress=progress, cancelled=cancelled)
    unrecorded = "" if move else record_import(models_dir, target, source)
    imported = item_for_folder(target, "models folder") if target.is_dir() else item_for_file(target, "models folder")
    return ImportResult(imported, copied=True, unrecorded=unrecorded)


def _linked_from(source: Path, linked: Sequence[Path]) -> Path | None:
    """The linked file or folder ``source`` is (or is inside), or None."""
    where = real_path(source)
    return next((link for link in linked if where.is_relative_to(real_path(Path(link).expanduser()))), None)


def _identify(source: Path) -> LibraryItem:
    if source.is_dir():
        if not (source / MODEL_INDEX).is_file() and not (source / "config.json").is_file():
            raise InvalidRequest(f"{source} is a folder but not a diffusers model (it has no {MODEL_INDEX}); "
                                 "to use another tool's models folder in place, link it instead.")
        return item_for_folder(source, "import")
    return item_for_file(source, "import")


def _style_file(source: Path) -> WeightsFile:
    """Which of the style filters' files ``source`` is, from its layers (its name does not matter)."""
    detail = detect_kind(check_weights_file(source), source.name).detail
    style = weights_file_for(detail)
    if style is None:
        raise ModelError(f"{source.name} holds style-transfer weights ({detail or 'of no known layout'}) that no "
                         "filter of Studio's uses.")
    return style


def _install_style(source: Path, models_dir: Path, style: WeightsFile, *, move: bool,
                   progress: Progress | None) -> ImportResult:
    """Through the code Filters → Style Weights… uses: checked against the filter's layers and put in place
    under the name the filter looks for (whatever the source is called)."""
    from studio.engine.style.install import install_weights  # torch: only for style weights

    target = install_weights(models_dir / KIND_FOLDERS["style"], style.name, source)
    if progress is not None:
        size = target.stat().st_size
        progress(size, size)
    unrecorded = ""
    if move:
        source.unlink()
    else:
        unrecorded = record_import(models_dir, target, source)
    note = "" if source.name == target.name else (f"Imported {source.name} as {target.name}, the name "
                                                  f"{style.used_by} looks for.")
    return ImportResult(item_for_file(target, "models folder"), copied=True, note=note, unrecorded=unrecorded)
