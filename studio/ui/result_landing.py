"""Where a finished job's picture goes when it lands: onto the canvas as it is now.

A job is made from the canvas as it was when it was asked for. An inpaint (or a filter under the mask) changes
only part of it; if the canvas changed meanwhile (another inpaint landed first), only the pixels this job
changed go in, or the first job's work would be undone. If the canvas changed size since (Extend, Scale), its
pixels are no longer where the job's are, and the result does not go onto it.
"""

from __future__ import annotations

from PIL import Image

from studio.core.events import GeneratedImage
from studio.core.inpaint import carry_changes
from studio.core.requests import MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, GenerationRequest, PostProcessRequest

# A result, the name of its undo step, and the canvas picture it was made from (see source_of).
Landing = tuple[GeneratedImage, str, "Image.Image | None"]

CANVAS_RESIZED = "The new picture is in the Gallery: the canvas changed size since it was asked for."
FILTER_RESIZED = "The filter's result was not put on the canvas, which changed size since; run the filter again."
FILTER_CHANGED = ("The filter's result was not put on the canvas: the canvas changed while it ran, and the result is "
                  "a different size, so its changes cannot be carried over; run the filter again.")


def source_of(request: object) -> Image.Image | None:
    """The canvas picture a job was made from, where its result changes only part of it (an inpaint, a filter
    under the mask); None where the result is a whole new picture."""
    if isinstance(request, GenerationRequest) and request.mask is not None:
        return request.init_image
    if isinstance(request, GenerationRequest) and request.init_image is not None:  # image to image
        size = request.init_image.size
        return request.init_image if rounded_to_model(size) == (request.width, request.height) != size else None
    if isinstance(request, PostProcessRequest) and request.mask is not None:
        return request.image
    return None


def landed(current: Image.Image | None, result: Image.Image, source: Image.Image | None) -> Image.Image | None:
    """The picture to put on the canvas; None when the canvas changed size since the job was asked for, or changed
    at all while a job that changes the picture's size (an upscale under the mask) ran: there is no telling which
    of its pixels are the job's changes (see held_because)."""
    if source is None:
        return result
    if result.size != source.size and result.size == rounded_to_model(source.size):
        result = result.resize(source.size, Image.Resampling.LANCZOS)  # back to the canvas's own size
    if current is None or current is source:
        return result
    if current.size != source.size or result.size != source.size:
        return None
    return carry_changes(source, result, current)


def rounded_to_model(size: tuple[int, int]) -> tuple[int, int]:
    """The size the model works at for a picture of ``size``: each side to the nearest multiple of 8, within
    Studio's limits (the Size boxes "Use canvas as input" sets)."""
    def side(value: int) -> int:
        return min(MAX_SIZE, max(MIN_SIZE, round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE))
    return side(size[0]), side(size[1])


def held_because(result: Image.Image, source: Image.Image | None, gallery: bool) -> str:
    """Why a result landed() refuses is not on the canvas (``gallery``: it is in the Gallery)."""
    if gallery:
        return CANVAS_RESIZED
    return FILTER_CHANGED if source is not None and result.size != source.size else FILTER_RESIZED
