"""The generator Studio creates: turns a request into one procedural picture per seed of the batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

from studio.plugin_api import GenerationRequest, GeneratorEnvironment, PluginContext
from studio_procedural.fields import field_stages, normalise, stage_count
from studio_procedural.palette import colourise, lookup_table, palette_for

PREVIEW_SIDE = 128


class ProceduralGenerator:
    """Clouds, marble, waves, rings, cells and gradients, coloured by the words of the prompt."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env  # nothing to load: no weights, no files

    def generate(self, request: GenerationRequest, context: PluginContext) -> Iterator[Image.Image]:
        params = request.params  # checked by Studio against the manifest, defaults filled in
        table = lookup_table(palette_for(request.prompt, request.negative_prompt))
        total = stage_count(params["detail"]) + 1  # the stages of the field, then colouring
        for index in range(request.batch_count):
            context.check_cancelled()
            stages = field_stages(params["pattern"], request.width, request.height, request.seed_for(index),
                                  scale=params["scale"], detail=params["detail"], warp=params["warp"])
            # The stages are computed lazily, one per turn of this loop, so a cancel stops the work
            # between two of them rather than after the whole picture.
            for step, field in enumerate(stages, start=1):
                context.check_cancelled()
                context.report_progress(step, total, image_index=index,
                                        preview=_preview(field, table, params["contrast"]))
            pixels = colourise(normalise(field, params["contrast"]), table)
            context.report_progress(total, total, image_index=index)
            yield Image.fromarray(pixels, "RGB")  # Studio writes the recipe for plain images


def _preview(field: np.ndarray, table: np.ndarray, contrast: float) -> Image.Image:
    """A small coloured look at the field so far (every n-th pixel: cheap even at 4096x4096)."""
    stride = max(1, -(-max(field.shape) // PREVIEW_SIDE))
    return Image.fromarray(colourise(normalise(field[::stride, ::stride], contrast), table), "RGB")
