"""Loading single-file checkpoints (what model sites ship) through diffusers' single-file loading.

The architecture is read from the file's tensor names and shapes; the diffusers configs for it come from
Studio's own ``resources/model-configs`` (or a ``configs/<family>`` folder in the models folder, which wins),
so a file the person already has loads with no network at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from studio.core.errors import ModelError, first_line
from studio.core.model_kinds import ModelKind
from studio.core.paths import resources_dir
from studio.engine.shared_tokenizers import load_sharing_tokenizers

CONFIGS = "model-configs"
TOKENIZER_FILES = ("vocab.json", "merges.txt")


def config_key(kind: ModelKind) -> str:
    """The config folder for ``kind``: SD 2.x has three, SD-Turbo's and 2.x-base's (512 px, epsilon) besides
    2.x-v's (768 px, v) in ``sd2``; model_kinds.sd2_prediction says which a file is. SDXL-Turbo has its own
    (512 px, "trailing" steps)."""
    if kind.inpainting:
        return kind.family + "-inpaint"
    if kind.family in ("sd2", "sdxl") and kind.turbo:
        return kind.family + "-turbo"
    if kind.family == "sd2" and kind.prediction == "epsilon":
        return "sd2-base"
    return kind.family


def config_folder(key: str, models_dir: Path | None, cache_dir: Path) -> Path:
    """A complete diffusers config folder for ``key``: the person's own, else Studio's with its tokenizer."""
    if models_dir is not None and (models_dir / "configs" / key / "model_index.json").is_file():
        return models_dir / "configs" / key
    shipped = resources_dir() / CONFIGS / key
    if not (shipped / "model_index.json").is_file():
        raise ModelError(f"Studio has no configuration for {key} checkpoints ({shipped} is missing).")
    # The shipped folders leave out the 1.5 MB CLIP tokenizer they all share; assemble a full copy once.
    target = cache_dir / CONFIGS / key
    stamp = target / ".source"
    source_id = f"{shipped}:{max(p.stat().st_mtime_ns for p in shipped.rglob('*'))}"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == source_id:
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(shipped, partial)
    for tokenizer in partial.glob("tokenizer*"):
        for name in TOKENIZER_FILES:
            shutil.copyfile(resources_dir() / CONFIGS / "clip-tokenizer" / name, tokenizer / name)
    (partial / ".source").write_text(source_id, encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    return target


def load_single_file(path: Path, kind: ModelKind, dtype: Any, models_dir: Path | None, cache_dir: Path) -> Any:
    """The txt2img (or inpaint) pipeline of a single-file checkpoint of ``kind`` (from checkpoint_kind), on the
    CPU."""
    import json

    import diffusers
    from safetensors import SafetensorError

    folder = config_folder(config_key(kind), models_dir, cache_dir)
    class_name = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))["_class_name"]
    pipeline_class = getattr(diffusers, class_name)
    kwargs: dict[str, Any] = {}
    if kind.family != "sdxl":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:  # the tokenizers are the same for every checkpoint of a kind: built once
        return load_sharing_tokenizers(folder, lambda **tokenizers: pipeline_class.from_single_file(
            str(path), config=str(folder), local_files_only=True, torch_dtype=dtype, **kwargs, **tokenizers))
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise ModelError(f"The {kind.label} checkpoint {path.name} could not be loaded: {first_line(exc)}.") from exc
