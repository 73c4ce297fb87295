"""Putting models into the library and taking them out: import (copy), link (in place), remove.

An import is checked by content first (safetensors only, header validated, kind detected) and copied
into the models folder under the kind's sub-folder with a temporary name, then renamed, so a failed or
interrupted import leaves nothing half-written. A file whose hash is already in the library is not
copied twice. Style-transfer weights go in under the name their filter looks for (vgg19.safetensors…),
through the same code as Filters → Style Weights…. Removing deletes only what lies inside the models
folder; a linked folder is unlinked, never deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from studio.core.errors import InvalidRequest, JobCancelledError, ModelError, StudioError, os_reason
from studio.core.images import write_atomically
from studio.core.model_kind import with_article
from studio.core.model_kinds import detect_kind
from studio.core.model_library import (
    HUB_ORIGIN,
    IMPORTS_FILE,
    KIND_FOLDERS,
    LibraryItem,
    find_item,
    item_for_file,
    item_for_folder,
    library_hash,
    read_imports,
    scan_library,
    system_folder_problem,
    with_hashes,
)
from studio.core.models import MODEL_INDEX
from studio.core.paths import real_path
from studio.core.style_weights import WeightsFile, weights_file_for
from studio.core.weight_files import check_weights_file

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # bytes copied, bytes in all
Cancelled = Callable[[], bool]  # checked between chunks: True stops the copy (JobCancelledError)
CHUNK = 8 << 20
PARTIAL_PREFIX = ".importing-"
STALE_AFTER_S = 15 * 60  # a copy in progress writes a chunk every few seconds; one untouched this long is dead


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
        raise InvalidRequest(f"There is no file or folder at {source}.")
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
    partial = folder / f"{PARTIAL_PREFIX}{uuid.uuid4().hex[:12]}"  # short: a long name plus a suffix passed 255 bytes
    done = False
    try:
        folder.mkdir(parents=True, exist_ok=True)  # a read-only models folder: the sentence below, no traceback
        _remove_stale_partials(folder)
        if move:
            shutil.move(source, partial)
        elif source.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(source, partial, copy_function=lambda src, dst: _copy_file(
                Path(src), Path(dst), None, cancelled))
        else:
            _copy_file(source, partial, progress, cancelled)
        partial.replace(target)
        done = True
    except OSError as exc:
        raise ModelError(f"{source.name} could not be copied into {folder}: {exc.strerror or exc}.") from exc
    finally:  # whatever stopped it (an error, Ctrl+C): no multi-GB hidden file is left behind
        if not done:
            if move and not source.exists() and partial.exists():
                with contextlib.suppress(OSError):
                    partial.replace(source)  # a moved file goes back where it was
            _remove(partial)
    unrecorded = "" if move else _record_import(models_dir, target, source)
    imported = item_for_folder(target, "models folder") if target.is_dir() else item_for_file(target, "models folder")
    return ImportResult(imported, copied=True, unrecorded=unrecorded)


def convert_and_import(source: Path, models_dir: Path, *, hash_cache: Path | None = None) -> ImportResult:
    """A pickle checkpoint (.ckpt/.pt/.pth/.bin), read with ``torch.load(weights_only=True)`` (tensors and plain
    containers only; anything else is refused unrun), written as safetensors and imported as that."""
    from studio.engine.convert import convert_to_safetensors  # torch: only when converting

    source = Path(source).expanduser()
    incoming = models_dir / ".incoming"  # hidden: the library never lists a half-converted file
    dest = incoming / f"{source.stem}.safetensors"
    try:
        incoming.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{source.name} could not be converted into {models_dir}: {os_reason(exc)}.") from exc
    try:
        done = convert_to_safetensors(source, dest)
        # What it left out is news however the import goes: on a refusal, as the error's notes.
        notes = conversion_notes(done.taken_from, done.beside, done.not_tensors)
        try:
            result = import_model(dest, models_dir, hash_cache=hash_cache, move=True,
                                  named=f"{source.name}, converted,")
        except StudioError as exc:
            for note in notes:
                exc.add_note(note)
            raise
    finally:
        dest.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            incoming.rmdir()
    if result.copied:
        result = replace(result, unrecorded=_record_import(models_dir, result.item.path, source))
    # One sentence a line (as convert-weights says them), after the import's own ("already in the library as …").
    return replace(result, note="\n".join(filter(None, (result.note, *notes))))


def conversion_notes(taken_from: str | None, beside: Sequence[str], not_tensors: Sequence[str]) -> list[str]:
    """What a conversion to safetensors left out of a checkpoint, in sentences: the rest of it, where only the weights
    nested under ``taken_from`` ("state_dict") were written, and the values among the weights that are no tensors."""
    notes = []
    if taken_from is not None and beside:
        notes.append(f"Wrote only the weights under {taken_from!r}; left out the rest of the checkpoint: "
                     f"{_some(beside)}.")
    if not_tensors:
        count = len(not_tensors)
        kind = "value that is not a tensor" if count == 1 else "values that are not tensors"
        notes.append(f"Left out {count} {kind}: {_some(not_tensors)}.")
    return notes


def _some(names: Sequence[str], shown: int = 8) -> str:
    """A list a line can hold: the first few names, then how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def remove_model(value: str, models_dir: Path, linked: list[Path],
                 notes: list[str] | None = None) -> tuple[LibraryItem, list[Path]]:
    """Delete a model inside the models folder, or unlink a linked path; returns the item and the new links.
    What did not stop the removal (the record of where it was imported from left as it was) goes to ``notes``,
    else to the log."""
    item, links = what_removing_does(value, models_dir, linked)
    if links == list(linked):  # not an unlink: the files go
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
            _forget_import(models_dir, item.path)
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
    return item, list(linked)


