"""Models that make a control picture from a photo (sd-webui-controlnet's "annotators"): where they live in the
models folder, which hub repository each comes from, and the sentence that says how to get one that is missing.

Only Depth Anything V2 Small for now (Apache-2.0; its Base and Large siblings are larger, Large is non-commercial):
the transformers port, a folder with ``config.json``, ``model.safetensors`` and ``preprocessor_config.json``. No
torch here: the command line and the window ask whether it is there before the engine starts.
"""

from __future__ import annotations

import json
from pathlib import Path

FOLDER = "annotators"  # in the models folder, beside controlnet/
DEPTH_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
DEPTH_TITLE = "Depth Anything V2 Small"
DEPTH_SIZE = "99 MB"
DEPTH_FOLDER = f"{FOLDER}/depth-anything-v2-small"
DEPTH_MODEL_TYPE = "depth_anything"  # its config.json's model_type, as transformers names the architecture
DEPTH_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
# Where ``studio models download`` puts these repositories (others go in a folder named after the repository).
HUB_FOLDERS = {DEPTH_REPO: DEPTH_FOLDER}
DOWNLOAD_COMMAND = f"run `studio models download {DEPTH_REPO}`"  # the command line's way to get it
# Either way: said where the caller may be either (the engine: a job from the window or the command line).
EITHER_WAY = f"download it with the button on a Depth guide's card or with `studio models download {DEPTH_REPO}`"


def find_depth_model(models_dir: Path | None) -> Path | None:
    """The Depth Anything folder in the models folder's ``annotators/``: ``depth-anything-v2-small`` (where the
    download puts it), else the first other folder there that holds a whole Depth Anything model (one a person put
    there: Base, say); None when there is none. A download in progress has not all its files yet: not found."""
    if models_dir is None:
        return None
    own = Path(models_dir) / DEPTH_FOLDER
    if _whole(own):
        return own
    folder = Path(models_dir) / FOLDER
    others = sorted(p for p in folder.iterdir() if p.is_dir() and p != own) if folder.is_dir() else []
    return next((p for p in others if _whole(p) and is_depth_config(p / "config.json")), None)


def is_depth_config(config: Path) -> bool:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and is_depth_data(data)


def is_depth_data(config: dict) -> bool:
    """A transformers folder's parsed config.json is the depth model's (what the Depth preprocessor runs)."""
    return config.get("model_type") == DEPTH_MODEL_TYPE


def depth_model_missing(models_dir: Path | None, where: str = "", label: str = "") -> str:
    """The sentence for a depth guide with no depth model: what is missing and the ways to get it. ``where``: how
    the caller says to get it (the window's button, ``DOWNLOAD_COMMAND``), else both; ``label``: the guide, as the
    window names it."""
    how = where or EITHER_WAY
    whose = f"{label}'s" if label else "The"
    return (f"{whose} Depth preprocessor needs the {DEPTH_TITLE} model ({DEPTH_SIZE}), "
            f"which is not in the models folder; {how}, or {put_its_files(models_dir)}.")


def put_its_files(models_dir: Path | None) -> str:
    """The other way to get the depth model, for the end of a sentence: where its files go by hand."""
    folder = Path(models_dir) / DEPTH_FOLDER if models_dir is not None else Path(DEPTH_FOLDER)
    return f"put its files ({', '.join(DEPTH_FILES)}) in {folder}"


def _whole(folder: Path) -> bool:
    return all((folder / name).is_file() for name in DEPTH_FILES)
