"""Studio's colour-transfer post-processors (no weights, no torch): the picture takes a reference's colours."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image

from studio.core.color_transfer import transfer_color
from studio.core.environment import GeneratorEnvironment
from studio.core.generation import JobContext


class ColorTransfer:
    """Reinhard's LAB mean/std transfer (``method = "lab"``) or histogram matching (``"histogram"``)."""

    method = "lab"

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env

    def process(self, image: Image.Image, params: Mapping[str, Any], context: JobContext) -> Image.Image:
        context.check_cancelled()
        result = transfer_color(image, params["style"], self.method)
        context.report_progress(1, 1)
        return result


class HistogramTransfer(ColorTransfer):
    method = "histogram"
