"""Diffusion restyle: image to image of the picture with a Stable Diffusion model and a style prompt.

It runs through Studio's own diffusers generator (the registry hands it over), so the model that
is already loaded is used, and a model switch frees the previous one as for any job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest
from studio.core.generation import JobContext
from studio.core.models import resolve_model
from studio.core.requests import MAX_SIZE, MIN_SIZE, GenerationRequest, prepare_request


class Restyle:
    runs_generator = True  # a job's pictures are all made before this step runs on them (see JobService)

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env
        self._registry: Any = None

    def use_registry(self, registry: Any) -> None:  # noqa: ANN401 - the plugin host's Registry (a sibling layer)
        self._registry = registry

    def model_path(self, value: str) -> Path:
        if not value.strip():
            raise InvalidRequest("Diffusion restyle needs a model: pick one in the model list (or give --model).")
        return resolve_model(value, self.env.models_root)

    def process(self, image: Image.Image, params: Mapping[str, Any], context: JobContext) -> Image.Image:
        if self._registry is None:
            raise RuntimeError("Restyle was created without Studio's registry")
        request = GenerationRequest(
            model=str(self.model_path(params["model"])), prompt=params["prompt"], negative_prompt=params["negative"],
            width=image.width, height=image.height, steps=params["steps"], cfg_scale=params["cfg_scale"],
            seed=params["seed"], init_image=image.convert("RGB"), strength=params["denoise"],
            reference_image=params.get("reference"), reference_scale=params.get("reference_strength", 0.6))
        prepared = prepare_request(_fit(request)).request
        generator = self._registry.instance("generator", "diffusers", self.env)
        for result, _recipe in generator.generate(prepared, context):
            if result.size != image.size:  # sizes are worked at in multiples of 8
                result = result.resize(image.size, Image.Resampling.LANCZOS)
            return result
        raise RuntimeError("The diffusers generator made no picture")


def _fit(request: GenerationRequest) -> GenerationRequest:
    """Sizes the model can work at: multiples of 8, within Studio's limits (the result is scaled back)."""
    scale = min(1.0, MAX_SIZE / max(request.width, request.height))
    width = max(MIN_SIZE, int(request.width * scale) // 8 * 8)
    height = max(MIN_SIZE, int(request.height * scale) // 8 * 8)
    return replace(request, width=width, height=height)
