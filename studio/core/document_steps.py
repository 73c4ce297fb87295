"""The document's undo history: each step records only the region it touched, and the history forgets its oldest
steps past a memory budget and lets far steps drop the whole pictures they hold."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from studio.core.mask import Box
from studio.core.metadata import Recipe

HISTORY_BYTES = 768 * 2**20  # oldest steps are forgotten beyond this
KEPT_STEPS = 2  # ... but never the last ones
KEPT_PICTURES_BYTES = 192 * 2**20  # whole pictures kept by the steps nearest the position (three 4096x4096 ones)
GENERATED = "Generated"  # the label of a generated picture's step; describe() names it by its recipe
OUTPAINTED = "Outpainted"  # ... and of an Extend Canvas fill's, named as filling the border
FILTER = "Filter: "  # the start of a filter's step label ("Filter: Invert colours")
PROMPT_CHARS = 24  # of the prompt, in the name of a generated step: the Edit menu stays narrow


@dataclass
class HistoryStep:
    label: str
    box: Box | None  # None: whole document (size may differ between before and after)
    image_before: Image.Image | None = None
    image_after: Image.Image | None = None
    mask_before: np.ndarray | None = None
    mask_after: np.ndarray | None = None
    recipe_before: Recipe | None = None
    recipe_after: Recipe | None = None
    # A step of part of the picture may also hold the whole pictures before and after it (the very objects, never
    # copies), while it is among the nearest to the position (trim_whole_pictures): undoing or redoing it is then
    # a swap, where copying a 4096x4096 picture to paste the part back held the window 45-130 ms.
    whole_before: Image.Image | None = None
    whole_after: Image.Image | None = None
    # Whether any pixel of the whole mask was masked before and after the step (None: not known).
    masked_before: bool | None = None
    masked_after: bool | None = None
    kept: bool = False  # the document as this step leaves it is kept elsewhere (a file, the outputs folder)
    nbytes: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        sizes = [a.nbytes for a in (self.mask_before, self.mask_after) if a is not None]
        sizes += [len(i.getbands()) * i.width * i.height for i in (self.image_before, self.image_after) if i]
        self.nbytes = sum(sizes)
        for mask in (self.mask_before, self.mask_after):
            if mask is not None:
                mask.flags.writeable = False  # a record is never edited: the document may take it back as its mask


def describe(step: HistoryStep) -> str:
    """The step as Undo and Redo name it: a generated picture by how it was made, its prompt's start and its seed
    ("Inpainted 'a red fox in the snow at…' (seed 42)", "Filled the extended border 'a lake…' (seed 7)"), a filter
    by its name, any other step by its label."""
    recipe = step.recipe_after
    if step.label in (GENERATED, OUTPAINTED) and recipe is not None:
        how = ("Filled the extended border" if step.label == OUTPAINTED else "Inpainted"
               if recipe.mask_blur is not None else "Img2img" if recipe.strength is not None else "Generated")
        prompt = " ".join(recipe.prompt.split())
        if len(prompt) > PROMPT_CHARS:
            prompt = prompt[:PROMPT_CHARS].rstrip() + "…"
        return f"{how} " + (f"'{prompt}' " if prompt else "") + f"(seed {recipe.seed})"
    if step.label.startswith(FILTER):
        return f"{step.label[len(FILTER):]} filter"
    return step.label


def forget_oldest(steps: list[HistoryStep]) -> None:
    """Forget the oldest steps while the history weighs more than HISTORY_BYTES. The last two changes stay whatever
    they weigh: a scale to 16384² (1 GB) must still be undoable after the stroke that follows it."""
    total = sum(s.nbytes for s in steps)
    while len(steps) > KEPT_STEPS and total > HISTORY_BYTES:
        total -= steps.pop(0).nbytes


def trim_whole_pictures(steps: list[HistoryStep], position: int, shown: Image.Image | None) -> None:
    """Whole pictures stay held by the steps nearest ``position``, up to KEPT_PICTURES_BYTES besides the picture
    ``shown``; farther steps keep only their parts."""
    held, budget = {id(shown)}, KEPT_PICTURES_BYTES
    for index in sorted(range(len(steps)), key=lambda i: abs(i + 0.5 - position)):
        step = steps[index]
        for name in ("whole_before", "whole_after"):
            picture = getattr(step, name)
            if picture is None or id(picture) in held:
                continue
            cost = picture.width * picture.height * 4  # Pillow keeps RGB in four bytes a pixel as RGBA
            if cost > budget:
                setattr(step, name, None)
            else:
                budget -= cost
                held.add(id(picture))
