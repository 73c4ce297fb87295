"""Depth maps for control guides: Depth Anything V2 (transformers' ``DepthAnythingForDepthEstimation`` and its
image processor) run on a guide's picture, as sd-webui-controlnet's ``depth_anything_v2`` module does.

The model reads the picture with its short side at the processor's size (518), as Depth Anything's own
``infer_image`` does, but never longer than twice that (``work_size``). The map has the picture's size, in 8-bit
grey as RGB, near = white: the model's relative inverse depth, scaled bilinearly back to the picture's size and
stretched per picture (its nearest point white, its farthest black), as
sd-webui-controlnet does. The model is loaded once per device and kept; the maps of the last few pictures are kept
by the picture (the same object) and the model's files, so moving a guide's weight, or running the job after its
thumbnail was made, does not run the model again. The window's thumbnail runs it on the CPU in a worker thread,
the engine on its own device; a lock keeps the two from loading or running it at once. Both copies are listed in
Models in Memory and freed there (``held_models``, through the engine's generator); a job's memory plan lets the
GPU's copy go when it needs the room (``let_gpu_copies_go``): the maps are made before the UNet runs, and kept.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.core.annotators import depth_model_missing, find_depth_model
from studio.core.control import DEPTH, Annotate, ControlGuide
from studio.core.errors import InvalidRequest, ModelError, first_line
from studio.core.hashing import FilesKey, files_key
from studio.core.held_memory import CACHED, HeldModel
from studio.core.images import flatten, rgb_or_rgba
from studio.engine.held_memory import describe
from studio.engine.libraries import quiet_imports

KEPT_MAPS = 6  # two per guide of a job (MAX_GUIDES): its picture, and an extended one
KEPT_MODELS = 2  # the CPU's (thumbnails) and the engine device's
PATCH = 14  # the DINOv2 backbone's patch: the model reads whole patches
# The long side read is at most this many times the processor's size (1036 px for 518): a 8000x300 strip read with
# its short side at 518 would be 13818 px long, 27 times the tokens of a square, for minutes on a CPU.
LONGEST = 2


@dataclass
class _Map:
    picture: weakref.ref[Image.Image]
    model: FilesKey
    depth: Image.Image


_lock = threading.Lock()
_maps: list[_Map] = []  # newest last
_models: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()  # (files, device, dtype) -> (model, processor)
runs = 0  # how many times the model ran: what tests read to see a map come from the kept ones


def check_depth_model(models_dir: Path | None, guides: Sequence[ControlGuide], where: str = "") -> None:
    """InvalidRequest, in one sentence, when a guide uses the depth preprocessor and the depth model is missing;
    ``where``: how the caller says to get it (as ``depth_model_missing``; "": the window's way and the command's)."""
    if any(guide.preprocessor == DEPTH for guide in guides) and find_depth_model(models_dir) is None:
        raise InvalidRequest(depth_model_missing(models_dir, where))


def annotator(models_dir: Path | None, device: Any = None, dtype: Any = None) -> Annotate:  # noqa: ANN401
    """What ``ControlGuide.control_picture`` runs for a model preprocessor: depth maps made with the depth model in
    ``models_dir``, on ``device`` (a torch device; None: the CPU, in float32) in ``dtype``."""
    return partial(_annotate, models_dir, device, dtype)


def _annotate(models_dir: Path | None, device: Any, dtype: Any, preprocessor: str,  # noqa: ANN401
              image: Image.Image) -> Image.Image:
    if preprocessor != DEPTH:
        raise InvalidRequest(f"Studio has no model for the {preprocessor} preprocessor.")
    return depth_map(image, models_dir, device, dtype)


def depth_map(image: Image.Image, models_dir: Path | None, device: Any = None,  # noqa: ANN401
              dtype: Any = None) -> Image.Image:
    """The depth map of ``image`` (RGB, its size; near white) made by the depth model in ``models_dir``;
    InvalidRequest when there is none, ModelError when it cannot be loaded."""
    folder = find_depth_model(models_dir)
    if folder is None:
        raise InvalidRequest(depth_model_missing(models_dir))
    key = files_key(sorted(p for p in folder.iterdir() if p.is_file()))
    with _lock:
        kept = next((m for m in _maps if m.picture() is image and m.model == key), None)
        if kept is not None:
            _maps.remove(kept)
            _maps.append(kept)
            return kept.depth
        model, processor = _model(folder, key, device, dtype)
        depth = _run(model, processor, image)
        _maps.append(_Map(weakref.ref(image), key, depth))
        del _maps[:-KEPT_MAPS]
        return depth


def forget() -> None:
    """Let the kept model and maps go (Free Memory)."""
    with _lock:
        _maps.clear()
        _models.clear()


def held_models() -> list[HeldModel]:
    """The depth models loaded, for Models in Memory: the engine device's (kept from a job's depth guide) and the
    CPU's, which the guides' thumbnails run (and the engine's jobs, when it runs on the CPU)."""
    with _lock:
        loaded = [model for model, _ in _models.values()]
    return [_described(model) for model in loaded]


def let_gpu_copies_go() -> list[HeldModel]:
    """The depth models in a GPU's memory go, for a job's memory plan that needs the room (its depth maps were made
    before the UNet runs, and are kept); the CPU's, which the thumbnails run, stays. What went."""
    with _lock:
        on_gpu = [slot for slot, (model, _) in _models.items() if model.device.type != "cpu"]
        return [_described(_models.pop(slot)[0]) for slot in on_gpu]


def _described(model: Any) -> HeldModel:  # noqa: ANN401 - transformers' DepthAnythingForDepthEstimation
    folder = Path(model.name_or_path)  # the folder it was loaded from, as transformers records it
    return describe(f"Depth model {folder.name}", CACHED, [model], folder)


def _model(folder: Path, key: FilesKey, device: Any, dtype: Any) -> tuple[Any, Any]:  # noqa: ANN401
    import torch

    device = torch.device("cpu") if device is None else torch.device(device)
    dtype = torch.float32 if device.type == "cpu" or dtype is None else dtype  # half precision is slow on a CPU
    slot = (key, str(device), str(dtype))
    if slot in _models:
        _models.move_to_end(slot)
        return _models[slot]
    from safetensors import SafetensorError

    quiet_imports()  # no console bars, no torchvision warning: the image processor's PIL backend is the one used
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    try:
        processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise ModelError(f"The depth model in {folder} could not be loaded: {first_line(exc)}.") from None
    from studio.engine.memory import own_weights

    model = model.to(device, dtype).eval()
    own_weights(model)  # on the CPU, not pages of its file: one cut short while a map is made would be SIGBUS
    _models[slot] = (model, processor)
    while len(_models) > KEPT_MODELS:
        _models.popitem(last=False)
    return _models[slot]


def _run(model: Any, processor: Any, image: Image.Image) -> Image.Image:  # noqa: ANN401
    global runs
    import torch

    picture = rgb_or_rgba(image)
    if picture.mode == "RGBA":  # as the other preprocessors that read a photo: transparent parts on white
        picture = flatten(picture, (255, 255, 255))
    width, height = work_size(picture.size, processor.size["height"])
    inputs = processor(images=picture, size={"height": height, "width": width}, keep_aspect_ratio=False,
                       return_tensors="pt")
    pixels = inputs["pixel_values"].to(model.device, model.dtype)
    with torch.inference_mode():
        predicted = model(pixel_values=pixels).predicted_depth  # (1, h, w): larger is nearer
        # Back to the picture's size as Depth Anything's own infer_image does (bilinear, corners aligned).
        depth = torch.nn.functional.interpolate(predicted[:, None].float(), (picture.height, picture.width),
                                                mode="bilinear", align_corners=True)[0, 0].cpu().numpy()
    runs += 1
    low, high = float(depth.min()), float(depth.max())
    scaled = (depth - low) / (high - low) * 255.0 if high > low else np.zeros_like(depth)
    return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")


def work_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """The size the model reads a picture of ``size`` at: its short side ``side``, as Depth Anything's own
    ``infer_image`` does, unless that makes the long side more than ``LONGEST`` times ``side``: then the long side
    is that. Each side a whole number of patches, at least one (a 4000x40 strip's short side would round to none:
    it is read a little stretched, and the map is scaled back to the picture's size all the same)."""
    width, height = size
    scale = min(side / min(width, height), side * LONGEST / max(width, height))
    return max(PATCH, round(width * scale / PATCH) * PATCH), max(PATCH, round(height * scale / PATCH) * PATCH)
