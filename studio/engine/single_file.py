"""Loading single-file checkpoints (what model sites ship) through diffusers' single-file loading.

The architecture is read from the file's tensor names and shapes; the diffusers configs for it come from
Studio's own ``resources/model-configs`` (or a ``configs/<family>`` folder in the models folder, which wins),
so a file the person already has loads with no network at all.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from studio.core.errors import ModelError, first_line
from studio.core.model_kind import ModelKind
from studio.core.paths import resources_dir
from studio.engine.shared_tokenizers import load_sharing_tokenizers

CONFIGS = "model-configs"
TOKENIZER_FILES = ("vocab.json", "merges.txt")


def config_key(kind: ModelKind) -> str:
    """The config folder for ``kind``: SD 2.x has three, SD-Turbo's and 2.x-base's (512 px, epsilon) besides
    2.x-v's (768 px, v) in ``sd2``; sd2_prediction.sd2_prediction says which a file is. SDXL-Turbo has its own
    (512 px, "trailing" steps)."""
    if kind.inpainting:
        return kind.family + "-inpaint"
    if kind.family in ("sd2", "sdxl") and kind.turbo:
        return kind.family + "-turbo"
    if kind.family == "sd2" and kind.prediction == "epsilon":
        return "sd2-base"
    return kind.family


def _config_source(key: str, models_dir: Path | None) -> Path:
    """The configs a checkpoint of ``key`` is loaded with: the person's ``configs/<key>``, else Studio's."""
    if models_dir is not None and (models_dir / "configs" / key / "model_index.json").is_file():
        return models_dir / "configs" / key
    return resources_dir() / CONFIGS / key


def check_single_file(path: Path, models_dir: Path | None) -> None:
    """ModelError with one sentence where a single-file checkpoint's tensors do not fit the configs it would be
    loaded with (headers and config files only, no torch); nothing for a folder or a file that fits."""
    from studio.core.models import checkpoint_kind

    if path.is_file() and (mismatch := layout_mismatch(path, checkpoint_kind(path), models_dir)):
        raise ModelError(mismatch)


_TEXT = "text encoder's position embedding"
# Tensors whose shapes say a file's size (the original layout's names), checked against the configs:
# (component whose config gives the shape, what it is for a person).
_SIZE_TENSORS = {
    "model.diffusion_model.input_blocks.0.0.weight": ("unet", "UNet's first layer"),
    "first_stage_model.encoder.conv_in.weight": ("vae", "VAE's first layer"),
    "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": ("text_encoder", _TEXT),
    "cond_stage_model.model.positional_embedding": ("text_encoder", _TEXT),  # SD 2.x (OpenCLIP)
    "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": ("text_encoder", _TEXT),
    "conditioner.embedders.1.model.positional_embedding": ("text_encoder_2", f"second {_TEXT}"),
}


def layout_mismatch(path: Path, kind: ModelKind, models_dir: Path | None) -> str:
    """Where the file's tensors that say its size differ from the configs it is loaded with, one sentence (else
    ""): diffusers found out only after loading for seconds, and said "Cannot load  because … expected shape …
    pass both low_cpu_mem_usage=False and ignore_mismatched_sizes=True … github issue"."""
    import json

    from studio.core.weight_files import check_weights_file

    key = config_key(kind)
    folder = _config_source(key, models_dir)
    configs: dict[str, dict[str, Any]] = {}
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        try:
            configs[part] = json.loads((folder / part / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    info = check_weights_file(path)
    for name, (part, what) in _SIZE_TENSORS.items():
        config, got = configs.get(part), info.shape(name)
        expected = _expected_shape(part, config) if config is not None and got is not None else None
        if expected is not None and got != expected:
            return (f"{path.name} does not fit the {kind.label} layout Studio loads it with: its {what} ({name}) "
                    f"is {_shape(got)}, where {kind.label} has {_shape(expected)}. "
                    + _other_size_hint(folder, key, models_dir))
    return ""


def _other_size_hint(folder: Path, key: str, models_dir: Path | None) -> str:
    """Where the person's own configs were used, say so; else where to put them (the folder was named as if
    configs had been found there when it did not exist)."""
    if models_dir is None:
        return "It may be a model of another size, or a damaged file."
    own = models_dir / "configs" / key
    if folder == own:
        return f"It may be a model of another size (its diffusers configs in {own} are used instead of Studio's), " \
               "or a damaged file."
    return f"It may be a model of another size, or a damaged file; to load it with other diffusers configs, put " \
           f"them in {own}."


def _expected_shape(part: str, config: dict[str, Any]) -> tuple[int, ...] | None:
    try:
        if part == "unet":
            kernel = int(config.get("conv_in_kernel", 3))
            return int(config["block_out_channels"][0]), int(config.get("in_channels", 4)), kernel, kernel
        if part == "vae":
            return int(config["block_out_channels"][0]), int(config.get("in_channels", 3)), 3, 3
        return int(config.get("max_position_embeddings", 77)), int(config["hidden_size"])
    except (KeyError, IndexError, TypeError, ValueError):  # a config of another shape: not checked
        return None


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(dim) for dim in shape)


def _mismatch_sentence(exc: BaseException, path: Path, kind: ModelKind) -> str:
    """diffusers' "Cannot load  because X expected shape A, but got B. If you want to instead overwrite …" as one
    sentence naming the file, the tensor and the shapes; "" for other errors."""
    match = re.search(r"because (\S+) expected shape (.+?), but got (.+?)\. If you want", str(exc))
    if match is None:
        return ""
    name, expected, got = (match[1], *(_shape(tuple(int(d) for d in re.findall(r"\d+", re.sub(
        r"device=\S+", "", text)))) for text in (match[2], match[3])))
    return (f"{path.name} does not fit the {kind.label} layout Studio loads it with: its {name} is {got}, where "
            f"{kind.label} has {expected}. It may be a model of another size, or a damaged file.")


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

    if mismatch := layout_mismatch(path, kind, models_dir):  # before seconds of loading, said in a sentence
        raise ModelError(mismatch)
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
        raise ModelError(_mismatch_sentence(exc, path, kind) or
                         f"The {kind.label} checkpoint {path.name} could not be loaded: {first_line(exc)}.") from exc
