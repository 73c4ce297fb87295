"""ComfyUI's ``extra_model_paths.yaml``: the model folders it names, read as ComfyUI reads them
(``utils/extra_config.py``): each section's ``base_path`` (``~`` and ``$VARS`` expanded, relative to the file's
folder), and for each kind one folder or several, one a line, relative to the base path."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.errors import InvalidRequest, os_reason

EXTRA_PATHS_FILE = "extra_model_paths.yaml"
# The kinds of ComfyUI folders whose models Studio lists and uses (configs, custom_nodes and the rest are not).
LINKED_KINDS = ("checkpoints", "loras", "vae", "controlnet", "embeddings", "upscale_models")


@dataclass
class ExtraModelPaths:
    folders: list[Path] = field(default_factory=list)  # those that are there, in the file's order, once each
    missing: list[Path] = field(default_factory=list)  # named, but not there (a drive not plugged in)


def is_extra_paths_file(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def read_extra_model_paths(file: Path) -> ExtraModelPaths:
    """The model folders the file names; InvalidRequest with one sentence when it cannot be read as one."""
    import yaml

    try:
        config = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"{file} could not be read: {os_reason(exc)}.") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise InvalidRequest(f"{file} is not a YAML file ComfyUI could read{line}: "
                             f"{getattr(exc, 'problem', None) or exc}.") from None
    if not isinstance(config, dict) or not any(isinstance(section, dict) for section in config.values()):
        raise InvalidRequest(f"{file} names no model folders: ComfyUI's extra_model_paths.yaml has sections "
                             "such as comfyui: with a base_path and checkpoints:, loras:, vae: folders.")
    here = file.absolute().parent
    found = ExtraModelPaths()
    for section in config.values():
        if not isinstance(section, dict):
            continue
        base = section.get("base_path")
        base_path = here / os.path.expandvars(os.path.expanduser(str(base))) if base else here
        for kind in LINKED_KINDS:
            value = section.get(kind)
            for line in str(value).splitlines() if isinstance(value, str) else ():
                folder = Path(os.path.normpath(base_path / line.strip())) if line.strip() else None
                if folder is None or folder in found.folders or folder in found.missing:
                    continue
                (found.folders if folder.is_dir() else found.missing).append(folder)
    return found
