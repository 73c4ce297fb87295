"""Whether the files a history entry (or a picture dropped on the prompt box) was made with are still those files:
its checkpoint, and the LoRAs, VAE and ControlNets recorded with their hashes. Another file under the same name makes
another picture, so "Run again", "Load parameters", a dropped picture and ``studio history rerun`` say so, one
sentence a file.

The hashes are the ones the engine records: LoRAs and the VAE in the picture's recipe (``Lora hashes``, ``VAE
hash``; also in the entry's params since 2026-12-07, read there once the picture is gone), guides in the entry's
params (else the recipe), each ControlNet by sd-webui-controlnet's 8-digit hash.
A file named without a hash (an entry from before hashes were recorded) is not checked.

Hashing reads whole files (seconds for a big one; the hash cache the model library and the engine share makes
it instant once a file of that size and modification time was hashed): run it off the window's thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple

from studio.core.control import control_records
from studio.core.errors import StudioError, first_line
from studio.core.hashing import controlnet_hash, lora_hash, model_hash, same_hash
from studio.core.images import read_recipe
from studio.core.metadata import Recipe
from studio.core.model_library import KIND_FOLDERS, LibraryItem, scan_library
from studio.core.models import SAFE_SUFFIX, find_weights, find_weights_or_folder
from studio.core.prompt_loras import the_library_item
from studio.services.history_reuse import chosen_loras_and_vae, picture_recipe
from studio.services.history_store import HistoryEntry

Library = Callable[[], list[LibraryItem]]  # the model library's listing, scanned when first asked for
DIFFUSERS_CONFIG = "config.json"  # what makes a folder a diffusers VAE or ControlNet
OLD_MODEL_HASH_LENGTH = 8  # A1111's "Model hash" before AutoV2
AUTO_V2_LENGTH = 10  # Studio recorded a LoRA's AutoV2 hash (of the whole file) before it recorded AutoV3's


class RecordedFile(NamedTuple):
    """A file an entry was made with, as recorded."""
    kind: str  # "LoRA" | "VAE" | "ControlNet": its kind, as the sentences name it
    name: str  # as the sentences name it
    chosen: str  # the name (or path) a rerun looks it up by
    digest: str  # its hash when the picture was made


def changed_file_warnings(entry: HistoryEntry, models_root: Path, hash_cache: Path | None = None, *,
                          label: str | None = None, linked: Sequence[Path] = ()) -> list[str]:
    """One sentence for the entry's checkpoint if it changed, and one for each recorded LoRA, VAE and ControlNet
    that is missing or is another file now; empty when all are the same or none has a recorded hash. A file is
    looked for where the library looks: the models folder and the ``linked`` files and folders. Reads and
    hashes files: call it in a worker thread."""
    warnings = [warning] if (warning := model_change_warning(entry, hash_cache, label=label)) else []
    return warnings + _file_warnings(recorded_files(entry), models_root, hash_cache, linked)


def picture_file_warnings(picture: Path, model: Path | None, models_root: Path,
                          hash_cache: Path | None = None, *, linked: Sequence[Path] = ()) -> list[str]:
    """For a picture dropped on the prompt box (Studio's or AUTOMATIC1111's): one sentence if ``model``, the model
    its parameters chose by name, is not the file its recipe's hash names, and one for each LoRA, VAE and ControlNet
    recorded with a hash that is missing or another file now (looked for in the models folder and the ``linked``
    files and folders). Empty for a picture without a recipe. Reads and hashes files: call it in a worker thread."""
    try:
        recipe = read_recipe(picture)
    except (StudioError, ValueError, TypeError):  # a damaged recipe only loses what it would have told
        return []
    if recipe is None:
        return []
    warnings = []
    if model is not None and recipe.model_hash and model.exists():
        try:
            # A1111 wrote the old 8-digit hash (of 64 KiB at 1 MiB) before its 10-digit one (of the whole file).
            current = controlnet_hash(model) if len(recipe.model_hash) == OLD_MODEL_HASH_LENGTH and model.is_file() \
                else model_hash(model, hash_cache)
        except OSError as exc:
            return [f"Studio could not check its files: {first_line(exc)}."]
        if not same_hash(recipe.model_hash, current):
            warnings.append(f"The model {recipe.model_name!r} in the list is not the file this picture was made with "
                            f"(hash {recipe.model_hash} then, {current} now): the picture may come out different.")
    files = _once(_lora_and_vae_files({}, recipe) + _controlnet_files(recipe.controls))
    return warnings + _file_warnings(files, models_root, hash_cache, linked)


def _file_warnings(files: list[RecordedFile], models_root: Path, hash_cache: Path | None,
                   linked: Sequence[Path]) -> list[str]:
    library = cache(lambda: scan_library(models_root, linked))  # read once, and only if a name is not found by path
    return [warning for recorded in files
            if (warning := file_change_warning(recorded, models_root, hash_cache, library=library))]


def model_change_warning(entry: HistoryEntry, hash_cache: Path | None = None, *,
                         label: str | None = None) -> str | None:
    """A sentence when the entry's model file no longer has the recorded hash, else None; ``label`` names the entry
    in it ("history entry 3" unless given).

    Hashes the model's weights (cached by size and modification time): seconds for a model not
    hashed before, so call it off the UI thread.
    """
    path = Path(entry.model_path) if entry.model_path else None
    if not entry.model_hash or path is None or not path.exists():
        return None
    current = model_hash(path, hash_cache)
    if current == entry.model_hash:
        return None
    label = label or f"history entry {entry.id}"
    return (f"The model file changed since {label} was made (hash {entry.model_hash} then, {current} now); the "
            "picture may come out different.")


def recorded_files(entry: HistoryEntry) -> list[RecordedFile]:
    """The LoRAs, VAE and ControlNets the entry records a hash for, each looked up by the name a rerun uses:
    its params' (as chosen: a name or a path) where the job recorded them, else its picture's recipe's."""
    params = entry.params
    recipe = picture_recipe(entry) if entry.generator in ("", "diffusers") else None
    files = _lora_and_vae_files(params, recipe) if recipe is not None else _recorded_lora_and_vae_files(params)
    records = control_records(params["controls"]) if "controls" in params else \
        recipe.controls if recipe is not None else ()
    return _once(files + _controlnet_files(records))


