"""A VAE other than the model's own, swapped into the pipeline for one job.

The VAE is a diffusers folder (config.json + safetensors) or a single .safetensors file: the original
(LDM) layout model sites ship, or diffusers' own key names. A single file takes its architecture from the
loaded model's VAE config, as A1111 does, so nothing is fetched. The last VAE loaded is kept, so choosing
the same one again costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import ModelError, first_line
from studio.core.hashing import files_key
from studio.core.model_kinds import detect_kind, with_article
from studio.core.model_library import KIND_FOLDERS
from studio.core.models import PICKLE_SUFFIXES, SAFE_SUFFIX, find_weights_or_folder
from studio.core.weight_files import check_weights_file, pickle_refusal
from studio.engine.loras import recorded_name

VAE_FOLDER = KIND_FOLDERS["vae"]
CONFIG = "config.json"


@dataclass(frozen=True)
class VaeSource:
    name: str  # as recorded in the image's metadata
    path: Path  # a diffusers VAE folder or a .safetensors file


def find_vae(models_root: Path, name: str) -> VaeSource:
    """A VAE in ``<models>/vae`` (a folder, or ``<name>.safetensors``), else a folder or file at ``name``."""
    folder = models_root / VAE_FOLDER
    path, looked = find_weights_or_folder(folder, name, CONFIG)
    if path is None:
        raise ModelError(f"No VAE named {name!r} was found: Studio looked for {looked}.")
    return VaeSource(recorded_name(folder, path), path)


def _signature(path: Path) -> tuple[Any, ...]:
    """What changes when the VAE's files change (size and modification time of each)."""
    return files_key(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])


def _failure(source: VaeSource, exc: Exception) -> ModelError:
    return ModelError(f"The VAE {source.name} could not be loaded: {first_line(exc)}.")


def _load_folder(source: VaeSource, dtype: Any) -> Any:  # noqa: ANN401
    from diffusers import AutoencoderKL

    weights = sorted(source.path.glob(f"*{SAFE_SUFFIX}"))
    if not weights:
        pickles = [p for p in source.path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
        if pickles:
            raise ModelError(pickle_refusal(pickles[0]))
        raise ModelError(f"The VAE folder {source.path} has no .safetensors weights.")
    for file in weights:
        check_weights_file(file)
    return AutoencoderKL.from_pretrained(source.path, local_files_only=True, use_safetensors=True, dtype=dtype)


def _load_file(source: VaeSource, base_config: Any, dtype: Any) -> Any:  # noqa: ANN401
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    from safetensors.torch import load_file

    kind = detect_kind(check_weights_file(source.path), source.path.name)
    if kind.kind == "unknown":
        held = f": it holds {kind.detail}" if kind.detail else ", as far as Studio can tell from its layers"
        raise ModelError(f"{source.path.name} is not a VAE{held}.")
    if kind.kind != "vae":
        what = kind.label + (" checkpoint" if kind.kind == "checkpoint" else " file")
        raise ModelError(f"{source.path.name} is not a VAE but {with_article(what)}; pick it where that kind is used.")
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
                raise ModelError(f"The VAE {source.name} does not fit {model_name}: its layers were made for a "
                                 "different kind of model; choose a VAE made for this one.") from None
            raise _failure(source, exc) from None
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise _failure(source, exc) from None
        _check_fits(source, vae, base, model_name)
        vae.to(base.device)
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
    mine = (vae.config.latent_channels, len(vae.config.block_out_channels))
    theirs = (base.config.latent_channels, len(base.config.block_out_channels))
    if mine != theirs:
        raise ModelError(f"The VAE {source.name} does not fit {model_name}: it makes {mine[0]}-channel latents at "
                         f"1/{2 ** (mine[1] - 1)} size, and the model works with {theirs[0]}-channel latents at "
                         f"1/{2 ** (theirs[1] - 1)} size.")
