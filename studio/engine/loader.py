"""Loading models: diffusers folders and single-file checkpoints, safetensors only, local files only."""

from __future__ import annotations

import logging
import re
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import ModelError, and_list, first_line
from studio.core.hashing import in_background, model_hash
from studio.core.models import INCOMPLETE, MODEL_INDEX, check_model_folder, checkpoint_kind
from studio.core.pipeline_classes import missing_class_sentence
from studio.engine.device import DeviceInfo
from studio.engine.libraries import quiet_imports
from studio.engine.memory import own_weights
from studio.engine.model_keeping import ModelStamp, model_files_key
from studio.engine.shared_tokenizers import load_sharing_tokenizers

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    path: Path
    name: str
    hashing: str | Future[str] = field(repr=False)  # the short hash, or its computation
    family: str  # "sd" or "sdxl": picks the preview factors
    text2img: Any
    base_scheduler_config: Any
    offloaded: bool = False  # model CPU offload is on (memory.apply_plan keeps this in step)
    sliced: bool | None = None  # attention slicing is on (None: not set by Studio yet)
    files_key: ModelStamp = ()  # its files' stamp when it was loaded (model_keeping.model_files_key)
    _img2img: Any = field(default=None, repr=False)
    _inpaint: Any = field(default=None, repr=False)

    @property
    def hash(self) -> str:
        """The AutoV2 short hash, for the pictures' metadata; waits for the hashing if it is still running."""
        if isinstance(self.hashing, Future):
            self.hashing = self.hashing.result()
        return self.hashing

    @property
    def unet_channels(self) -> int:
        """4 for an ordinary model, 9 for an inpainting model (latents + mask + masked picture)."""
        unet = getattr(self.text2img, "unet", None)
        return int(getattr(getattr(unet, "config", None), "in_channels", 4))

    @property
    def is_inpainting(self) -> bool:
        return self.unet_channels == 9

    @property
    def latent_scale(self) -> int:
        """Pixels per latent cell along a side (8 for every SD-family VAE)."""
        return int(getattr(self.text2img, "vae_scale_factor", 8) or 8)

    @property
    def native_size(self) -> int:
        """The side the model was trained at: 512 for SD 1.x, 768 for SD 2.x-v, 1024 for SDXL."""
        unet = getattr(self.text2img, "unet", None)
        sample = getattr(getattr(unet, "config", None), "sample_size", None)
        if isinstance(sample, (list, tuple)) and sample:
            sample = round((sample[0] * sample[-1]) ** 0.5)
        return int(sample) * self.latent_scale if sample else 512

    def pipeline(self, img2img: bool = False, inpaint: bool = False) -> Any:
        """The txt2img pipeline, or an img2img / inpaint pipeline sharing its components (no reload)."""
        if inpaint:
            if self._inpaint is None:
                from diffusers import AutoPipelineForInpainting

                self._inpaint = AutoPipelineForInpainting.from_pipe(self.text2img)
                self._inpaint.set_progress_bar_config(disable=True)
            return self._inpaint
        if not img2img:
            return self.text2img
        if self._img2img is None:
            from diffusers import AutoPipelineForImage2Image

            self._img2img = AutoPipelineForImage2Image.from_pipe(self.text2img)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img


def load_model(path: Path, device: DeviceInfo, hash_cache: Path | None = None, *,
               models_dir: Path | None = None, cache_dir: Path | None = None, place: bool = True) -> LoadedModel:
    """Load a diffusers folder or a single-file checkpoint onto device; ModelError with one sentence on refusal.

    ``models_dir`` may hold ``configs/<family>`` folders that override Studio's shipped single-file configs;
    ``cache_dir`` is where those configs are assembled (defaults to next to the hash cache). With
    ``place=False`` the pipeline stays on the CPU, for a memory plan to place (or offload) it.
    """
    path = Path(path).expanduser()
    is_file = path.is_file()
    if is_file:
        kind = checkpoint_kind(path)  # ModelError with one sentence when refused, as below
    else:
        index = check_model_folder(path)  # read once: loading uses it as the check parsed it
    files = model_files_key(path)  # as they are before they are read
    hashing = in_background(lambda: _hash_of(path, files, hash_cache), path)  # only the pictures' metadata waits
    quiet_imports()
    if is_file:
        from studio.engine.single_file import load_single_file

        cache = cache_dir or (hash_cache.parent if hash_cache is not None else path.parent / ".studio-cache")
        pipe = load_single_file(path, kind, device.dtype, models_dir, cache)
        pipe = _as_text2img(pipe)
        name = path.stem
    else:
        pipe = _load_folder(path, device, index)
        name = path.name
    pipe.set_progress_bar_config(disable=True)
    if device.kind == "cpu":
        own_weights(pipe)
    if place:
        pipe.to(device.torch_device)
    unet_config = getattr(getattr(pipe, "unet", None), "config", None)
    family = "sdxl" if getattr(unet_config, "addition_embed_type", None) == "text_time" else "sd"
    return LoadedModel(
        path=path.resolve(),
        name=name,
        hashing=hashing,
        files_key=files,
        family=family,
        text2img=pipe,
        base_scheduler_config=dict(pipe.scheduler.config),
    )


