"""A VAE other than the model's own, swapped into the pipeline for one job.

The VAE is a diffusers folder (config.json + safetensors) or a single .safetensors file: the original
(LDM) layout model sites ship, or diffusers' own key names. A single file takes its architecture from the
loaded model's VAE config, as A1111 does, so nothing is fetched. The last VAE loaded is kept, so choosing
the same one again costs nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from studio.core.errors import ModelError, first_line
from studio.core.hashing import files_key
from studio.core.model_kind import with_article
from studio.core.model_kinds import detect_kind
from studio.core.model_library import KIND_FOLDERS
from studio.core.models import PICKLE_SUFFIXES, SAFE_SUFFIX, find_weights_or_folder
from studio.core.weight_files import SafetensorsInfo, check_weights_file, pickle_refusal
from studio.engine.addon_names import in_linked_folders, recorded_name

VAE_FOLDER = KIND_FOLDERS["vae"]
CONFIG = "config.json"
# An encoder block's index, in the original (LDM) layout and in diffusers'.
_ENCODER_BLOCK = re.compile(r"encoder\.down(?:_blocks)?\.(\d+)\.")


@dataclass(frozen=True)
class VaeSource:
    name: str  # as recorded in the image's metadata
    path: Path  # a diffusers VAE folder or a .safetensors file


def find_vae(models_root: Path, name: str, linked: Sequence[Path] = ()) -> VaeSource:
    """A VAE in ``<models>/vae`` (a folder, or ``<name>.safetensors``), else a folder or file at ``name``.
    ``linked``: the linked files and folders the caller looked in too, named in the "No VAE named" sentence."""
    folder = models_root / VAE_FOLDER
    path, looked = find_weights_or_folder(folder, name, CONFIG)
    if path is None:
        also = in_linked_folders("a VAE of that name", linked)
        raise ModelError(f"No VAE named {name!r} was found: Studio looked for {looked}{also}.")
    return VaeSource(recorded_name(folder, path), path)


def _signature(path: Path) -> tuple[Any, ...]:
    """What changes when the VAE's files change (size and modification time of each)."""
    return files_key(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])


def _failure(source: VaeSource, exc: Exception) -> ModelError:
    return ModelError(f"The VAE {source.name} could not be loaded: {first_line(exc)}.")


