"""The model library: every model under the models folder and the folders linked to it, by kind.

Kinds are read from file contents (tensor names and shapes in the safetensors header, or a diffusers
folder's configs), never from file names, and nothing is unpickled: a pickle checkpoint is listed with
the sentence that says how to convert it. Other tools' model folders (AUTOMATIC1111, ComfyUI,
InvokeAI) are scanned in place; hashes (A1111's AutoV2) find the same file in two places.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from studio.core.annotators import is_depth_data
from studio.core.controlnet_kinds import control_problem
from studio.core.errors import ModelError, os_reason
from studio.core.hashing import Progress, is_hashed, lora_hash, model_hash
from studio.core.lora_kinds import lycoris_problem
from studio.core.model_kind import ModelKind, model_part, part_problem
from studio.core.model_kinds import detect_folder_kind, detect_kind, read_model_index
from studio.core.paths import files_under, link_loop_sentence, real_path, real_path_or_loop
from studio.core.units import format_size  # noqa: F401 - where callers have found it
from studio.core.weight_files import check_weights_file

MODEL_INDEX = "model_index.json"
WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle", ".gguf")
SOURCE_FILE = ".studio-source.json"  # beside a downloaded folder's files: where it came from
IMPORTS_FILE = ".studio-imports.json"  # in the models folder: where imported files came from
HUB_ORIGIN = "hub:"  # an import's origin that is a hub repo (a downloaded single file, filed by kind): hub:owner/name
MAX_DEPTH = 6
ALIAS_KEY = "ss_output_name"  # kohya's trainer's name for a LoRA, which A1111's "use alias" option tags it by
MISSING = "Missing"  # the label of a linked file or folder that is not there
LOADABLE_FAMILIES = ("sd1", "sd2", "sdxl")  # what the built-in generator runs
# Where imports go, by kind: the names AUTOMATIC1111/ComfyUI people know, and what Studio's features read.
KIND_FOLDERS = {"checkpoint": "checkpoints", "lora": "loras", "vae": "vae", "upscaler": "upscalers",
                "style": "style", "ip-adapter": "ip-adapter", "embedding": "embeddings", "controlnet": "controlnet",
                "preview-decoder": ""}  # TAESD folders keep their own names (taesd/, taesdxl/) in the models folder
# Sub-folders that mark another tool's models folder, so the library can say where a model lives.
LAYOUTS = (("AUTOMATIC1111", ("Stable-diffusion", "Lora")), ("ComfyUI", ("checkpoints", "loras")),
           ("InvokeAI", ("sd-1", "sdxl")), ("InvokeAI", ("sd-1/main",)))
# Folders a models folder cannot be: the kernel's and the running system's (not files on a disk, anything under
# them), and the system's own top-level folders (themselves; a folder someone made under /var is theirs).
VIRTUAL_FOLDERS = ("/proc", "/sys", "/dev", "/run")
SYSTEM_FOLDERS = ("/bin", "/boot", "/etc", "/lib", "/lib64", "/sbin", "/usr", "/var")


def without_weights_suffix(name: str) -> str:
    """``name`` without a weights file's suffix in any letter case ("ink.SafeTensors": "ink"), as other tools
    write a model's name with it; as it is otherwise (or where the suffix is all there is)."""
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and stem and f".{suffix.lower()}" in WEIGHT_SUFFIXES else name


@dataclass(frozen=True)
class ModelEntry:
    """A full model in the model picker."""

    name: str
    path: Path
    label: str = ""  # "SD 1.x", "SDXL inpainting", ...


@dataclass(frozen=True)
class LibraryItem:
    name: str  # what the person picks or types: the file's stem, or the folder's name
    path: Path
    kind: str  # checkpoint | lora | vae | upscaler | style | ip-adapter | embedding | controlnet | image-encoder
    # | annotator (a model that makes control pictures: depth) | unknown
    family: str  # sd1 | sd2 | sdxl | sdxl-refiner | "" (see model_kinds)
    label: str  # for people: "SDXL", "LoRA (SD 1.x)", "VAE", ...
    size: int  # bytes of weights on disk
    source: str  # "models folder", "Hugging Face: owner/name", "ComfyUI folder", "imported from …"
    is_folder: bool = False
    problem: str = ""  # why it cannot be used (pickle, corrupt); empty when it can
    hash: str = ""  # AutoV2 short hash, filled in by with_hashes
    duplicate_of: Path | None = None  # the item with the same hash that counts as the original
    linked: bool = False  # found in a linked file or folder, not in Studio's models folder
    alias: str = ""  # a LoRA's ss_output_name (its trainer's name for it): A1111's <lora:ALIAS> and "Lora hashes" name
    found_at: Path | None = None  # where the scan found it, links not followed (``path`` is resolved): what Remove
    # takes away where it is a symbolic link

    @property
    def usable(self) -> bool:
        return not self.problem


