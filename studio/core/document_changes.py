"""What a document's listeners hear: the box and layers a change touched, and many changes merged into the fewest
that redraw the same."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from studio.core.mask import Box, union_box

Listener = Callable[["DocumentChange"], None]


@dataclass(frozen=True)
class DocumentChange:
    """What a listener must redraw: the box (None = everything) and which layers.

    With neither image nor mask set, only the history changed (a stroke was recorded). ``mask_edited``: a whole
    change, held (a history jump), before which the mask a listener was shown had been edited in place unheard of:
    what the listener drew of that mask no longer matches it. ``mask_source``: an array that no one edits, equal to
    the whole mask right after this change (the history's record of it), when the document knows one: a view that
    kept what it drew of that very array swaps it back without comparing 16 MB masks (5-10 ms at 4096x4096)."""

    box: Box | None
    image: bool
    mask: bool
    size: bool = False
    mask_edited: bool = False
    mask_source: np.ndarray | None = field(default=None, compare=False, repr=False)


def merged_changes(changes: list[DocumentChange]) -> list[DocumentChange]:
    """The fewest changes that redraw everything the given ones did: the whole document if any step was whole,
    else one box around every picture change and one around every mask change (a mask inverted on a big canvas
    must not make the canvas convert the whole picture again)."""
    # A stroke recorded (no box, no layer) only grew the history: it is no reason to redraw everything.
    whole = next((i for i, c in enumerate(changes) if c.box is None and (c.image or c.mask)), None)
    # The mask ends as the last change to it left it: equal to that change's source, if it had one.
    source = next((c.mask_source for c in reversed(changes) if c.mask), None)
    if whole is not None:
        # Mask edits before the first whole change went into the mask listeners were shown; later ones into its
        # replacement, which they have not seen yet.
        edited = any(c.mask and c.box is not None for c in changes[:whole])
        return [DocumentChange(None, True, True, size=True, mask_edited=edited, mask_source=source)]
    image_box = functools.reduce(union_box, (c.box for c in changes if c.image), None)
    mask_box = functools.reduce(union_box, (c.box for c in changes if c.mask), None)
    merged = ([DocumentChange(image_box, True, False)] if image_box else []) + \
        ([DocumentChange(mask_box, False, True, mask_source=source)] if mask_box else [])
    return merged or ([DocumentChange(None, False, False)] if changes else [])  # the history grew, if only that
