"""Hires fix on the engine thread: each picture of a batch made at its first size, enlarged, and redrawn.

Both passes are whole jobs of Studio's generator (``make``), one after the other, so the second gets everything the
first did: the same LoRAs, VAE, reference picture and embeddings, its own memory plan at the larger size, the fast
path's captured step for that size (kept beside the first size's), and the eager fallback. Progress runs over both
passes as one count of steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from PIL import Image

from studio.core.generation import JobContext
from studio.core.hires import LANCZOS, HiresFix, latent_mode
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest
from studio.engine.memory import upcasts_float16_vae

Pictures = Iterable[tuple[Image.Image, Recipe]]
Enlarge = Callable[[Image.Image, HiresFix, tuple[int, int], JobContext], Image.Image]


@dataclass(frozen=True)
class LatentStart:
    """A latent upscaler's start for the second pass (AUTOMATIC1111's "Latent" upscalers): the first picture as the
    model's VAE encodes it, those latents enlarged. The pipeline takes latents for its ``image`` and noises them."""

    picture: Image.Image
    upscaler: str  # its name, as the person chose it
    mode: str  # torch.nn.functional.interpolate's
    antialias: bool

    def latents(self, pipe: Any, size: tuple[int, int]) -> torch.Tensor:  # noqa: ANN401 - an image-to-image pipeline
        vae = pipe.vae
        pixels = pipe.image_processor.preprocess(self.picture)
        # SDXL's VAE overflows in float16: its image-to-image pipeline encodes in float32 for it, as here. SD 1.5's
        # pipelines encode in float16 (its VAE's config says force_upcast too, by diffusers' default; they ignore it).
        upcast = vae.dtype == torch.float16 and upcasts_float16_vae(pipe)
        dtype = torch.float32 if upcast else vae.dtype
        if upcast:
            vae.to(dtype=torch.float32)
        try:
            encoded = vae.encode(pixels.to(device=pipe._execution_device, dtype=dtype)).latent_dist.mode()
        finally:
            if upcast:
                vae.to(dtype=torch.float16)
        encoded = encoded.float() * vae.config.scaling_factor
        scale = pipe.vae_scale_factor
        enlarged = torch.nn.functional.interpolate(encoded, size=(size[1] // scale, size[0] // scale),
                                                   mode=self.mode, antialias=self.antialias)
        return enlarged.to(vae.dtype)


MakePictures = Callable[[GenerationRequest, JobContext, LatentStart | None], Pictures]


class PassContext:
    """One pass's view of the job: its steps counted after the passes before it, notes said once per job."""

    def __init__(self, job: JobContext, image_index: int, steps_before: int, steps_here: int, steps_in_all: int,
                 said: set[str]) -> None:
        self._job = job
        self._index = image_index
        self._before = steps_before
        self._here = steps_here
        self._in_all = steps_in_all
        self._said = said

    def report_progress(self, step: int, total: int, image_index: int = 0, preview: Image.Image | None = None,
                        preview_box: tuple[int, int, int, int] | None = None) -> None:
        # The pass's own count scaled to its share: a sampler such as Heun reports two model calls a step.
        done = self._before + min(self._here, round(step * self._here / max(1, total)))
        self._job.report_progress(done, self._in_all, self._index, preview, preview_box)

    @property
    def wants_previews(self) -> bool:
        return self._job.wants_previews

    def is_cancelled(self) -> bool:
        return self._job.is_cancelled()

    def check_cancelled(self) -> None:
        self._job.check_cancelled()

    def note(self, text: str) -> None:
        if text not in self._said:  # the second pass's memory plan and fallbacks would say it all again
            self._said.add(text)
            self._job.note(text)

    def status(self, *, device: str = "", model: str = "", message: str = "", device_kind: str = "") -> None:
        self._job.status(device=device, model=model, message=message, device_kind=device_kind)


class _Quiet(PassContext):
    """The enlarging step's view: an upscaler's tile count is not the job's step count."""

    def report_progress(self, step: int, total: int, image_index: int = 0, preview: Image.Image | None = None,
                        preview_box: tuple[int, int, int, int] | None = None) -> None:
        self.check_cancelled()


def hires_pictures(request: GenerationRequest, context: JobContext, make: MakePictures,
                   enlarge: Enlarge) -> Iterator[tuple[Image.Image, Recipe]]:
    """The batch of ``request`` (which has a hires fix), each picture made in two passes by ``make``."""
    hires = request.hires
    assert hires is not None
    size = hires.size(request.width, request.height)
    steps = hires.steps_for(request.steps)
    first_steps = request.steps
    second_steps = int(steps * hires.strength)  # diffusers' image to image runs int(steps x strength)
    steps_in_all = first_steps + second_steps
    said: set[str] = set()
    for index in range(request.batch_count):
        context.check_cancelled()
        first = replace(request, batch_count=1, seed=request.seed_for(index), hires=None)
        context.status(message=f"Making the picture at {request.width}x{request.height}…")
        picture, recipe = _only(make(first, PassContext(context, index, 0, first_steps, steps_in_all, said), None))
        context.check_cancelled()
        mode = latent_mode(hires.upscaler)
        start = None if mode is None else LatentStart(picture, hires.upscaler, *mode)
        if start is None:
            how = "" if hires.upscaler == LANCZOS else f" with {hires.upscaler}"
            context.status(message=f"Enlarging to {size[0]}x{size[1]}{how}…")
            enlarged = enlarge(picture, hires, size, _Quiet(context, index, 0, 0, steps_in_all, said))
        else:  # the latents are enlarged in the second pass; this picture stands where they cannot be used
            enlarged = enlarge_lanczos(picture, size)
        if enlarged.size != size:
            enlarged = enlarged.resize(size, Image.Resampling.LANCZOS)
        second = replace(first, width=size[0], height=size[1], steps=steps, init_image=enlarged.convert("RGB"),
                         strength=hires.strength)
        context.status(message=f"Redrawing at {size[0]}x{size[1]}…")
        result, second_recipe = _only(make(second, PassContext(context, index, first_steps, second_steps,
                                                               steps_in_all, said), start))
        # A1111's record of a hires picture: the first pass's size and steps, and the second pass's settings.
        yield result, replace(second_recipe, steps=recipe.steps, width=recipe.width, height=recipe.height,
                              strength=None).with_hires(hires)


def enlarge_lanczos(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    return picture.resize(size, Image.Resampling.LANCZOS)


def _only(pictures: Pictures) -> tuple[Image.Image, Recipe]:
    """The one picture of a one-picture job; the job is run to its end (its fast path and attachments undone)."""
    made = list(pictures)
    if len(made) != 1:
        raise RuntimeError(f"A one-picture pass made {len(made)} pictures")
    return made[0]