def detect_layout(folder: Path) -> str:
    """Which tool's models folder this is ("AUTOMATIC1111", "ComfyUI", "InvokeAI"), or "" when none (the tool's
    own folder, with its models folder inside, counts too)."""
    return _layout_of(folder) or _layout_of(folder / "models")


def _layout_of(models_folder: Path) -> str:
    for tool, marks in LAYOUTS:
        if all((models_folder / mark).is_dir() for mark in marks):
            return tool
    return ""


def model_folders(root: Path) -> list[Path]:
    """The folders to read models from in ``root``: all of it, but only the model folders of a tool's own folder
    (``models/``; for AUTOMATIC1111 also ``embeddings/`` and each extension's ``models/``, where its ControlNet
    extension keeps ControlNets; and A1111's ``embeddings/`` beside its linked models folder). Its outputs, venv
    and extensions' code hold weights that are not the person's models (a training run's saved steps would be
    listed as LoRAs)."""
    if _layout_of(root) == "AUTOMATIC1111" and (root.parent / "embeddings").is_dir():
        return [root, root.parent / "embeddings"]
    if _layout_of(root) or not (tool := _layout_of(root / "models")):
        return [root]
    if tool != "AUTOMATIC1111":
        return [root / "models"]
    beside = [root / "embeddings"] if (root / "embeddings").is_dir() else []
    extensions = sorted(f for f in root.glob("extensions/*/models") if f.is_dir())
    return [root / "models", *beside, *extensions]


def system_folder_problem(path: Path) -> str:
    """Why ``path`` is no place to read models from (the root, a system folder, anything under /proc or /dev: a scan
    of them takes seconds and lists thousands of the system's files), as one sentence without its full stop; ""
    when it is not one. The rule for the models folder and for linked folders alike."""
    where = real_path(path)
    if where == Path(where.anchor):
        return f"{path} is the root of the filesystem, not a folder for models"
    if os.name == "posix" and (where in map(Path, SYSTEM_FOLDERS)
                               or any(where.is_relative_to(system) for system in VIRTUAL_FOLDERS)):
        return f"{path} is a system folder, which cannot hold models"
    return ""


def models_folder_problem(folder: Path) -> str:
    """Why ``folder`` cannot be the models folder, as one sentence without its full stop (imports and downloads are
    written there, so it must be writable, which a linked folder need not be); "" when it can."""
    where = real_path(folder)
    if problem := system_folder_problem(folder):
        return problem
    if not where.is_dir():
        return f"{folder} is not a folder"
    if not os.access(where, os.W_OK | os.X_OK):
        return f"{folder} cannot be written to, so models could not be imported or downloaded into it"
    return ""


Wanted = Callable[[Path], bool]  # which files and folders to read, by path: the rest are left unread


def scan_library(models_dir: Path, linked: Sequence[Path] = (), only: Wanted | None = None) -> list[LibraryItem]:
    """Every model in models_dir and in the linked files and folders, once each, sorted by kind and name;
    with ``only``, just those it wants (the same walk, without reading every file's header)."""
    seen: dict[Path, LibraryItem] = {}
    imports = read_imports(models_dir)
    roots: list[tuple[Path, str]] = [(models_dir, "models folder")]
    for path in linked:
        tool = detect_layout(path) if path.is_dir() else ""
        roots.append((path, f"{tool} folder {path}" if tool else f"linked: {path}"))
    for root, source in roots:
        if root != models_dir and not root.exists():
            what = "file" if root.suffix.lower() in WEIGHT_SUFFIXES else "folder"
            seen[root] = LibraryItem(root.name, real_path(root), "unknown", "", MISSING, 0, source,
                                     linked=True, problem=f"The linked {what} {root} is not there (moved, or on a "
                                     "drive that is not plugged in); its models come back when it is, or unlink it.")
            continue
        for item in _scan_root(root, source, only or _every):
            resolved, loop = real_path_or_loop(item.path)
            if loop:  # listed with why, and the rest of the library still is
                item = replace(item, kind="unknown", family="", label="Unusable",
                               problem=link_loop_sentence(item.path))
            if resolved in seen:
                continue
            origin = imports.get(str(resolved))
            source = item.source if not origin else f"Hugging Face: {origin.removeprefix(HUB_ORIGIN)}" \
                if origin.startswith(HUB_ORIGIN) else f"imported from {origin}"
            if root == models_dir and item.path.is_symlink():  # what Remove takes away: the link, not the files
                source = f"{source} (a link to {resolved})"
            seen[resolved] = replace(item, path=resolved, source=source, linked=root != models_dir,
                                     found_at=item.path)
    return sorted(seen.values(), key=lambda i: (i.kind != "checkpoint", i.kind, i.name.lower()))


