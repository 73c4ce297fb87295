"""Document.has_mask is kept as the mask changes, never scanned for where a change could tell, and never drifts
from the mask itself over any sequence of edits, history moves and new pictures."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from studio.core.comparison import mask_change
from studio.core.document import Document
from studio.core.inpaint import extend_canvas
from studio.core.mask import fill_rect, grow, invert, stroke_segment

Operation = Callable[[Document, np.random.Generator], None]


def _point(doc: Document, rng: np.random.Generator) -> tuple[float, float]:
    width, height = doc.size
    return float(rng.uniform(-4, width + 4)), float(rng.uniform(-4, height + 4))


def _stroke(erase: bool) -> Operation:
    def stroke(doc: Document, rng: np.random.Generator) -> None:
        doc.begin_stroke("Eraser" if erase else "Brush")
        for _ in range(int(rng.integers(1, 4))):
            size = float(rng.choice([1.5, 6.0, 20.0, 200.0]))  # 200: an eraser that may clear all of it
            a, b = _point(doc, rng), _point(doc, rng)
            doc.stroke(lambda mask: stroke_segment(mask, a, b, size, float(rng.uniform(0.2, 1.0)), erase=erase))
        doc.end_stroke()
    return stroke


def _rectangle(doc: Document, rng: np.random.Generator) -> None:
    box = (*_point(doc, rng), *_point(doc, rng))
    erase = bool(rng.integers(2))
    doc.edit_mask("Rectangle", lambda mask: fill_rect(mask, box, erase=erase))


def _worked_out_ahead(label: str, make: Callable[[np.ndarray], np.ndarray]) -> Operation:
    """A change of all of the mask as the window makes it: worked out ahead, then set (compared again, through
    set_mask, when the mask changed meanwhile)."""
    def change(doc: Document, rng: np.random.Generator) -> None:
        ahead = mask_change(doc.revision, doc.mask, np.ascontiguousarray(make(doc.mask), dtype=np.uint8))
        if rng.integers(4) == 0:
            doc.edit_mask("Dab", lambda mask: fill_rect(mask, (0, 0, 2, 2)))  # painted on meanwhile
        doc.apply_mask_change(label, ahead)
    return change


def _loaded_mask(doc: Document, rng: np.random.Generator) -> None:
    height, width = doc.mask.shape
    mask = np.where(rng.random((height, width)) < rng.choice([0.0, 0.01, 0.5]), 255, 0).astype(np.uint8)
    doc.set_mask("Open mask", mask)


def _extend(doc: Document, rng: np.random.Generator) -> None:
    amounts = [int(rng.choice([0, 0, 3, 8])) for _ in range(4)]
    if not any(amounts):
        amounts[2] = 5
    image, mask = extend_canvas(doc.image, doc.mask.copy(), *amounts)
    told = bool(mask.any()) if rng.integers(2) else None  # as the window finds it ahead, or not told
    doc.replace_all("Extend", image, mask, doc.recipe, record=mask.copy(), masked=told)


def _crop_or_scale(doc: Document, rng: np.random.Generator) -> None:
    width, height = doc.size
    if rng.integers(2) and width > 8 and height > 8:
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        box = (x0, y0, int(rng.integers(x0 + 4, width + 1)), int(rng.integers(y0 + 4, height + 1)))
        image, mask = doc.image.crop(box), doc.mask[box[1]:box[3], box[0]:box[2]].copy()
    else:
        size = (max(4, int(width * rng.choice([0.5, 1.5]))), max(4, int(height * rng.choice([0.5, 1.5]))))
        image = doc.image.resize(size)
        mask = np.asarray(Image.fromarray(doc.mask, "L").resize(size, Image.Resampling.BILINEAR)).copy()
    doc.replace_all("Crop or scale", image, mask)


def _paste(doc: Document, rng: np.random.Generator) -> None:
    width, height = doc.size
    kind = int(rng.integers(3))
    if kind == 0:  # a result of the same size: the mask stays
        picture = doc.image.copy()
        picture.paste((int(rng.integers(256)), 0, 0), (0, 0, max(1, width // 3), max(1, height // 3)))
    elif kind == 1:  # another size: a new, empty mask
        picture = Image.new("RGB", (int(rng.integers(8, 40)), int(rng.integers(8, 40))))
    else:  # the same size in another mode: the mask is kept, copied
        picture = Image.new("RGBA" if doc.image.mode == "RGB" else "RGB", (width, height))
    doc.set_image(picture, "Paste")


def _restored(doc: Document, rng: np.random.Generator) -> None:
    """A picture and mask from elsewhere (an inpaint source restored, an autosave after a crash)."""
    width, height = int(rng.integers(8, 40)), int(rng.integers(8, 40))
    mask = np.zeros((height, width), dtype=np.uint8)
    if rng.integers(2):
        mask[int(rng.integers(height)), int(rng.integers(width))] = 255
    doc.replace_all("Restore", Image.new("RGB", (width, height)), mask)


def _undo(doc: Document, rng: np.random.Generator) -> None:
    if doc.history_position > 1:  # the first picture stays: the canvas is never emptied
        doc.undo()


def _redo(doc: Document, rng: np.random.Generator) -> None:
    doc.redo()


def _jump(doc: Document, rng: np.random.Generator) -> None:
    doc.go_to(int(rng.integers(1, len(doc.history_labels()) + 1)))


def _within_a_stroke(doc: Document, rng: np.random.Generator) -> None:
    """Changes of the mask the window never makes while the brush is down (it waits for the brush to be let go), but
    the document allows: undoing the stroke then puts back what was there before both."""
    doc.begin_stroke("Brush")
    a, b = _point(doc, rng), _point(doc, rng)
    doc.stroke(lambda mask: stroke_segment(mask, a, b, 10.0))
    rng.choice([_rectangle, _worked_out_ahead("Invert", invert), _loaded_mask])(doc, rng)
    doc.stroke(lambda mask: stroke_segment(mask, b, a, 4.0, erase=bool(rng.integers(2))))
    doc.end_stroke()


def _held(doc: Document, rng: np.random.Generator) -> None:
    """Several changes heard of at once (a history jump, results landing together)."""
    with doc.changes_held():
        for _ in range(int(rng.integers(1, 4))):
            rng.choice(OPERATIONS[:-1])(doc, rng)


OPERATIONS: list[Operation] = [
    _stroke(erase=False), _stroke(erase=False), _stroke(erase=True), _stroke(erase=True), _rectangle,
    _worked_out_ahead("Invert", invert), _worked_out_ahead("Clear", np.zeros_like),
    _worked_out_ahead("Grow", lambda mask: grow(mask, 2)), _worked_out_ahead("Shrink", lambda mask: grow(mask, -2)),
    _loaded_mask, _extend, _crop_or_scale, _paste, _restored, _undo, _undo, _redo, _redo, _jump, _within_a_stroke,
    _held,  # last: not nested in itself
]


@pytest.mark.parametrize("seed", range(60))
def test_has_mask_agrees_with_the_mask_after_every_change_of_any_sequence(seed: int) -> None:
    rng = np.random.default_rng(seed)
    doc = Document()
    doc.set_image(Image.new("RGB", (int(rng.integers(8, 48)), int(rng.integers(8, 48)))), "Open")
    done = []
    for _ in range(60):
        operation = rng.choice(OPERATIONS)
        operation(doc, rng)
        done.append(operation.__name__)
        assert doc.has_mask == bool(doc.mask.any()), f"has_mask drifted after {done}"


class _Scanned(np.ndarray):
    """A mask that notes the size of every part of it scanned for a masked pixel."""

    scanned: list[int] = []

    def any(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        _Scanned.scanned.append(self.size)
        return super().any(*args, **kwargs)


def test_has_mask_is_known_without_scanning_all_of_the_mask_where_the_change_tells() -> None:
    """At 4096x4096 each scan held the window's thread 3-5 ms after every edit."""
    doc = Document()
    doc.set_image(Image.new("RGB", (64, 48)), "Open")
    doc.mask = doc.mask.view(_Scanned)  # set from outside: found once, when asked
    assert not doc.has_mask and _Scanned.scanned == [64 * 48]
    _Scanned.scanned = []
    doc.begin_stroke("Brush")
    doc.stroke(lambda mask: stroke_segment(mask, (10, 10), (20, 12), 6.0))  # its box alone is looked at
    doc.end_stroke()
    assert doc.has_mask
    inverted = mask_change(doc.revision, doc.mask, np.asarray(invert(doc.mask)).view(np.ndarray))
    doc.apply_mask_change("Invert", inverted)  # found with the change, in a worker thread in the window
    assert doc.has_mask
    doc.apply_mask_change("Clear", mask_change(doc.revision, doc.mask, np.zeros((48, 64), dtype=np.uint8)))
    assert not doc.has_mask
    image, mask = extend_canvas(doc.image, np.asarray(doc.mask).copy(), 0, 0, 8, 0)
    doc.replace_all("Extend", image, mask.view(_Scanned), record=mask.copy(), masked=True)
    assert doc.has_mask
    for masked in (False, True, True, False):  # undone: the extend, the clear, the invert, the brush
        doc.undo()
        assert doc.has_mask == masked
    doc.go_to(5)
    assert doc.has_mask
    doc.go_to(3)
    assert doc.has_mask
    assert max(_Scanned.scanned, default=0) < 64 * 48  # no scan of all of it