def check_vae_files(source: VaeSource) -> SafetensorsInfo | None:
    """The VAE's weights as the engine is about to read them: a folder's .safetensors files (a pickle, or none, is
    refused), a file's header and kind (another kind of file is refused); ModelError with one sentence otherwise.
    The file's header (None for a folder). No torch: ``studio generate`` asks it before the engine starts."""
    if source.path.is_dir():
        weights = sorted(source.path.glob(f"*{SAFE_SUFFIX}"))
        if not weights:
            pickles = [p for p in source.path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
            if pickles:
                raise ModelError(pickle_refusal(pickles[0]))
            raise ModelError(f"The VAE folder {source.path} has no .safetensors weights.")
        for file in weights:
            check_weights_file(file)
        return None
    info = check_weights_file(source.path)
    kind = detect_kind(info, source.path.name)
    if kind.kind == "unknown":
        held = f": it holds {kind.detail}" if kind.detail else ", as far as Studio can tell from its layers"
        raise ModelError(f"{source.path.name} is not a VAE{held}.")
    if kind.kind != "vae":
        what = kind.label + (" checkpoint" if kind.kind == "checkpoint" else " file")
        raise ModelError(f"{source.path.name} is not a VAE but {with_article(what)}; pick it where that kind is used.")
    return info


class VaeShape(NamedTuple):
    """What a VAE must share with a model's to take its place."""

    latent_channels: int
    levels: int  # encoder blocks: the latents are 1/2**(levels - 1) of the picture's size
    width: int  # the first block's channels (a single file is built with the model's VAE config: they must match)


def vae_shape(path: Path) -> VaeShape | None:
    """The shape of a VAE folder (its config.json), of a diffusers model's VAE (vae/config.json), or of a VAE file or
    checkpoint's VAE, from its layers; None where they do not say. No torch."""
    if path.is_dir():
        config_path = path / CONFIG if (path / CONFIG).is_file() else path / "vae" / CONFIG
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            blocks, latent = config["block_out_channels"], config.get("latent_channels", 4)
            return VaeShape(latent, len(blocks), blocks[0]) if all(
                isinstance(n, int) for n in (latent, *blocks)) and blocks else None
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            return None
    try:
        info = check_weights_file(path)
    except ModelError:
        return None  # said where the file is loaded
    for prefix in ("first_stage_model.", "vae.", ""):
        latent, first = info.shape(prefix + "decoder.conv_in.weight"), info.shape(prefix + "encoder.conv_in.weight")
        levels = {found.group(1) for key in info.tensors if key.startswith(prefix)
                  and (found := _ENCODER_BLOCK.match(key, len(prefix)))}
        if latent and len(latent) > 1 and first and levels:
            return VaeShape(latent[1], len(levels), first[0])
    return None


def _misfit(name: str, model_name: str) -> str:
    return (f"The VAE {name} does not fit {model_name}: its layers were made for a different kind of model; choose a "
            "VAE made for this one.")


def shape_problem(name: str, mine: VaeShape, theirs: VaeShape, model_name: str, single_file: bool) -> str | None:
    """Why the VAE ``name`` of shape ``mine`` cannot take the place of the model's (``theirs``), in a sentence: its
    latents' channels or size differ (the first decode would fail deep in torch), or, for a single file, which is
    built with the model's VAE config, its layers' widths; None when it can."""
    if mine[:2] != theirs[:2]:
        return (f"The VAE {name} does not fit {model_name}: it makes {mine.latent_channels}-channel latents at "
                f"1/{2 ** (mine.levels - 1)} size, and the model works with {theirs.latent_channels}-channel latents "
                f"at 1/{2 ** (theirs.levels - 1)} size.")
    if single_file and mine.width != theirs.width:
        return _misfit(name, model_name)
    return None


def _load_folder(source: VaeSource, dtype: Any) -> Any:  # noqa: ANN401
    from diffusers import AutoencoderKL

    check_vae_files(source)
    return AutoencoderKL.from_pretrained(source.path, local_files_only=True, use_safetensors=True, dtype=dtype)


def _load_file(source: VaeSource, base_config: Any, dtype: Any) -> Any:  # noqa: ANN401
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    from safetensors.torch import load_file

    check_vae_files(source)
    state = load_file(str(source.path), device="cpu")
    config = dict(base_config)
    # What from_single_file does for a VAE, with the config taken from the loaded model instead of the hub.
    if not any(key.startswith(("encoder.down_blocks.", "decoder.up_blocks.")) for key in state):
        state = convert_ldm_vae_checkpoint(state, config)
    vae = AutoencoderKL.from_config(config)
    vae.load_state_dict(state, strict=True)
    return vae.to(dtype=dtype).eval()


class VaeOverride:
    """Swaps a pipeline's VAE for one job, and keeps the last VAE it loaded."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._vae: Any = None

    def clear(self) -> None:
        self._key, self._vae = None, None

    @property
    def kept(self) -> tuple[Path, Any] | None:
        """The VAE kept from the last job that chose one, and its file or folder (None when none is)."""
        return None if self._key is None else (Path(self._key[0]), self._vae)

    def _get(self, source: VaeSource, pipe: Any, model_name: str) -> Any:  # noqa: ANN401
        from safetensors import SafetensorError

        base = pipe.vae
        # A single file is built from the model's VAE config, so the model is part of what it depends on.
        key = (str(source.path.resolve()), _signature(source.path), str(base.dtype), str(base.device),
               None if source.path.is_dir() else repr(sorted(base.config.items())))
        if key == self._key:
            return self._vae
        self.clear()  # free the previous one before loading another
        try:
            vae = _load_folder(source, base.dtype) if source.path.is_dir() else _load_file(source, base.config,
                                                                                          base.dtype)
        except RuntimeError as exc:
            if "size mismatch" in str(exc) or "Missing key" in str(exc) or "Unexpected key" in str(exc):
                raise ModelError(_misfit(source.name, model_name)) from None
            raise _failure(source, exc) from None
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise _failure(source, exc) from None
        _check_fits(source, vae, base, model_name)
        vae.to(base.device)
        from studio.engine.memory import own_weights

        own_weights(vae)  # where it stays on the CPU, not pages of its files (a file cut short: SIGBUS)
        self._key, self._vae = key, vae
        return vae

    @contextmanager
    def attached(self, pipe: Any, source: VaeSource, model_name: str = "the model") -> Iterator[None]:  # noqa: ANN401
        """The pipeline with the VAE from source for the block; its own VAE put back afterwards."""
        vae = self._get(source, pipe, model_name)
        original = pipe.vae
        pipe.vae = vae
        try:
            yield
        finally:
            pipe.vae = original


def _check_fits(source: VaeSource, vae: Any, base: Any, model_name: str) -> None:  # noqa: ANN401
    """Latent channels and down-scaling must match the UNet's, or the first decode fails deep in torch."""
    mine, theirs = (VaeShape(part.config.latent_channels, len(part.config.block_out_channels),
                             part.config.block_out_channels[0]) for part in (vae, base))
    if problem := shape_problem(source.name, mine, theirs, model_name, single_file=False):
        raise ModelError(problem)