def _once(files: list[RecordedFile]) -> list[RecordedFile]:
    """Each file once, where it is first named (two guides with one ControlNet: one sentence)."""
    unique = {(f.kind, f.chosen): f for f in reversed(files)}
    return [f for f in files if unique[(f.kind, f.chosen)] is f]


def _controlnet_files(records: tuple[dict, ...]) -> list[RecordedFile]:
    """The guides' ControlNets recorded with a hash."""
    return [RecordedFile("ControlNet", _shown_name(model), model, digest) for record in records
            if isinstance(model := record.get("model"), str) and model
            and isinstance(digest := record.get("hash"), str) and digest]


def file_change_warning(recorded: RecordedFile, models_root: Path, hash_cache: Path | None = None, *,
                        library: Library | None = None) -> str | None:
    """A sentence when the file is missing or is not the one recorded (by its hash), else None. ``library``: the
    model library's listing, where a file not in the models folder's folder for its kind is looked for by name."""
    what = f"The {recorded.kind} {recorded.name!r}"
    path = _find(recorded, models_root, hash_cache, library or (lambda: scan_library(models_root)))
    try:
        current = _current_hash(recorded, path, hash_cache) if path is not None else ""
    except (OSError, StudioError) as exc:
        return f"{what} this picture was made with cannot be read now ({first_line(exc)}): the result will differ."
    if not current:  # no file, or a ControlNet folder without weights: nothing of it to run with
        return (f"{what} this picture was made with (hash {recorded.digest}) is missing, so it cannot be made the "
                "same way again.")
    if same_hash(recorded.digest, current):
        return None
    return (f"{what} is not the file this picture was made with (hash {recorded.digest}, now {current}): the result "
            "will differ.")


