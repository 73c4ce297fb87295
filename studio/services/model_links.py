"""Linking other tools' model folders in place, ComfyUI's ``extra_model_paths.yaml`` included: the file links each
folder it names, and a ComfyUI folder holding one links those folders with itself (ComfyUI reads them as its own)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.comfyui_paths import EXTRA_PATHS_FILE, is_extra_paths_file, read_extra_model_paths
from studio.core.errors import InvalidRequest
from studio.core.model_library import LibraryItem, system_folder_problem
from studio.core.paths import link_loop_problem, real_path


@dataclass
class Linking:
    links: list[Path]  # every linked file and folder afterwards
    added: list[Path] = field(default_factory=list)  # linked now
    notes: list[str] = field(default_factory=list)  # folders the yaml names that were not linked, and why


def link_paths(path: Path, linked: Sequence[Path], models_dir: Path | None = None) -> Linking:
    """``path`` linked (a folder, a model file, or an extra_model_paths.yaml: the folders it names); InvalidRequest
    with one sentence when nothing can be."""
    path = Path(path).expanduser()
    found = Linking(list(linked))
    if path.is_file() and is_extra_paths_file(path):
        extra = read_extra_model_paths(path)
        found.notes += _not_there(extra.missing, path.name)
        _link_named(found, extra.folders, models_dir)
        if not any(_covered(folder, found.links) for folder in extra.folders):
            raise InvalidRequest(" ".join([f"None of the model folders {path.name} names could be linked:",
                                           *found.notes]) if found.notes else f"{path.name} names no model folders.")
        return found
    named: list[Path] = []
    if path.is_dir() and (path / EXTRA_PATHS_FILE).is_file():
        try:
            extra = read_extra_model_paths(path / EXTRA_PATHS_FILE)
        except InvalidRequest as exc:
            found.notes.append(f"{exc} Its folders were not linked.")
        else:
            named = extra.folders
            found.notes += _not_there(extra.missing, EXTRA_PATHS_FILE)
    _add(found, link_one(path, found.links, models_dir))  # its refusal is the answer
    _link_named(found, named, models_dir)
    return found


def link_one(path: Path, linked: Sequence[Path], models_dir: Path | None = None) -> list[Path]:
    """One folder or model file linked, in place; the same list where it is linked already. Studio's own models
    folder, or a part of it, is refused: its models are in the library already."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InvalidRequest(link_loop_problem(path) or f"There is no file or folder at {path}.")
    if problem := system_folder_problem(path):  # the models folder's rule: / or /proc would list the system's files
        raise InvalidRequest(f"{problem}; nothing was linked.")
    own = real_path(models_dir) if models_dir is not None else None
    if own is not None and real_path(path) == own:
        raise InvalidRequest(f"{path} is Studio's own models folder; its models are in the library already, so "
                             "there is nothing to link.")
    if own is not None and real_path(path).is_relative_to(own):
        raise InvalidRequest(f"{path} is inside Studio's models folder {own}, so it is in the library already; "
                             "there is nothing to link.")
    if any(real_path(p) == real_path(path) for p in linked):
        return list(linked)
    return [*linked, real_path(path)]


def found_there(items: Sequence[LibraryItem]) -> str:
    """What linking found, as the window and ``studio models link`` both say it: "3 usable model(s) found there"
    and, where some are, "and 2 files Studio cannot use" (a pickle, an unreadable or unknown file)."""
    usable = sum(item.usable for item in items)
    unusable = len(items) - usable
    said = f"{usable} usable model(s) found there"
    return said + (f", and {unusable} file{'s' if unusable != 1 else ''} Studio cannot use" if unusable else "")


def _link_named(found: Linking, folders: Sequence[Path], models_dir: Path | None) -> None:
    """The folders a yaml names, each linked unless a linked folder holds it (ComfyUI's own models/checkpoints:
    its models are listed already); why one cannot be is a note, and the others are linked still."""
    for folder in folders:
        if _covered(folder, found.links):
            continue
        try:
            _add(found, link_one(folder, found.links, models_dir))
        except InvalidRequest as exc:
            found.notes.append(str(exc))


def _not_there(folders: Sequence[Path], named_in: str) -> list[str]:
    return [f"{folder}, named in {named_in}, is not there, so it was not linked." for folder in folders]


def _covered(folder: Path, links: Sequence[Path]) -> bool:
    return any(real_path(folder).is_relative_to(real_path(link)) for link in links)


def _add(found: Linking, links: list[Path]) -> None:
    if links != found.links:
        found.added.append(links[-1])
    found.links = links
