"""How one generation request runs on a loaded model: which pipeline, its arguments, and what becomes of its
pictures (txt2img and img2img, the same with an inpainting model, and inpainting a masked area)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from studio.core.images import flatten
from studio.core.requests import GenerationRequest, check_strength
from studio.engine.inpainting import plan_inpaint
from studio.engine.loader import LoadedModel


def _same(image: Image.Image) -> Image.Image:
    return image


def _no_arguments(seed: int) -> dict[str, Any]:
    return {}


@dataclass
class JobRun:
    """How one request runs: the pipeline, its arguments, and what happens to its pictures."""

    pipe: Any
    kwargs: dict[str, Any]
    per_seed: Callable[[int], dict[str, Any]] = _no_arguments  # arguments that depend on the seed
    finish: Callable[[Image.Image], Image.Image] = _same  # the pipeline's picture -> the result
    preview: Callable[[Image.Image], Image.Image] = _same  # a latent preview -> what the UI shows
    preview_box: tuple[int, int, int, int] | None = None  # where on the result the preview goes (None: all of it)
    recipe: dict[str, Any] = field(default_factory=dict)  # Recipe fields beyond the common ones
    later: dict[str, Callable[[], Any]] = field(default_factory=dict)  # those computed meanwhile (file hashes)
    # From a picture: its size and the box of it the pipeline works on (control pictures are fitted, cut and scaled
    # alike); None for a new picture, whose control pictures are cropped to its size.
    control_area: tuple[tuple[int, int], tuple[int, int, int, int]] | None = None


def plain_run(request: GenerationRequest, model: LoadedModel) -> JobRun:
    """txt2img, or img2img from request.init_image, with an ordinary (4-channel) model."""
    if request.is_img2img:
        check_strength(request.steps, request.strength)
        init = flatten(request.init_image).resize((request.width, request.height), Image.Resampling.LANCZOS)
        return JobRun(model.pipeline(img2img=True), dict(image=init, strength=request.strength),
                      recipe=dict(strength=request.strength), control_area=_whole(request.init_image))
    return JobRun(model.pipeline(), dict(width=request.width, height=request.height))


def full_mask_run(request: GenerationRequest, model: LoadedModel) -> JobRun:
    """txt2img / img2img with an inpainting (9-channel) model, the way AUTOMATIC1111 runs them.

    The UNet always takes a mask and a masked picture: here the mask covers everything, so the masked
    picture is all mid-grey (zero) whatever is passed. txt2img starts from pure noise (strength 1);
    img2img starts from the init image noised to the requested strength.
    """
    size = (request.width, request.height)
    mask = Image.new("L", size, 255)
    if request.is_img2img:
        check_strength(request.steps, request.strength)
        init = flatten(request.init_image).resize(size, Image.Resampling.LANCZOS)
        kwargs = dict(image=init, mask_image=mask, strength=request.strength)
        recipe: dict[str, Any] = dict(strength=request.strength)
    else:
        kwargs = dict(image=Image.new("RGB", size, (127, 127, 127)), mask_image=mask, strength=1.0)
        recipe = {}
    kwargs.update(width=request.width, height=request.height)
    area = _whole(request.init_image) if request.is_img2img else None
    return JobRun(model.pipeline(inpaint=True), kwargs, recipe=recipe, control_area=area)


def inpaint_run(request: GenerationRequest, model: LoadedModel) -> JobRun:
    """Inpaint request.init_image under request.mask; the result has the picture's own size.

    The pipeline (diffusers' SD/SDXL inpaint pipeline; 4- or 9-channel UNet alike) gets our own crop,
    size and cell-aligned mask; no padding_mask_crop. Pixels outside the feathered mask are the
    picture's own, bit for bit: ``InpaintPlan.finish`` blends with integer arithmetic.
    """
    check_strength(request.steps, request.strength)
    options = request.inpaint
    plan = plan_inpaint(request.init_image, request.mask, options, model.native_size, model.latent_scale)
    work_w, work_h = plan.work_size
    return JobRun(
        model.pipeline(inpaint=True),
        dict(mask_image=plan.model_mask, width=work_w, height=work_h, strength=request.strength),
        per_seed=lambda seed: dict(image=plan.start_picture(seed)),
        finish=plan.finish,
        preview=plan.previewer(),
        preview_box=plan.box,
        recipe=dict(strength=request.strength, mask_blur=options.feather, inpaint_area=plan.area_name,
                    masked_padding=options.padding if options.masked_only else None,
                    masked_content=options.fill),
        control_area=(plan.original.size, plan.box),
    )


def _whole(picture: Image.Image) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """img2img works on all of its start picture, stretched to the job's size: control pictures are fitted alike."""
    return picture.size, (0, 0, *picture.size)
