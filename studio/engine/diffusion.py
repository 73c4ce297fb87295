"""Studio's built-in generator: txt2img and img2img with diffusers, on the engine thread."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import JobCancelledError, StudioError
from studio.core.generation import JobContext
from studio.core.images import flatten
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest
from studio.engine.device import DeviceInfo, free_memory, select_device
from studio.engine.libraries import quiet_imports
from studio.engine.loader import LoadedModel, load_model
from studio.engine.preview import latents_to_preview
from studio.engine.schedulers import make_scheduler

log = logging.getLogger(__name__)


class DiffusersGenerator:
    """Keeps one model loaded; switching models frees the previous one first."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self._env = env
        self._device: DeviceInfo | None = None
        self._model: LoadedModel | None = None

    def warm_up(self, status) -> None:  # noqa: ANN001 - StatusFn from the worker
        """Import the heavy libraries and pick the device, so the first job starts at once."""
        started = time.perf_counter()
        quiet_imports()
        import diffusers.pipelines.auto_pipeline  # noqa: F401 - the import is the point

        self._device = select_device(self._env.device)
        log.info("Engine ready on %s after %.2f s", self._device.description, time.perf_counter() - started)
        status(device=self._device.description)

    @property
    def device(self) -> DeviceInfo:
        if self._device is None:
            self._device = select_device(self._env.device)
        return self._device

    def _ensure_model(self, path: Path, context: JobContext) -> LoadedModel:
        if self._model is not None and self._model.path == path.resolve():
            return self._model
        if self._model is not None:
            self._model = None
            free_memory(self._device)
        context.status(device=self.device.description, message=f"Loading {path.name}…")
        started = time.perf_counter()
        self._model = load_model(path, self.device, self._env.cache_dir / "model-hashes.json")
        log.info("Loaded %s in %.2f s", path, time.perf_counter() - started)
        context.status(device=self.device.description, model=self._model.name, message="")
        return self._model

    def generate(self, request: GenerationRequest, context: JobContext) -> Iterator[tuple[Image.Image, Recipe]]:
        try:
            yield from self._generate(request, context)
        except torch.OutOfMemoryError:
            self._model = None
            free_memory(self._device)
            raise StudioError(
                f"The GPU ran out of memory making a {request.width}x{request.height} image; "
                "try a smaller size, or close other programs using the GPU. The model was unloaded."
            ) from None

    def _generate(self, request: GenerationRequest, context: JobContext) -> Iterator[tuple[Image.Image, Recipe]]:
        model = self._ensure_model(Path(request.model), context)
        pipe = model.pipeline(img2img=request.is_img2img)
        pipe.scheduler = make_scheduler(request.scheduler, model.base_scheduler_config)
        kwargs: dict = dict(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            num_inference_steps=request.steps,
            guidance_scale=request.cfg_scale,
            output_type="pil",
        )
        if request.is_img2img:
            init = flatten(request.init_image).resize((request.width, request.height), Image.Resampling.LANCZOS)
            kwargs.update(image=init, strength=request.strength)
        else:
            kwargs.update(width=request.width, height=request.height)

        for index in range(request.batch_count):
            context.check_cancelled()
            seed = request.seed_for(index)

            def on_step_end(pipeline, step: int, timestep, tensors: dict, _index: int = index) -> dict:
                if context.is_cancelled():
                    raise JobCancelledError()
                total = getattr(pipeline, "num_timesteps", None) or request.steps
                preview = latents_to_preview(tensors["latents"], model.family)
                context.report_progress(step + 1, total, _index, preview)
                return {}

            # CPU generator: the same seed gives the same picture on every device (A1111 does the same).
            generator = torch.Generator("cpu").manual_seed(seed)
            with torch.inference_mode():
                image = pipe(generator=generator, callback_on_step_end=on_step_end, **kwargs).images[0]
            yield image, Recipe(
                prompt=request.prompt,
                negative_prompt=request.negative_prompt,
                steps=request.steps,
                sampler=request.scheduler,
                cfg_scale=request.cfg_scale,
                seed=seed,
                width=image.width,
                height=image.height,
                model_name=model.name,
                model_hash=model.hash,
                strength=request.strength if request.is_img2img else None,
                generator=request.generator,
            )
