"""ControlNet guides on the engine thread: finding and loading ControlNets, keeping them for the next job, and
running a job through diffusers' ControlNet pipelines.

A ControlNet is a diffusers folder (config.json + safetensors) or a single .safetensors file, in lllyasviel's
original layout (``control_model.``, what A1111 and ComfyUI people have) or diffusers' key names. A single file
is built from a config Studio ships (``resources/model-configs/controlnet-<family>``, picked by the width of its
cross-attention; a ``configs/controlnet-<family>`` folder in the models folder wins), so nothing is fetched.

A job with guides runs the ControlNet counterpart of the pipeline it would run (txt2img, img2img, inpaint; SD and
SDXL), made with ``from_pipe`` from the loaded model's own components, so nothing of the model is loaded or copied
again. The ControlNets the last guided job used stay loaded, with those pipelines, for the next one.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from studio.core.attention_width import CONTEXT_FAMILY
from studio.core.control import Annotate, ControlGuide
from studio.core.controlnet_kinds import CONTROL_FAMILIES, control_problem
from studio.core.errors import InvalidRequest, ModelError, first_line
from studio.core.hashing import controlnet_hash, files_key, in_background
from studio.core.model_kind import FAMILY_LABELS, other_kind_sentence, with_article
from studio.core.model_kinds import detect_folder_kind, detect_kind
from studio.core.model_library import KIND_FOLDERS, item_for_folder
from studio.core.models import PICKLE_SUFFIXES, SAFE_SUFFIX, find_weights_or_folder
from studio.core.paths import resources_dir
from studio.core.requests import GenerationRequest
from studio.core.weight_files import check_weights_file, pickle_refusal
from studio.engine import depth_maps
from studio.engine.addon_names import in_linked_folders, recorded_name
from studio.engine.depth_maps import annotator, check_depth_model

if TYPE_CHECKING:  # torch loads with them; `studio generate` may check guides' names before it does
    from studio.engine.device import DeviceInfo
    from studio.engine.job_runs import JobRun

FOLDER = KIND_FOLDERS["controlnet"]
CONFIG = "config.json"
# The config a single file is built from, by the width of its cross-attention (its text encoder's).
CONFIG_KEYS = {width: f"controlnet-{family}" for width, family in CONTROL_FAMILIES.items()}
# Each pipeline Studio runs and its ControlNet counterpart, which takes the same components and a ControlNet.
PIPELINES = {f"StableDiffusion{xl}{task}Pipeline": f"StableDiffusion{xl}ControlNet{task}Pipeline"
             for xl in ("", "XL") for task in ("", "Img2Img", "Inpaint")}
# lllyasviel's SDXL files keep SDXL's size conditioning as the UNet does; diffusers' converter leaves it out.
_SDXL_LABEL_EMB = {f"add_embedding.linear_{n}.{part}": f"label_emb.0.{2 * n - 2}.{part}"
                   for n in (1, 2) for part in ("weight", "bias")}


@dataclass(frozen=True)
class ControlSource:
    name: str  # as recipes record it: its path inside <models>/controlnet, else its own name
    path: Path  # a diffusers folder or a .safetensors file
    width: int  # its cross-attention width: the text encoder it was trained with (0: not known)


def find_controlnet(models_root: Path, name: str, linked: Sequence[Path] = ()) -> ControlSource:
    """A ControlNet in ``<models>/controlnet`` (a folder, or ``<name>.safetensors``), else a folder or file at
    ``name``; InvalidRequest naming where Studio looked, ModelError for a pickle or what is not a ControlNet.
    ``linked``: the linked files and folders the caller looked in too, named in the "No ControlNet named" sentence."""
    folder = models_root / FOLDER
    path, looked = find_weights_or_folder(folder, name, CONFIG)
    if path is None:
        given = Path(name).expanduser()  # a model folder (no config.json) given as one: said to be what it is
        other = item_for_folder(given, "given") if given.is_dir() else None
        if other is not None and other.kind not in ("controlnet", "unknown"):
            raise InvalidRequest(other_kind_sentence(name, other.kind, other.label, "controlnet"))
        also = in_linked_folders("a ControlNet of that name", linked)
        raise InvalidRequest(f"No ControlNet named {name!r} was found: Studio looked for {looked}{also}.")
    info = None if path.is_dir() else check_weights_file(path)  # a pickle is refused here, unread
    kind = detect_folder_kind(path) if info is None else detect_kind(info, path.name)
    if kind.kind == "unknown":
        raise InvalidRequest(f"{path.name} is not a ControlNet; pick a ControlNet for the guide.")
    if kind.kind != "controlnet":
        raise InvalidRequest(other_kind_sentence(name, kind.kind, kind.label, "controlnet"))
    if problem := control_problem(kind, path.name):
        raise ModelError(problem)
    return ControlSource(recorded_name(folder, path), path, kind.width)


def _made_for(width: int) -> str:
    family = CONTEXT_FAMILY.get(width)
    return FAMILY_LABELS[family] if family else f"{width}-wide text encoder"


def check_fits(source: ControlSource, unet: Any, model_name: str) -> None:  # noqa: ANN401 - the model's UNet
    """InvalidRequest naming both when the ControlNet was made for another kind of model (an SDXL ControlNet on
    an SD 1.5 model): its residuals would not fit the UNet's layers."""
    if problem := fit_problem(source, int(unet.config.cross_attention_dim), model_name):
        raise InvalidRequest(problem)