def with_hashes(items: Iterable[LibraryItem], cache_file: Path | None,
                progress: Progress | None = None) -> list[LibraryItem]:
    """The items with their hashes (cached by size and mtime) and duplicates marked: a copy in
    Studio's models folder counts as the original over one in a linked folder. ``progress`` is told the bytes
    read as files are hashed (those not cached)."""
    items = list(items)
    digests = [library_hash(item, cache_file, progress) for item in items]
    first: dict[str, Path] = {}
    for index in sorted(range(len(items)), key=lambda i: items[i].linked):
        if digests[index]:
            first.setdefault(digests[index], items[index].path)
    return [replace(item, hash=digest,
                    duplicate_of=first[digest] if digest and first[digest] != item.path else None)
            for item, digest in zip(items, digests, strict=True)]


def unhashed(items: Iterable[LibraryItem], cache_file: Path | None) -> list[LibraryItem]:
    """The items whose hashes are not cached yet: what with_hashes reads whole (about 1 s per GB)."""
    return [item for item in items if _hashable(item.path)
            and not is_hashed(item.path, cache_file, tensors=item.kind == "lora" and item.path.is_file())]


def library_hash(item: LibraryItem, cache_file: Path | None, progress: Progress | None = None) -> str:
    """The hash the library compares items by: AutoV3 for a LoRA (what A1111 writes in "Lora hashes"), AutoV2 for
    everything else. (A ControlNet's in recipes is sd-webui-controlnet's, ``hashing.controlnet_hash``: it reads
    64 KiB, too little to find duplicates.)"""
    if not _hashable(item.path):
        return ""
    if item.kind == "lora" and item.path.is_file():
        return lora_hash(item.path, cache_file, progress)
    return model_hash(item.path, cache_file, progress)


def _hashable(path: Path) -> bool:
    """A file or folder to read for a hash: never a named pipe or device (a read of one can block for ever)."""
    return path.is_file() or path.is_dir()


def checkpoints(items: Iterable[LibraryItem]) -> list[ModelEntry]:
    """The usable full models among scanned items (what the model picker lists), sorted by name."""
    usable = [i for i in items if i.kind == "checkpoint" and i.usable]
    return [ModelEntry(i.name, i.path, i.label) for i in sorted(usable, key=lambda i: i.name.lower())]


def find_item(value: str, items: Iterable[LibraryItem]) -> LibraryItem | None:
    """An item by name, file name or path."""
    for item in items:
        if value in (item.name, item.path.name, str(item.path)):
            return item
    return None


def item_for_file(path: Path, source: str) -> LibraryItem:
    """One weights file, identified by its contents (a dangling link or unreadable file is listed with why)."""
    try:
        size = path.stat().st_size
        info = check_weights_file(path)
        kind = detect_kind(info, path.name, path)
    except OSError as exc:
        return LibraryItem(path.stem, path, "unknown", "", "Unusable", 0, source,
                           problem=f"{path.name} could not be read: {os_reason(exc)}.")
    except ModelError as exc:
        return LibraryItem(path.stem, path, "unknown", "", "Unusable", size, source, problem=str(exc))
    alias = info.metadata.get(ALIAS_KEY, "").strip() if kind.kind == "lora" else ""
    return replace(_item(path.stem, path, kind, size, source), problem=unloadable_reason(kind, path.name), alias=alias)


