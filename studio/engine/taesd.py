"""TAESD previews: a tiny decoder that shows each step as the VAE will, when its weights are installed.

There is no setting: installing the weights switches it on. Studio looks in the models folder for

    <models>/taesd/     madebyollin/taesd    (SD 1.x and 2.x latents)
    <models>/taesdxl/   madebyollin/taesdxl  (SDXL latents)

each a diffusers ``AutoencoderTiny`` folder (``config.json`` + ``diffusion_pytorch_model.safetensors``),
e.g. ``huggingface-cli download madebyollin/taesd --local-dir <models>/taesd``. Without one, previews
use the linear approximation (``studio.engine.preview``). A decoder is loaded once (float16 on CUDA) and
kept; a folder that fails to load, or loads but fails to decode (a TAESD for another latent space), is
remembered, so it costs one note, not one per picture or job.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import torch

from studio.core.errors import ModelError, first_line
from studio.core.hashing import files_key
from studio.engine.device import on_free_memory

log = logging.getLogger(__name__)

FOLDERS = {"sd": "taesd", "sdxl": "taesdxl"}
CONFIG = "config.json"
WEIGHTS = "diffusion_pytorch_model.safetensors"

Signature = tuple[tuple[str, int, int], ...]
_loaded: dict[tuple[Path, Signature, str], Any] = {}  # (folder, files, device) -> AutoencoderTiny
_broken: set[tuple[Path, Signature]] = set()
_lock = threading.Lock()  # the engine thread loads; a benchmark or test thread may too


def find_taesd(models_root: Path, family: str) -> Path | None:
    """The TAESD folder for a model family, or None when none is installed."""
    name = FOLDERS.get(family)
    folder = models_root / name if name else None
    return folder if folder is not None and (folder / CONFIG).is_file() else None


def _signature(folder: Path) -> Signature:
    """What changes when the folder's files change, so replaced weights are loaded afresh."""
    return files_key(sorted(p for p in folder.iterdir() if p.is_file()))


class TaesdDecoder:
    """Decodes the first latent of a batch to an (H*8, W*8, 3) uint8 tensor on the latents' device.

    The weights load at the first call (on the engine thread, inside a step), so a job whose model has
    no use for them never pays; ModelError (one sentence) when they cannot be loaded.
    """

    def __init__(self, folder: Path, signature: Signature) -> None:
        self.folder = folder
        self.signature = signature  # read once per picture, not at every preview inside the step loop

    def load(self, device: torch.device) -> None:
        """Load the weights onto ``device`` now (once), so the time of a decode is the decode's alone;
        ModelError when they cannot be loaded."""
        self._model(device)

    def __call__(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self._model(latents.device)
        dtype = next(vae.parameters()).dtype
        try:
            with torch.inference_mode():
                decoded = vae.decode(latents[:1].to(dtype)).sample[0]  # [-1, 1], channels first
                return ((decoded.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0)
        except Exception:
            self._give_up()
            raise

    def _give_up(self) -> None:
        """It loaded but cannot decode these latents: remembered as broken, as a folder that fails to load is,
        and its weights let go."""
        with _lock:
            _broken.add((self.folder, self.signature))
            for key in [k for k in _loaded if k[0] == self.folder]:
                del _loaded[key]

    def _model(self, device: torch.device) -> Any:  # noqa: ANN401 - diffusers' AutoencoderTiny
        signature = self.signature
        key = (self.folder, signature, str(device))
        with _lock:
            if key in _loaded:
                return _loaded[key]
            try:
                vae = _load(self.folder, device)
            except Exception as exc:
                _broken.add((self.folder, signature))
                raise _failure(self.folder, exc) from exc
            for old in [k for k in _loaded if k[0] == self.folder]:
                del _loaded[old]  # replaced weights: let the old ones go
            _loaded[key] = vae
            return vae


def _load(folder: Path, device: torch.device) -> Any:  # noqa: ANN401
    from diffusers import AutoencoderTiny

    if not (folder / WEIGHTS).is_file():
        raise FileNotFoundError(f"{WEIGHTS} is missing")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    vae = AutoencoderTiny.from_pretrained(folder, local_files_only=True, use_safetensors=True, torch_dtype=dtype)
    vae.requires_grad_(False)
    log.info("Loaded TAESD previews from %s", folder)
    return vae.eval().to(device)


def _failure(folder: Path, exc: BaseException) -> ModelError:
    return ModelError(f"The TAESD decoder in {folder} could not be loaded ({first_line(exc)}); Studio shows the quick "
                      "colour previews instead.")


def taesd_decoder(models_root: Path, family: str) -> TaesdDecoder | None:
    """A decoder for the family's latents when its TAESD folder is installed (and did not fail to load
    as it is now), else None."""
    folder = find_taesd(models_root, family)
    if folder is None:
        return None
    try:
        signature = _signature(folder)
    except OSError:
        return None
    return None if (folder, signature) in _broken else TaesdDecoder(folder, signature)


def forget_decoders() -> None:
    """Let every loaded decoder go (their memory is freed with the next collection)."""
    with _lock:
        _loaded.clear()
        _broken.clear()


on_free_memory(forget_decoders)