def _lora_and_vae_files(params: dict, recipe: Recipe) -> list[RecordedFile]:
    """The recipe's LoRAs and VAE with hashes, paired with the names a rerun looks up: the params' in order
    (the engine records the LoRAs in the order they were chosen), or the recipe's own where the params have none."""
    loras, vae = chosen_loras_and_vae(params, recipe)
    files: list[RecordedFile] = []
    if len(loras) == len(recipe.loras):  # else the picture does not record this job's LoRAs: nothing to pair
        files += [RecordedFile("LoRA", record.name, choice.name, record.hash)
                  for choice, record in zip(loras, recipe.loras, strict=True) if record.hash]
    if recipe.vae_hash and vae:
        files.append(RecordedFile("VAE", recipe.vae_name or _shown_name(vae), vae, recipe.vae_hash))
    return files


def _recorded_lora_and_vae_files(params: dict) -> list[RecordedFile]:
    """The LoRAs and VAE with the hashes the history recorded beside them (the picture and its recipe are gone)."""
    files = [RecordedFile("LoRA", _shown_name(item["name"]), item["name"], item["hash"])
             for item in params.get("loras") or () if isinstance(item, dict) and isinstance(item.get("name"), str)
             and isinstance(item.get("hash"), str) and item["hash"]]
    vae, digest = params.get("vae"), params.get("vae_hash")
    if isinstance(vae, str) and vae and isinstance(digest, str) and digest:
        files.append(RecordedFile("VAE", _shown_name(vae), vae, digest))
    return files


def _find(recorded: RecordedFile, models_root: Path, hash_cache: Path | None, library: Library) -> Path | None:
    """The file a rerun loads for it: by the engine's rules (``find_lora``, ``find_vae``, ``find_controlnet``),
    else the library's usable one of its kind by that name (one in a linked folder, as the window and
    ``studio generate`` choose it), or a LoRA's by its alias (A1111's ``<lora:ALIAS>``), else by the hash the
    picture recorded for it; None when there is none, or only a pickle Studio would refuse."""
    kind = recorded.kind.lower()
    folder = models_root / KIND_FOLDERS[kind]
    try:
        path = find_weights(folder, recorded.chosen) if recorded.kind == "LoRA" else \
            find_weights_or_folder(folder, recorded.chosen, DIFFUSERS_CONFIG)[0]
    except StudioError:  # a pickle under that name: not the file it was made with either
        return None
    if path is not None:
        return path
    match = the_library_item(recorded.chosen, (item for item in library() if item.kind == kind and item.usable),
                             lambda item: (item.name, item.path.name), lambda item: item.alias,
                             recorded.digest if recorded.kind == "LoRA" else "",
                             lambda item: _hash_or_nothing(recorded, item.path, hash_cache))
    return match.path if match is not None else None


def _hash_or_nothing(recorded: RecordedFile, path: Path, hash_cache: Path | None) -> str:
    """The file's hash as ``_current_hash`` gives it; "" for one that cannot be read (it is not the one sought)."""
    try:
        return _current_hash(recorded, path, hash_cache)
    except (OSError, StudioError):
        return ""


def _current_hash(recorded: RecordedFile, path: Path, hash_cache: Path | None) -> str:
    """The file's hash in the recorded hash's kind."""
    if recorded.kind == "ControlNet":
        return controlnet_hash(path)  # reads 64 KiB: nothing to cache
    if recorded.kind == "LoRA" and len(recorded.digest) != AUTO_V2_LENGTH:
        return lora_hash(path, hash_cache)
    return model_hash(path, hash_cache)


def _shown_name(chosen: str) -> str:
    """A name chosen as a path is shown by its file's name, as the recipe records it."""
    path = Path(chosen)
    return path.name.removesuffix(SAFE_SUFFIX) if path.is_absolute() else chosen