def fit_problem(source: ControlSource, width: int, model_name: str) -> str | None:
    """Why the ControlNet cannot guide the model ``model_name``, whose cross-attention is ``width`` wide, in a
    sentence; None when it can, or when either width is not known (0). No torch: ``studio generate`` asks it from
    the files' headers before the engine starts."""
    if source.width and width and source.width != width:
        return (f"The ControlNet {source.name} is made for {_made_for(source.width)} models, and {model_name} is "
                f"{with_article(_made_for(width))} model; choose a ControlNet made for {_made_for(width)} models.")
    return None


def _load(source: ControlSource, dtype: Any, models_dir: Path | None) -> Any:  # noqa: ANN401
    from safetensors import SafetensorError

    try:
        net = _load_folder(source, dtype) if source.path.is_dir() else _load_file(source, dtype, models_dir)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise ModelError(f"The ControlNet {source.name} could not be loaded: {first_line(exc)}.") from None
    return net.eval()


def _load_folder(source: ControlSource, dtype: Any) -> Any:  # noqa: ANN401
    from diffusers import ControlNetModel

    weights = sorted(source.path.glob(f"*{SAFE_SUFFIX}"))
    if not weights:
        pickles = [p for p in source.path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
        raise ModelError(pickle_refusal(pickles[0]) if pickles else
                         f"The ControlNet folder {source.path} has no .safetensors weights.")
    for file in weights:
        check_weights_file(file)
    only_fp16 = all(".fp16." in file.name for file in weights)  # what the hub's fp16 variants are named
    return ControlNetModel.from_pretrained(source.path, local_files_only=True, use_safetensors=True,
                                           torch_dtype=dtype, variant="fp16" if only_fp16 else None)


def _load_file(source: ControlSource, dtype: Any, models_dir: Path | None) -> Any:  # noqa: ANN401
    from diffusers import ControlNetModel
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint
    from safetensors.torch import load_file

    folder = _config_folder(source, models_dir)
    config = ControlNetModel.load_config(str(folder))
    check_weights_file(source.path)  # right before it is read, as every loader does
    state = load_file(str(source.path), device="cpu")
    if any(key.startswith("control_model.") or key.startswith("input_hint_block.") for key in state):
        original = {key.removeprefix("control_model."): value for key, value in state.items()}
        state = dict(convert_controlnet_checkpoint(state, config),
                     **{key: original[old] for key, old in _SDXL_LABEL_EMB.items() if old in original})
    other_layers = ModelError(f"The ControlNet {source.name} does not have the layers of the "
                              f"{_made_for(source.width)} ControlNet Studio knows ({folder.name}'s {CONFIG}); use its "
                              f"diffusers folder, with its own {CONFIG}, instead.")
    try:
        net = ControlNetModel.from_single_file(state, config=str(folder), local_files_only=True, torch_dtype=dtype)
    except ValueError as exc:
        if "expected shape" in str(exc):  # diffusers' words for a layer of another size
            raise other_layers from None
        raise
    # diffusers leaves a layer the file lacks empty (on the meta device), and one it does not know unread.
    if any(weight.is_meta for weight in net.parameters()) or not set(state) <= set(net.state_dict()):
        raise other_layers
    return net


def _config_folder(source: ControlSource, models_dir: Path | None) -> Path:
    key = CONFIG_KEYS.get(source.width)
    if key is None:
        raise ModelError(f"Studio has no configuration for the ControlNet {source.name} (made for "
                         f"{_made_for(source.width)} models); use its diffusers folder, with its {CONFIG}, instead.")
    own = models_dir / "configs" / key if models_dir is not None else None
    return own if own is not None and (own / CONFIG).is_file() else resources_dir() / "model-configs" / key


def _own_weights(net: Any) -> None:  # noqa: ANN401 - a ControlNetModel or MultiControlNetModel
    """Its weights on the CPU in the process's own memory, not pages of its files (safetensors maps them): a file
    cut short in place while a job runs would be SIGBUS at the next read."""
    from studio.engine.memory import own_weights

    own_weights(net)


def control_pictures(guides: Sequence[ControlGuide], size: tuple[int, int],
                     area: tuple[tuple[int, int], tuple[int, int, int, int]] | None = None,
                     annotate: Annotate | None = None) -> list[Image.Image]:
    """What each ControlNet sees, at the size the pipeline works at. A job from a picture (``area``: its size and
    the box of it the pipeline works on): the control picture fitted to the whole picture, then cut and scaled as
    the box is (img2img's stretch, ``inpainting.plan_inpaint``'s crop), so its lines fall where the picture's do.
    ``annotate`` runs the model preprocessors (depth: ``depth_maps.annotator``)."""
    start, box = area if area is not None else (None, None)
    return [guide.control_picture(*size, start, box, annotate) for guide in guides]


class ControlNets:
    """The ControlNets the last guided job used (kept for the next), and the ControlNet pipelines built on the
    model's pipelines for them."""

    def __init__(self) -> None:
        self._nets: dict[tuple[Any, ...], tuple[ControlSource, Any]] = {}
        self._pipes: weakref.WeakKeyDictionary[Any, tuple[tuple[int, ...], Any]] = weakref.WeakKeyDictionary()

    @property
    def kept(self) -> list[tuple[ControlSource, Any]]:
        return list(self._nets.values())

    def clear(self) -> None:
        self._nets.clear()
        self._pipes.clear()
        depth_maps.forget()

    def model_changed(self, unet: Any, dtype: Any) -> None:  # noqa: ANN401
        """A new model: its pipelines are new, and ControlNets for another kind or precision of model go."""
        self._pipes.clear()
        width = int(getattr(getattr(unet, "config", None), "cross_attention_dim", 0) or 0)
        self._nets = {key: (source, net) for key, (source, net) in self._nets.items()
                      if net.dtype == dtype and source.width in (0, width)}

    def let_unused_go(self, pipe: Any) -> bool:  # noqa: ANN401
        """For a job whose memory plan needs room: the kept ControlNets it does not use go; True when any did."""
        used = getattr(pipe, "controlnet", None)
        in_use = set(map(id, getattr(used, "nets", [used])))
        unused = [key for key, (_, net) in self._nets.items() if id(net) not in in_use]
        for key in unused:
            del self._nets[key]
        if unused:
            self._pipes.clear()
        return bool(unused)

    def attach(self, run: JobRun, request: GenerationRequest, sources: Sequence[ControlSource],
               device: DeviceInfo, models_dir: Path | None, status: Callable[[str], None]) -> None:
        """The run with its ControlNet pipeline, the request's control pictures, weights and step ranges, and its
        guides for the recipe (the models' hashes are read meanwhile)."""
        guides = request.controls
        check_depth_model(models_dir, guides)  # before a ControlNet is read: the window and CLI have said so already
        nets = self._get(sources, device, models_dir, status)
        run.pipe = self._pipeline(run.pipe, nets)
        # The size the pipeline works at: an inpainting crop's, else the request's (img2img resizes to it).
        size = (run.kwargs.get("width", request.width), run.kwargs.get("height", request.height))
        pictures = control_pictures(guides, size, run.control_area,
                                    annotator(models_dir, device.torch_device, device.dtype))
        one = len(guides) == 1
        txt2img = not any(task in type(run.pipe).__name__ for task in ("Img2Img", "Inpaint"))
        run.kwargs["image" if txt2img else "control_image"] = pictures[0] if one else pictures
        for argument, values in (("controlnet_conditioning_scale", [g.weight for g in guides]),
                                 ("control_guidance_start", [g.start for g in guides]),
                                 ("control_guidance_end", [g.end for g in guides])):
            run.kwargs[argument] = values[0] if one else values
        hashes = [in_background(partial(controlnet_hash, source.path), source.path) for source in sources]
        run.later["controls"] = lambda: tuple(replace(guide, model=source.name).to_record(digest.result())
                                              for guide, source, digest in zip(guides, sources, hashes, strict=True))

    def _get(self, sources: Sequence[ControlSource], device: DeviceInfo, models_dir: Path | None,
             status: Callable[[str], None]) -> list[Any]:
        # A ControlNet is loaded again when its files change (size, modification time) or the job's precision does.
        dtype = device.dtype
        files = [sorted(p for p in s.path.iterdir() if p.is_file()) if s.path.is_dir() else [s.path] for s in sources]
        keys = [(str(s.path.resolve()), files_key(f), str(dtype)) for s, f in zip(sources, files, strict=True)]
        if set(self._nets) - set(keys):  # the ones this job does not use go before others are read
            self._nets = {key: value for key, value in self._nets.items() if key in keys}
            self._pipes.clear()
        loading = [(source, key) for source, key in zip(sources, keys, strict=True) if key not in self._nets]
        for source, key in loading:
            if key not in self._nets:  # not when one ControlNet guides twice
                status(f"Loading the ControlNet {source.name}…")
                net = _load(source, dtype, models_dir)
                if device.kind == "cpu":  # elsewhere the memory plan copies it to the device (``place``)
                    _own_weights(net)
                self._nets[key] = (source, net)
        if loading:
            status("")
        return [self._nets[key][1] for key in keys]

    def _pipeline(self, pipe: Any, nets: list[Any]) -> Any:  # noqa: ANN401
        key = tuple(map(id, nets))
        found = self._pipes.get(pipe)
        if found is not None and found[0] == key:
            return found[1]
        import diffusers

        name = PIPELINES.get(type(pipe).__name__)
        if name is None:
            raise ModelError(f"Control guides cannot steer a {type(pipe).__name__}; Studio runs them with Stable "
                             "Diffusion and SDXL pipelines.")
        controlnet = nets[0] if len(nets) == 1 else diffusers.MultiControlNetModel(nets)
        wrapper = getattr(diffusers, name).from_pipe(pipe, controlnet=controlnet)
        wrapper.set_progress_bar_config(disable=True)
        self._pipes[pipe] = (key, wrapper)
        return wrapper


def bytes_to_place(pipe: Any, device: DeviceInfo) -> int:  # noqa: ANN401
    """What the pipeline's ControlNets will add to the device's memory: their weights not there yet."""
    net = getattr(pipe, "controlnet", None)
    if net is None:
        return 0
    return sum(w.numel() * w.element_size() for w in net.parameters() if w.device != device.torch_device)


def place(pipe: Any, offloaded: bool, device: DeviceInfo) -> None:  # noqa: ANN401
    """The pipeline's ControlNet where the memory plan put the model: on the device beside the UNet, or moved
    there only while it runs when the model is offloaded (the model's hooks were made for its own pipeline)."""
    net = getattr(pipe, "controlnet", None)
    if net is None:
        return
    if offloaded:
        if getattr(net, "_hf_hook", None) is None:
            pipe.enable_model_cpu_offload(device=device.torch_device)  # the same chain, with the ControlNet beside
            _own_weights(net)  # kept on the CPU between its runs: not as pages of its files
        return
    if hasattr(net, "_hf_hook"):
        from accelerate.hooks import remove_hook_from_module

        remove_hook_from_module(net, recurse=True)  # an offloaded job's before
    net.to(device.torch_device)