def link_folder(path: Path, linked: list[Path], models_dir: Path | None = None) -> list[Path]:
    """Add another tool's models folder (or one model) to the library, in place; the same list where it is linked
    already. Studio's own models folder, or a part of it, is refused: its models are in the library already."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InvalidRequest(f"There is no file or folder at {path}.")
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


def file_download(staged: Path, models_dir: Path, repo_id: str, *,
                  hash_cache: Path | None = None) -> tuple[Path, str]:
    """A finished hub download (``staged``, a folder out of the library's sight) filed by kind as an import is: a
    repo of one weights file as that file (a LoRA into loras/), a model folder (a diffusers pipeline, a VAE, a
    ControlNet) whole. Returns where it is in the library and a sentence for the person, or "". The same model in
    the library already is not kept twice (the download is deleted, and the one there returned); a name another
    model has takes the repo's owner before it (``owner--name``), since models are picked by name. A repo Studio
    cannot file by kind (several models, or none it knows) stays one folder, ``<models>/<name>``, as it is listed.
    InvalidRequest where it cannot be filed: the download stays in ``staged`` for the next try."""
    owner, name = repo_id.split("/")
    single = _single_weights_file(staged)
    if single is None and not _is_model_folder(staged):
        return _keep_as_folder(staged, models_dir, repo_id), ""
    source = single or staged
    try:
        result = import_model(source, models_dir, hash_cache=hash_cache, move=True, unusable_too=True)
        note = ""
    except ModelError:  # not a kind Studio files (or one it cannot use): listed where it is, with why
        return _keep_as_folder(staged, models_dir, repo_id), ""
    except InvalidRequest:  # the name is another model's: the owner's before it tells the two apart
        renamed = source.with_name(f"{owner}--{source.name}")
        source.rename(renamed)
        try:
            result = import_model(renamed, models_dir, hash_cache=hash_cache, move=True, unusable_too=True)
        except StudioError:
            renamed.rename(source)  # as the next try's plan finds it
            raise
        note = f"The library has another model named {result.item.name.removeprefix(f'{owner}--')}, so " \
               f"{repo_id} is listed as {result.item.name}."
    if not result.copied:
        _remove(staged)
        return result.item.path, (f"{repo_id} is the same model as {result.item.path}, which is in the library "
                                  "already; the download was not kept twice.")
    if single is not None:
        unrecorded = _record_import(models_dir, result.item.path, f"{HUB_ORIGIN}{repo_id}")
        note = " ".join(filter(None, (note, unrecorded)))  # it is filed and usable: the download is not redone
        _remove(staged)  # the repo's other files (configs, its download record) went with the file's folder
    return result.item.path, note


def _single_weights_file(folder: Path) -> Path | None:
    """The one safetensors file of a download that is not a model folder (a LoRA's, a checkpoint's repo)."""
    if _is_model_folder(folder):
        return None
    weights = [p for p in folder.rglob("*.safetensors") if p.is_file() and ".cache" not in p.relative_to(folder).parts]
    return weights[0] if len(weights) == 1 else None


def _is_model_folder(folder: Path) -> bool:
    return (folder / MODEL_INDEX).is_file() or (folder / "config.json").is_file()


def _keep_as_folder(staged: Path, models_dir: Path, repo_id: str) -> Path:
    owner, name = repo_id.split("/")
    for place in (models_dir / name, models_dir / f"{owner}--{name}"):
        if not place.exists():
            staged.rename(place)
            return place
    raise InvalidRequest(f"{models_dir / name} and {models_dir / f'{owner}--{name}'} already hold other models; move "
                         f"one of them away and run the download again to file {repo_id} (it is kept in {staged} "
                         "meanwhile).")


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
        unrecorded = _record_import(models_dir, target, source)
    note = "" if source.name == target.name else (f"Imported {source.name} as {target.name}, the name "
                                                  f"{style.used_by} looks for.")
    return ImportResult(item_for_file(target, "models folder"), copied=True, note=note, unrecorded=unrecorded)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _last_written(path: Path) -> float:
    """The newest modification time in ``path`` (a copied folder's files keep their sources' times, but the
    one being written is new)."""
    times = [path.lstat().st_mtime]
    if path.is_dir() and not path.is_symlink():
        times += [p.lstat().st_mtime for p in path.rglob("*")]
    return max(times)


def _remove_stale_partials(folder: Path) -> None:
    """What an import killed outright (power cut, kill -9) left: hidden, and as big as the model."""
    now = time.time()
    with contextlib.suppress(OSError):
        for leftover in folder.glob(PARTIAL_PREFIX + "*"):
            with contextlib.suppress(OSError):
                if now - _last_written(leftover) > STALE_AFTER_S:
                    _remove(leftover)


def _copy_file(source: Path, target: Path, progress: Progress | None, cancelled: Cancelled | None = None) -> None:
    total = source.stat().st_size
    done = 0
    with open(source, "rb") as src, open(target, "wb") as dst:
        while True:
            if cancelled is not None and cancelled():
                raise JobCancelledError(f"The import of {source.name} was cancelled.")
            block = src.read(CHUNK)
            if not block:
                break
            dst.write(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    shutil.copystat(source, target)


def _record_import(models_dir: Path, target: Path, source: Path | str) -> str:
    """Write down where ``target`` came from (a file's path, or HUB_ORIGIN and a repo id); "" when it was, else
    the sentence that says the model is in place all the same (only the library's "imported from" is missing).
    A full disk or a record that is not a writable file must not hide that the copy is done."""
    imports = read_imports(models_dir)
    imports[str(target.resolve())] = source if isinstance(source, str) else str(source.resolve())
    try:
        write_atomically(models_dir / IMPORTS_FILE, json.dumps(imports, indent=1).encode("utf-8"))
    except OSError as exc:
        return (f"{target.name} is in the library at {target}, but where it came from could not be written to "
                f"{models_dir / IMPORTS_FILE} ({os_reason(exc)}), so the library will not say where it was "
                "imported from.")
    return ""


def _forget_import(models_dir: Path, path: Path) -> None:
    imports = read_imports(models_dir)
    if imports.pop(str(path), None) is not None:
        write_atomically(models_dir / IMPORTS_FILE, json.dumps(imports, indent=1).encode("utf-8"))