def test_an_undo_of_a_change_of_all_of_the_mask_takes_the_record_back_and_the_next_edit_copies_it() -> None:
    """At 4096x4096 copying the mask on undo or redo held the window's thread 3-50 ms (most of it the new memory's
    first touch); the record, read-only, is the mask until it is edited."""
    doc = Document()
    doc.set_image(Image.new("RGB", (32, 24)), "Open")
    doc.edit_mask("Brush", lambda mask: fill_rect(mask, (2, 2, 9, 7)))
    painted = doc.mask.copy()
    image, mask = extend_canvas(doc.image, doc.mask.copy(), 0, 0, 8, 0)
    record = mask.copy()
    doc.replace_all("Extend", image, mask, record=record, masked=True)
    doc.undo()
    undone = doc.mask
    assert np.array_equal(undone, painted) and not undone.flags.writeable
    doc.redo()
    assert doc.mask is record and not record.flags.writeable
    doc.edit_mask("Dab", lambda m: fill_rect(m, (1, 15, 3, 17)))
    assert doc.mask is not record and doc.mask.flags.writeable and doc.mask[16, 2] == 255
    assert record[16, 2] == 0  # the record stays as it was: undo and redo land exactly
    doc.undo()
    assert np.array_equal(doc.mask, record)
    doc.undo()
    assert np.array_equal(doc.mask, painted) and doc.mask is undone
