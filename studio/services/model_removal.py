"""Taking a model out of the library: its files deleted when they are inside the models folder, a linked file or
folder unlinked (never deleted), a symbolic link in the models folder removed as a link (never followed), and what
that would do, asked first."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from studio.core.errors import InvalidRequest, ModelError, os_reason
from studio.core.model_library import (HUB_ORIGIN, IMPORTS_FILE, KIND_FOLDERS, LibraryItem, find_item, read_imports,
                                       scan_library)
from studio.core.paths import real_path
from studio.core.units import format_size
from studio.services.import_records import forget_import

log = logging.getLogger(__name__)


def remove_model(value: str, models_dir: Path, linked: list[Path],
                 notes: list[str] | None = None) -> tuple[LibraryItem, list[Path]]:
    """Delete a model inside the models folder, or unlink a linked path; returns the item and the new links.
    What did not stop the removal (the record of where it was imported from left as it was) goes to ``notes``,
    else to the log."""
    item, links = what_removing_does(value, models_dir, linked)
    if links == list(linked) and (link := link_to_remove(item, models_dir)) is not None:
        try:
            link.unlink()  # the link itself: what it points to stays
        except OSError as exc:
            raise ModelError(f"The link {link} could not be removed: {os_reason(exc)}.") from exc
    elif links == list(linked):  # not an unlink: the files go
        _check_inside(item, models_dir)  # the last word before anything is deleted
        origin = read_imports(models_dir).get(str(item.path), "")
        try:
            if item.path.is_dir():
                shutil.rmtree(item.path)
            else:
                item.path.unlink()
        except OSError as exc:  # a read-only drive, a file in use (Windows): a sentence, not a traceback
            raise ModelError(f"{item.name} could not be deleted from {item.path.parent}: "
                             f"{os_reason(exc)}.") from exc
        try:
            forget_import(models_dir, item.path)
        except OSError as exc:  # a full disk, a read-only record: the files are gone, as asked; only a line stays
            note = (f"{_what_was_deleted(item, origin)}, but the record of where it came from, in "
                    f"{models_dir / IMPORTS_FILE}, could not be updated ({os_reason(exc)}).")
            if notes is None:
                log.warning(note)
            else:
                notes.append(note)
    return item, links


def _what_was_deleted(item: LibraryItem, origin: str) -> str:
    """What remove_model deleted, truly: an import is a copy, and the file it was copied from stays."""
    if origin.startswith(HUB_ORIGIN):
        return f"{item.name}, downloaded from Hugging Face ({origin.removeprefix(HUB_ORIGIN)}), was deleted"
    if origin:
        return f"The copy of {item.name} in the models folder was deleted (the original, {origin}, is untouched)"
    return f"{item.name} was deleted"


def what_removing_does(value: str, models_dir: Path, linked: list[Path]) -> tuple[LibraryItem, list[Path]]:
    """What ``remove_model`` would remove, and the links it would leave (fewer: it unlinks ``item``, the same:
    it deletes ``item``'s files), changing nothing; InvalidRequest where it would refuse."""
    items = scan_library(models_dir, linked)
    item = find_item(value, items)
    resolved_links = {real_path(p): p for p in linked}
    target = Path(value).expanduser()
    if item is None and os.path.lexists(target):  # a path relative to where the command runs: items' are real
        item = next((i for i in items if i.path == real_path(target)), None)
    if item is None and real_path(target) in resolved_links:
        kept = [p for p in linked if real_path(p) != real_path(target)]
        linked_path = resolved_links[real_path(target)]  # as the settings list it, not as typed
        return LibraryItem(linked_path.name, linked_path, "folder", "", "Linked folder", 0, "linked"), kept
    if item is None:
        raise InvalidRequest(f"The library has no model named {value!r}; `studio models list` shows the names.")
    same_name = [i for i in items if value in (i.name, i.path.name)]
    if len(same_name) > 1:
        paths = ", ".join(str(i.path) for i in same_name)
        raise InvalidRequest(f"More than one model is named {value!r} ({paths}); give the path of the one to remove.")
    if item.path in resolved_links:
        return item, [p for p in linked if real_path(p) != item.path]
    root = models_dir.resolve()
    if item.path == root:
        raise InvalidRequest(f"{root} is the models folder itself; Studio does not delete it.")
    if item.linked:  # found through a linked folder (a kind folder that is a symlink is still Studio's own)
        raise InvalidRequest(f"{item.path} is in a linked folder, not in Studio's models folder; Studio does not "
                             "delete other tools' files. Unlink the folder instead.")
    if link_to_remove(item, models_dir) is None:
        _check_inside(item, models_dir)
    return item, list(linked)


def removal_words(item: LibraryItem, models_dir: Path) -> tuple[str, str]:
    """For a model in the models folder: the question that asks before it is removed, and the sentence that says it
    was, naming what truly goes (a link in the models folder, or the files); InvalidRequest where Studio would not
    delete them (they lie outside the models folder)."""
    if (link := link_to_remove(item, models_dir)) is not None:
        return (f"Remove the link {link.name}? The files it points to, in {item.path}, are kept.",
                f"Removed the link {link}; the files it points to, in {item.path}, are kept.")
    _check_inside(item, models_dir)
    return (f"Delete {item.name} ({item.label}, {format_size(item.size)}) at {item.path}?",
            f"Removed {item.name} ({item.path}).")


def link_to_remove(item: LibraryItem, models_dir: Path) -> Path | None:
    """The symbolic link in the models folder that ``item`` is, to remove in place of the files it points to; None
    where the item is no such link (its files are deleted, where they lie inside the models folder)."""
    entry = item.found_at
    if entry is None or item.linked or not entry.is_symlink():
        return None
    try:
        entry.relative_to(models_dir)
    except ValueError:
        return None
    return entry


def _studio_folders(models_dir: Path) -> list[Path]:
    """Where Studio's own model files lie, links resolved: the models folder, and each kind folder in it that is a
    link to another drive (imports and downloads are written there, so its models are Studio's to delete)."""
    kinds = {models_dir / name for name in KIND_FOLDERS.values() if name}
    return [real_path(models_dir), *(real_path(k) for k in sorted(kinds) if k.is_symlink())]


def _check_inside(item: LibraryItem, models_dir: Path) -> None:
    """InvalidRequest unless ``item``'s files, links resolved, lie inside Studio's models folder: a model reached
    through a linked sub-folder (checkpoints/sub → a folder elsewhere) is someone else's files."""
    if any(item.path.is_relative_to(folder) for folder in _studio_folders(models_dir)):
        return
    through = next((p for p in _links_on_the_way(item, models_dir)), None)
    how = f", reached through the link {through} (to {real_path(through)})," if through else ""
    raise InvalidRequest(f"{item.path}{how} is outside Studio's models folder {real_path(models_dir)}; Studio "
                         "deletes only files inside it. Remove the link, or delete the files there yourself.")


def _links_on_the_way(item: LibraryItem, models_dir: Path) -> list[Path]:
    """The symbolic links among the folders between the models folder and where ``item`` was found."""
    entry = item.found_at or item.path
    try:
        parts = entry.relative_to(models_dir).parts
    except ValueError:
        return []
    places = [models_dir.joinpath(*parts[:end]) for end in range(1, len(parts))]
    return [place for place in places if place.is_symlink()]