def item_for_folder(path: Path, source: str) -> LibraryItem:
    """A diffusers pipeline folder, or a single component folder (a VAE, an image encoder)."""
    try:
        index = read_model_index(path)  # read once: the kind, the checks and the class check all use it
        configs: dict[str, dict] = {}  # the component configs the kind was read from, for the checks
        kind = detect_folder_kind(path, index, configs)
    except ModelError as exc:
        return LibraryItem(path.name, path, "unknown", "", "Unusable", 0, source, is_folder=True, problem=str(exc))
    config = _transformers_config(path) if kind.kind == "unknown" else {}
    names = config.get("architectures")
    architecture = str(names[0]) if isinstance(names, list) and names else ""
    if architecture and is_depth_data(config):  # what the Depth preprocessor runs
        kind = ModelKind("annotator", label="Depth map model (Depth Anything)", detail=architecture)
    elif architecture:  # a text encoder found loose is a part of a model, not an image encoder
        kind = model_part(architecture) or ModelKind("image-encoder", label=f"Image encoder ({architecture})")
    files = files_under(path)  # listed once: the size and the model's checks both read it
    size = sum(file_size for file, file_size in files if file.suffix in WEIGHT_SUFFIXES)
    source = _downloaded_from(path) or source
    problem = ""
    if kind.kind == "checkpoint":
        from studio.core.models import check_model_folder

        try:
            check_model_folder(path, index, files, configs)
        except ModelError as exc:
            problem = str(exc)
        problem = problem or unloadable_reason(kind, path.name) or _missing_class_problem(path, index)
    elif kind.kind in ("controlnet", "unknown"):
        problem = unloadable_reason(kind, path.name)
    return replace(_item(path.name, path, kind, size, source), is_folder=True, problem=problem)


def _missing_class_problem(folder: Path, index: dict | None) -> str:
    """Why a model folder cannot load: its model_index.json (``index``, parsed) names a class diffusers lacks."""
    from studio.core.pipeline_classes import missing_class_problem  # it reads studio.core.models, which reads this

    return missing_class_problem(folder, index)


def _downloaded_from(folder: Path) -> str:
    """"Hugging Face: owner/name" for a folder a download made, else ""."""
    downloaded = read_source(folder)
    return f"Hugging Face: {downloaded['repo_id']}" if downloaded and downloaded.get("repo_id") else ""


def read_source(folder: Path) -> dict | None:
    """The ``.studio-source.json`` a download left in ``folder``, or None."""
    try:
        data = json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_imports(models_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((models_dir / IMPORTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def unloadable_reason(kind: ModelKind, name: str) -> str:
    if lycoris := lycoris_problem(kind, name):
        return lycoris
    if unsupported := control_problem(kind, name):
        return unsupported
    if part := part_problem(kind, name):
        return part
    if kind.kind != "checkpoint" or kind.family in LOADABLE_FAMILIES:
        return ""
    return (f"{name} is an {kind.label} model, which Studio cannot generate with yet; it runs SD 1.x, SD 2.x and "
            "SDXL base models and their inpainting variants.")


def _item(name: str, path: Path, kind: ModelKind, size: int, source: str) -> LibraryItem:
    return LibraryItem(name, path, kind.kind, kind.family, kind.label, size, source)


def _transformers_config(path: Path) -> dict:
    """A folder's config.json, parsed ({} if it has none or it cannot be read)."""
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_component_folder(path: Path) -> bool:
    """A folder holding one model's config.json and weights (a diffusers VAE, an image encoder)."""
    return (path / "config.json").is_file() and any(
        f.suffix == ".safetensors" for f in path.iterdir() if f.is_file())


def _every(path: Path) -> bool:
    return True


def _scan_root(root: Path, source: str, wanted: Wanted) -> Iterator[LibraryItem]:
    if root.is_file():
        if root.suffix.lower() in WEIGHT_SUFFIXES and wanted(root):
            yield item_for_file(root, source)
        return
    if not root.is_dir():
        return
    if (root / MODEL_INDEX).is_file():
        if wanted(root):
            yield item_for_folder(root, source)
        return
    visited: set[Path] = set()
    for folder in model_folders(root):
        yield from _walk(folder, source, visited, wanted)


def _walk(root: Path, source: str, visited: set[Path], wanted: Wanted) -> Iterator[LibraryItem]:
    base_depth = len(root.parts)
    # Links are followed (people link model folders between tools); each real folder is read once, so a
    # link loop ends.
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        real = real_path(here)
        if real in visited:
            dirs.clear()
            continue
        visited.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "configs")
        if here != root and ((here / MODEL_INDEX).is_file() or _is_component_folder(here)):
            dirs.clear()
            if wanted(here):
                yield item_for_folder(here, source)
            continue
        if len(here.parts) - base_depth >= MAX_DEPTH:
            dirs.clear()
        files_source = (_downloaded_from(here) or source) if SOURCE_FILE in files else source  # a single-file repo
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in WEIGHT_SUFFIXES and wanted(here / name):
                yield item_for_file(here / name, files_source)