def _hash_of(path: Path, files: ModelStamp, hash_cache: Path | None) -> str:
    """The model's hash, as it was loaded: none ("") where its files changed before hashing ended, since the
    hash would then be of other weights than the pictures were made with."""
    digest = model_hash(path, hash_cache)
    if model_files_key(path) != files:
        log.warning("%s changed on disk while it was hashed; its pictures carry no model hash", path)
        return ""
    return digest


def _load_folder(path: Path, device: DeviceInfo, index: dict) -> Any:
    kwargs: dict[str, Any] = {}
    if "safety_checker" in index:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    from diffusers import AutoPipelineForText2Image
    from safetensors import SafetensorError

    variant = _variant(path)
    if variant:
        kwargs["variant"] = variant
    try:
        return load_sharing_tokenizers(path, lambda **tokenizers: AutoPipelineForText2Image.from_pretrained(
            path, dtype=device.dtype, use_safetensors=True, local_files_only=True, **kwargs, **tokenizers))
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        said = _mismatch(path, index, str(exc)) or f"The model {path.name} could not be loaded: {first_line(exc)}."
        raise ModelError(said) from exc


_NO_CLASS = re.compile(r"`(\w+)` has no class `(\w+)`")
_MISSING_PARTS = re.compile(r"expected \[([^\]]*)\], but only \{([^}]*)\} were passed")
OPTIONAL_PARTS = {"safety_checker", "feature_extractor", "image_encoder"}  # a pipeline loads without these
_WRONG_SHAPE = re.compile(r"([\w.]+) expected shape torch\.Size\(\[([\d, ]*)\]\), "
                          r"but got torch\.Size\(\[([\d, ]*)\]\)")


def _mismatch(path: Path, index: dict, error: str) -> str:
    """One sentence for diffusers' errors of a folder whose parts do not go together (a class model_index.json
    names that diffusers lacks, parts it does not name at all, weights of other sizes than their config); "" for
    any other error."""
    if found := _NO_CLASS.search(error):
        library, name = found.groups()
        component = next((c for c, e in index.items() if isinstance(e, list) and e[1:2] == [name]), "")
        return missing_class_sentence(path, name, component, library)
    if found := _MISSING_PARTS.search(error):
        expected, passed = (set(re.findall(r"'(\w+)'", text)) for text in found.groups())
        missing = sorted(expected - passed - OPTIONAL_PARTS)
        if missing:
            return (f"The model {path.name}'s {MODEL_INDEX} does not name its {and_list(missing)}, which its "
                    f"pipeline needs{INCOMPLETE}")
    if found := _WRONG_SHAPE.search(error):
        tensor, expected, got = found.groups()
        component = _component_holding(path, tensor, got) or "weights"
        return (f"The model {path.name}'s {component} does not fit its config ({tensor} is [{got}] in the weights, "
                f"[{expected}] by the config); the folder may mix files of two models.")
    return ""


def _component_holding(path: Path, tensor: str, shape: str) -> str:
    """Which component folder's safetensors hold ``tensor`` with ``shape`` ("8" or "320, 4, 3, 3"), or ""."""
    from studio.core.weight_files import read_safetensors_header

    wanted = tuple(int(d) for d in shape.replace(" ", "").split(",") if d)
    for weights in sorted(path.glob("*/*.safetensors")):
        try:
            if read_safetensors_header(weights).shape(tensor) == wanted:
                return weights.parent.name
        except ModelError:
            continue
    return ""


def _variant(path: Path) -> str:
    """"fp16" when the UNet's weights are only there as the fp16 variant (what Studio downloads), else ""."""
    unet = path / "unet"
    if not unet.is_dir():
        return ""
    names = [f.name for f in unet.iterdir() if f.name.endswith(".safetensors")]
    plain = any(".fp16." not in n for n in names)
    return "fp16" if names and not plain else ""


def _as_text2img(pipe: Any) -> Any:
    """An inpainting checkpoint loads as an inpaint pipeline; Studio keeps the txt2img one and derives the rest."""
    from diffusers import AutoPipelineForText2Image

    if "Inpaint" in type(pipe).__name__:
        return AutoPipelineForText2Image.from_pipe(pipe)
    return pipe
