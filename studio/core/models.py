"""Finding models and weight files on disk and refusing the formats Studio will not load."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Collection
from pathlib import Path

from studio.core.errors import InvalidRequest, ModelError
from studio.core.model_kind import ModelKind, with_article
from studio.core.model_kinds import detect_kind
from studio.core.model_library import (MAX_DEPTH, ModelEntry, checkpoints, model_folders, scan_library,
                                       unloadable_reason)
from studio.core.paths import files_under, link_loop_problem, links_looping, real_path
from studio.core.weight_files import (check_weights_file, file_mode, pickle_refusal, special_file_problem,
                                      special_mode_problem)

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
SAFE_SUFFIX = ".safetensors"
MODEL_INDEX = "model_index.json"
# After what a model folder lacks: a download that stopped and a folder copied by hand that missed a part both
# leave one so, and each has its own remedy.
INCOMPLETE = ("; if it is a download that did not finish, download it again to resume; otherwise copy the whole "
              "folder again.")
SKIPPED_COMPONENTS = ("safety_checker",)  # never loaded, so its weight format does not matter
WEIGHT_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "transformer")  # the parts that hold weights
# The file diffusers reads first for a component, by the component's name; any other component needs config.json.
COMPONENT_FILES = {"scheduler": ("scheduler_config.json",), "feature_extractor": ("preprocessor_config.json",),
                   "tokenizer": ("tokenizer.json", "vocab.json"), "tokenizer_2": ("tokenizer.json", "vocab.json")}


def is_diffusers_folder(path: Path) -> bool:
    return (path / MODEL_INDEX).is_file()


def find_models(models_dir: Path, extra: list[Path] | tuple[Path, ...] = ()) -> list[ModelEntry]:
    """Full models Studio can generate with: diffusers folders and single-file checkpoints, in the models
    folder (at any depth) and in the files and folders linked to the library (``extra``)."""
    return checkpoints(scan_library(models_dir, extra))


def resolve_model(value: str, models_dir: Path, extra: list[Path] | tuple[Path, ...] = ()) -> Path:
    """A model folder or checkpoint file as given, or the name of one in the library."""
    path = Path(value).expanduser()
    if path.exists():
        return real_path(path)
    if os.path.lexists(path) and (loop := link_loop_problem(path)):
        raise InvalidRequest(loop)
    items = scan_library(models_dir, extra)
    found = [entry.path for entry in checkpoints(items) if value in (entry.name, entry.path.name)]
    if len(found) > 1:
        raise InvalidRequest(f"{len(found)} models are named {value!r} ({', '.join(str(p) for p in found[:3])}); "
                             "give the one you mean by its path.")
    if found:
        return found[0]
    other = next((i for i in items if value in (i.name, i.path.name)), None)  # what `models list` shows by the name
    if other is not None and other.kind in ("checkpoint", "unknown") and other.problem:  # why Studio cannot use it
        raise InvalidRequest(other.problem)
    if other is not None and other.kind not in ("checkpoint", "unknown"):  # it said "No model … named 'ink'"
        use = USED_WITH.get(other.kind, "")
        raise InvalidRequest(f"{value} is {with_article(other.label)}, not a model to generate with"
                             f"{'; use ' + use.format(name=value) if use else ''}.")
    # A loop with a weights suffix is listed (with its problem, above); one without is not: said, not "not found".
    for folder in (models_dir, *extra):
        if loops := links_looping(model_folders(folder), value, MAX_DEPTH) if folder.is_dir() else []:
            raise InvalidRequest(link_loop_problem(loops[0]))
    raise InvalidRequest(f"No model file or folder named {value!r} was found (looked in {models_dir}).")


USED_WITH = {"lora": "--lora {name}", "vae": "--vae {name}", "controlnet": "--control {name} IMAGE"}


def checkpoint_kind(path: Path) -> ModelKind:
    """The kind of a single-file checkpoint, read from its contents; ModelError unless Studio can load it."""
    kind = detect_kind(check_weights_file(path), path.name, path)
    if kind.kind == "unknown":
        raise ModelError(f"{path.name} is a safetensors file, but not a Stable Diffusion checkpoint Studio knows.")
    if kind.kind != "checkpoint":
        raise ModelError(f"{path.name} is {with_article(kind.label)} file, not a full Stable Diffusion checkpoint; "
                         "pick it where that kind is used.")
    if path.suffix.lower() != SAFE_SUFFIX:  # diffusers picks its reader by the name: anything else is torch.load
        raise ModelError(f"{path.name} is a safetensors file under another name; rename it to "
                         f"{path.stem}{SAFE_SUFFIX} to use it.")
    if problem := unloadable_reason(kind, path.name):
        raise ModelError(problem)
    return kind


def check_model_folder(path: Path, index: dict | None = None, files: list[tuple[Path, int]] | None = None,
                       configs: dict[str, dict] | None = None) -> dict | None:
    """Raise ModelError with one sentence unless path is a diffusers folder of safetensors weights; else its
    model_index.json, parsed (None for a single-file checkpoint), for the loader to use as it is. ``index``: the
    model_index.json, already parsed, ``files``: its files as ``files_under`` listed them, and ``configs``:
    component configs already read, by their place in the folder (a scan reads and lists each once)."""
    mode = file_mode(path)  # one look-up: there? a special file? a file?
    if mode is None:
        raise ModelError(f"The model {path} does not exist.")
    if special := special_mode_problem(path, mode):
        raise ModelError(special)
    if stat.S_ISREG(mode):
        checkpoint_kind(path)
        return None
    if index is None and not is_diffusers_folder(path):  # an index given was read from it
        raise ModelError(f"{path} is not a diffusers model folder (it has no {MODEL_INDEX}).")
    depth = len(path.parts)  # a file's part of the folder is the first name below it
    listed = [p for p, _ in (files if files is not None else files_under(path))]
    weights = [p for p in listed if p.parts[depth] not in SKIPPED_COMPONENTS]
    safe_dirs = {p.parent for p in weights if p.name.endswith(SAFE_SUFFIX)}
    pickles = [p for p in weights if p.suffix.lower() in PICKLE_SUFFIXES and p.parent not in safe_dirs]
    if pickles:
        names = ", ".join(str(p.relative_to(path)) for p in pickles[:3])
        raise ModelError(
            f"The model {path.name} has pickle weights ({names}), which can run code when loaded; "
            "Studio only reads safetensors. Convert them to safetensors first."
        )
    named = index
    try:
        named = named if named is not None else json.loads((path / MODEL_INDEX).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        named = None
    if not isinstance(named, dict):
        raise ModelError(f"The {MODEL_INDEX} of the model {path.name} could not be read as a JSON object of its "
                         "components.")
    weighted = {p.parts[depth] for p in weights
                if p.name.endswith(SAFE_SUFFIX) or p.suffix.lower() in PICKLE_SUFFIXES}
    for component in WEIGHT_COMPONENTS:
        entry = named.get(component)
        if isinstance(entry, list) and entry and entry[0] is not None and component not in weighted:
            raise ModelError(f"The model {path.name} has no weights for its {component}{INCOMPLETE}")
    if problem := component_problem(path, named, configs, set(listed)):
        raise ModelError(problem)
    for weights_file in sorted(p for p in weights if p.name.endswith(SAFE_SUFFIX)):
        try:  # headers only: a truncated or emptied file is refused here, not halfway through a load
            check_weights_file(weights_file)
        except ModelError as exc:
            raise ModelError(f"The model {path.name} has a damaged weights file, "
                             f"{weights_file.relative_to(path)}: {str(exc).rstrip('.')}.") from None
    return named


def component_problem(path: Path, named: dict, configs: dict[str, dict] | None = None,
                      listed: Collection[Path] = ()) -> str:
    """Why a component model_index.json names cannot be loaded (its folder or config file is missing or is not
    JSON), as one sentence; "" when every one has what diffusers reads first. ``configs``: those already read;
    ``listed``: files known to be there (the folder's listing), so that only the others are looked for."""
    for component, entry in named.items():
        if component.startswith("_") or component in SKIPPED_COMPONENTS or not isinstance(entry, list) \
                or len(entry) != 2 or None in entry:
            continue
        names = COMPONENT_FILES.get(component, ("config.json",))
        found = next((file for file in (path / component / name for name in names)
                      if file in listed or file.is_file()), None)
        if found is None:
            return (f"The model {path.name} is missing {component}/{names[0]}, which its {component} is loaded "
                    f"from{INCOMPLETE}")
        if found.name.endswith("config.json"):
            config = (configs or {}).get(f"{component}/{found.name}")
            try:
                config = config if config is not None else json.loads(found.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                config = None
            if not isinstance(config, dict):
                return f"The model {path.name} has a damaged {component}/{found.name}: it is not a JSON object."
            # diffusers writes the class into every config it saves; one without it ({}) was listed as usable,
            # then built with default sizes its weights do not fit.
            if entry[0] == "diffusers" and "_class_name" not in config:
                return (f"The model {path.name} has a damaged {component}/{found.name}: it does not name the "
                        f"{component}'s class (_class_name), as every config diffusers writes does.")
    return ""


def find_weights(folder: Path, name: str) -> Path | None:
    """The weights file ``name`` names: ``<folder>/<name>.safetensors``, ``<folder>/<name>``, else a file at
    ``name`` itself; None when there is none. A pickle (by suffix, or the same name with a pickle suffix in
    ``folder``) is refused with ``pickle_refusal``, unopened.

    Only names are looked at: requests are checked before any weights are read (the CLI does it without
    torch), and every loader runs ``check_weights_file`` on the file right before reading it.
    """
    if not name.strip():
        return None
    stem = name.removesuffix(SAFE_SUFFIX)
    # The safetensors name first: a stray file without a suffix must not hide the loadable one.
    for candidate in (folder / f"{stem}{SAFE_SUFFIX}", folder / name, Path(name).expanduser()):
        if special := special_file_problem(candidate):  # a named pipe's read would wait for ever
            raise ModelError(special)
        if candidate.is_file():
            if candidate.suffix.lower() in PICKLE_SUFFIXES:
                raise ModelError(pickle_refusal(candidate))
            return candidate
    for suffix in PICKLE_SUFFIXES:  # the person has it, but as a pickle: say how to convert it
        if (folder / f"{stem}{suffix}").is_file():
            raise ModelError(pickle_refusal(folder / f"{stem}{suffix}"))
    return None


def find_weights_or_folder(folder: Path, name: str, config: str) -> tuple[Path | None, str]:
    """A diffusers folder (one with ``config``) or weights file that ``name`` names in ``folder``, else at ``name``
    itself (``find_weights``' rules), and where that was looked for, as a phrase for the sentence when it is None."""
    given = Path(name).expanduser()
    path = folder / name if (folder / name / config).is_file() else find_weights(folder, name)
    if path is None and (given / config).is_file():
        path = given
    looked = (f"the folder {folder / name} (with {config}), the file "
              f"{folder / (name.removesuffix(SAFE_SUFFIX) + SAFE_SUFFIX)} and a file or folder at {given}")
    return path, looked
