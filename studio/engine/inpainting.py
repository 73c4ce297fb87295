"""Planning an inpaint job around the model: where it works, at what size, and how the result goes back.

Pure numpy/Pillow on top of ``studio.core.inpaint`` (no torch), so every geometric decision is
testable without a pipeline. ``diffusion.py`` runs the model between ``start_picture`` and ``finish``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.images import flatten
from studio.core.inpaint import (
    InpaintOptions,
    fill_masked,
    inpaint_area,
    paste_back,
)
from studio.core.mask import Box, feather

def cell_mask(mask: np.ndarray, cell: int) -> np.ndarray:
    """Every latent cell (cell x cell pixels) that any masked pixel touches, fully white; the rest black.

    The pipeline samples the mask once per latent cell; without this, strokes thinner than a cell
    (or a cell's masked corner) could be skipped, and the feathered blend would show no new pixels.
    """
    h, w = mask.shape
    cells = (mask.reshape(h // cell, cell, w // cell, cell) > 0).any(axis=(1, 3))
    return np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1).astype(np.uint8) * 255


@dataclass
class InpaintPlan:
    """One inpaint job, decided before the model runs."""

    original: Image.Image  # the picture's own size (RGBA where it has transparency): what the result goes into
    mask: np.ndarray  # the picture's own size, 255 = regenerate
    options: InpaintOptions
    box: Box  # the region the model works on, in picture pixels
    work_size: tuple[int, int]  # the size the model works at
    work_image: Image.Image  # the box's pixels at work_size (before the fill)
    work_mask: np.ndarray  # the mask over the box at work_size (soft)
    model_mask: Image.Image  # what the pipeline gets: whole latent cells, "L"
    _blend_mask: np.ndarray | None = field(default=None, repr=False)

    @property
    def blend_mask(self) -> np.ndarray:
        """The feathered mask the result is blended with: 0 = the original pixel, bit for bit."""
        if self._blend_mask is None:
            self._blend_mask = feather(self.mask, self.options.feather)
        return self._blend_mask

    @property
    def area_name(self) -> str:
        return "Only masked" if self.options.masked_only else "Whole picture"

    def start_picture(self, seed: int) -> Image.Image:
        """What the pipeline starts from: the box's pixels with the masked part filled as asked."""
        return fill_masked(self.work_image, self.work_mask, self.options.fill, seed)

    def finish(self, generated: Image.Image) -> Image.Image:
        """The full picture: generated pixels blended in under the feathered mask, the rest untouched."""
        return paste_back(self.original, generated, self.box, self.mask, self.options.feather)

    def previewer(self) -> RegionPreview:
        return RegionPreview(self)


def plan_inpaint(image: Image.Image, mask: Image.Image, options: InpaintOptions, native: int,
                 cell: int = 8) -> InpaintPlan:
    """Decide the working region and size for inpainting ``image`` under ``mask`` (same size, "L"): where and at
    what size, ``inpaint_area`` says."""
    # The model sees the picture on white; the result goes into the picture as it was, transparency and all.
    original = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA" if "A" in image.getbands() else "RGB")
    if mask.size != original.size:
        raise InvalidRequest(f"The mask is {mask.width}x{mask.height} but the picture is "
                             f"{original.width}x{original.height}; they must be the same size.")
    mask_array = np.asarray(mask.convert("L"), dtype=np.uint8)
    area = inpaint_area(mask_array, options, native, cell)
    if area is None:
        raise InvalidRequest("The mask is empty; paint the area to regenerate first.")
    box, work = area
    crop = flatten(original.crop(box))
    work_image = crop if crop.size == work else crop.resize(work, Image.Resampling.LANCZOS)
    mask_crop = Image.fromarray(mask_array).crop(box)
    if mask_crop.size != work:
        mask_crop = mask_crop.resize(work, Image.Resampling.BILINEAR)
    work_mask = np.asarray(mask_crop, dtype=np.uint8)
    model_mask = Image.fromarray(cell_mask(work_mask, cell), "L")
    return InpaintPlan(original, mask_array, options, box, work, work_image, work_mask, model_mask)


class RegionPreview:
    """Live previews of the region being inpainted, to lay over the picture at ``box``.

    The latents' colours show where the (feathered) mask lets the result show; elsewhere the preview
    is transparent, so the picture itself stays visible around the stroke at full resolution.
    """

    def __init__(self, plan: InpaintPlan) -> None:
        self.box = plan.box
        self._mask = Image.fromarray(plan.blend_mask, "L").crop(plan.box)
        self._alpha: Image.Image | None = None

    def __call__(self, latent_preview: Image.Image) -> Image.Image:
        if self._alpha is None or self._alpha.size != latent_preview.size:
            self._alpha = self._mask.resize(latent_preview.size, Image.Resampling.BILINEAR)
        preview = latent_preview.convert("RGB")
        preview.putalpha(self._alpha)
        return preview
