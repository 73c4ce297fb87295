"""Which files of a hub repository Studio takes: safetensors weights (one variant each), configs and
tokenizer files; never pickles, never the safety checker; and repo paths that could escape the target."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from studio.core.errors import ModelError

MODEL_INDEX = "model_index.json"
KEEP_SUFFIXES = (".safetensors", ".json", ".txt", ".model")  # weights, configs, tokenizer vocabularies
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle")  # never taken: unpickling can run code
SKIPPED_FOLDERS = ("safety_checker",)  # Studio never loads it
COMPONENT_WEIGHTS = ("diffusion_pytorch_model", "model")  # a diffusers / transformers component's weights
# diffusers names variants x.fp16.safetensors, x.fp16-00001-of-00002.safetensors, x.safetensors.index.fp16.json.
# One variant per weight is taken, in this order: fp16 (what a GPU runs; half the download of fp32), the plain
# file, bf16, fp32. EMA copies are training leftovers and never taken.
_VARIANTS = "fp16|fp32|bf16|ema|non_ema|non-ema"
_WEIGHT = re.compile(rf"^(?P<base>.+?)(?:\.(?P<variant>{_VARIANTS}))?(?:-\d{{5}}-of-\d{{5}})?\.safetensors$")
_INDEX = re.compile(rf"^(?P<base>.+?)\.safetensors\.index(?:\.(?P<variant>{_VARIANTS}))?\.json$")
_PREFERENCE = ("fp16", None, "bf16", "fp32")


def select_files(repo_id: str, listing: Sequence[tuple[str, int]],
                 components: Collection[str] | None) -> list[tuple[str, int]]:
    """The (path, size) entries Studio takes from a repo listing. ``components`` are the folders a diffusers
    model_index.json names (root-level single-file copies are then skipped); None for other repos."""
    kept = [(path, size) for path, size in listing if _wanted(path, components)]
    keys = {path: weight_key(path) for path, _ in kept}
    groups: dict[tuple[str, str], set[str | None]] = {}
    for group, variant in filter(None, keys.values()):
        groups.setdefault(group, set()).add(variant)
    # A component folder (config.json + diffusion_pytorch_model/model weights) may also hold single-file copies
    # of the same weights (madebyollin/sdxl-vae-fp16-fix ships three): take the component's own only.
    names = {path for path, _ in kept}
    component_dirs = {folder for folder, base in groups
                      if base in COMPONENT_WEIGHTS and f"{folder}/config.json".lstrip("/") in names}
    chosen = {group: next((v for v in _PREFERENCE if v in variants), "-") for group, variants in groups.items()
              if group[0] not in component_dirs or group[1] in COMPONENT_WEIGHTS}
    files = [(path, size) for path, size in kept
             if (key := keys[path]) is None or chosen.get(key[0], "-") == key[1]]
    _refuse_pickles(repo_id, listing, files, components)
    return files


def unsafe_path(path: str) -> bool:
    """A repo path that could land outside the target folder: absolute, ``..``, backslashes, drive letters."""
    parts = path.split("/")
    return not path or "\\" in path or "\0" in path or ":" in parts[0] or any(p in ("", ".", "..") for p in parts)


def _wanted(path: str, components: Collection[str] | None) -> bool:
    folder, _, name = path.rpartition("/")
    top = path.split("/")[0]
    if not name.endswith(KEEP_SUFFIXES) or name.startswith(".") or top in SKIPPED_FOLDERS:
        return False
    return components is None or path == MODEL_INDEX or (bool(folder) and top in components)


def weight_key(path: str) -> tuple[tuple[str, str], str | None] | None:
    """((folder, weight name), variant) for a safetensors file or shard index; None for other files."""
    folder, _, name = path.rpartition("/")
    match = _WEIGHT.match(name) or _INDEX.match(name)
    return ((folder, match["base"]), match["variant"]) if match else None


def _refuse_pickles(repo_id: str, listing: Sequence[tuple[str, int]], files: Sequence[tuple[str, int]],
                    components: Collection[str] | None) -> None:
    pickles = [path for path, _ in listing if path.endswith(PICKLE_SUFFIXES)]
    refuse = "which Studio refuses because loading them can run code; look for a safetensors version of this model"
    if not any(path.endswith(".safetensors") for path, _ in files):
        if pickles:
            raise ModelError(f"{repo_id} only ships pickle weights ({pickles[0]}), {refuse}.")
        raise ModelError(f"{repo_id} has no .safetensors weights that Studio can use.")
    for folder in sorted(set(components or ()) - set(SKIPPED_FOLDERS)):
        inside = [path for path, _ in files if path.startswith(f"{folder}/") and path.endswith(".safetensors")]
        if not inside and any(path.startswith(f"{folder}/") for path in pickles):
            raise ModelError(f"The {folder} part of {repo_id} only ships pickle weights, {refuse}.")
