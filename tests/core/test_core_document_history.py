"""Undo and redo keep the history list and the document in agreement, also when a step cannot be restored."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.core.document import Document
from studio.core.mask import new_mask


def dab(mask: np.ndarray) -> tuple[int, int, int, int]:
    mask[2:6, 3:9] = 255
    return (3, 2, 9, 6)


def painted() -> Document:
    doc = Document()
    doc.set_image(Image.new("RGB", (32, 24), (1, 2, 3)), "Open")
    doc.edit_mask("Paint mask", dab)
    return doc


def test_an_undo_that_fails_leaves_the_step_done():
    doc = painted()
    # A mask that no longer fits the step (as a stroke recorded across a change of size left it).
    doc.image, doc.mask = Image.new("RGB", (4, 4)), new_mask(4, 4)
    with pytest.raises(ValueError):
        doc.undo()
    assert doc.history_position == 2 and doc.can_redo() is False
    assert doc.size == (4, 4) and not doc.mask.any()  # nothing was half restored


def test_a_redo_that_fails_leaves_the_step_undone():
    doc = painted()
    doc.undo()
    doc.image, doc.mask = Image.new("RGB", (4, 4)), new_mask(4, 4)
    with pytest.raises(ValueError):
        doc.redo()
    assert doc.history_position == 1 and doc.can_redo()
    assert doc.size == (4, 4) and not doc.mask.any()


def test_undo_and_redo_still_move_one_step_each():
    doc = painted()
    assert doc.undo() and doc.history_position == 1 and not doc.mask.any()
    assert doc.redo() and doc.history_position == 2 and doc.mask[2:6, 3:9].all()
