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


@pytest.mark.parametrize("change", ["replace_all", "set_image"])
def test_a_stroke_under_way_when_the_picture_is_replaced_is_recorded_on_its_own_mask(change):
    doc = Document()
    doc.set_image(Image.new("RGB", (64, 48), (1, 2, 3)), "Open")
    doc.begin_stroke("Paint mask")
    doc.stroke(lambda m: (m.__setitem__((slice(30, 40), slice(40, 60)), 255), (40, 30, 60, 40))[1])
    picture = Image.new("RGB", (32, 24), (200, 0, 0))
    if change == "replace_all":
        doc.replace_all("Restore", picture, new_mask(32, 24))
    else:
        doc.set_image(picture, "Restore")
    assert doc.in_stroke  # the brush is still down: it goes on painting the new mask
    doc.stroke(lambda m: (m.__setitem__((slice(0, 4), slice(0, 4)), 255), (0, 0, 4, 4))[1])
    doc.end_stroke()
    assert doc.history_labels() == ["Open", "Paint mask", "Restore", "Paint mask"]
    doc.undo()
    assert doc.size == (32, 24) and not doc.mask.any()
    doc.undo()
    assert doc.size == (64, 48) and doc.mask[30:40, 40:60].all()
    doc.undo()
    assert doc.size == (64, 48) and not doc.mask.any()
    while doc.redo():
        pass
    assert doc.size == (32, 24) and doc.mask[0:4, 0:4].all() and doc.mask.sum() == 16 * 255


@pytest.mark.parametrize("whole", [False, True])
def test_listeners_told_of_an_undo_or_redo_see_the_history_where_it_now_is(whole: bool):
    """The window enables Undo and Redo from can_undo()/can_redo() as it hears of a change: told before the
    position moved, it left Redo disabled after an undo (Ctrl+Z then Ctrl+Y at once redid nothing)."""
    doc = painted()
    if whole:
        doc.replace_all("Extend", Image.new("RGB", (40, 24)), new_mask(40, 24))
    seen: list[tuple[int, bool, bool]] = []
    doc.add_listener(lambda change: seen.append((doc.history_position, doc.can_undo(), doc.can_redo())))
    steps = doc.history_position
    doc.undo()
    doc.redo()
    assert seen == [(steps - 1, True, True), (steps, True, False)]
    doc.go_to(0)  # a jump tells once it is over
    assert seen[2:] and all(told == (0, False, True) for told in seen[2:])


class _CountedMask(np.ndarray):
    """A mask that counts the writes and copies of all of it (16 MB each at 4096x4096)."""

    whole_writes = 0

    def __setitem__(self, key, value) -> None:  # noqa: ANN001
        if np.shape(value) == self.shape or key is Ellipsis:
            _CountedMask.whole_writes += 1
        super().__setitem__(key, value)

    def copy(self, order: str = "C") -> np.ndarray:
        _CountedMask.whole_writes += 1
        return super().copy(order)


def test_a_jump_over_changes_of_all_of_the_mask_writes_the_mask_at_most_once_and_lands_exactly():
    """Going back over invert, a brush dab and clear puts each step's mask back exactly, but writes all of the mask
    at most once, not once per step (at 4096x4096 each write held the window's thread 2-3 ms): the history's
    records are taken back as they are."""
    doc = painted()
    doc.mask = doc.mask.view(_CountedMask)  # edited in place from here on: every write goes through it
    states = [doc.mask.copy()]  # at each position from 2 on
    doc.apply_mask_change("Invert", _change(doc, 255 - doc.mask))
    states.append(doc.mask.copy())
    doc.edit_mask("Brush", lambda m: (m.__setitem__((slice(10, 14), slice(1, 5)), 7), (1, 10, 5, 14))[1])
    states.append(doc.mask.copy())
    doc.apply_mask_change("Clear", _change(doc, new_mask(32, 24)))
    doc.apply_mask_change("Invert", _change(doc, 255 - doc.mask))
    states += [new_mask(32, 24), doc.mask.copy()]
    seen = []
    doc.add_listener(lambda change: seen.append(np.array(doc.mask)))
    _CountedMask.whole_writes = 0
    doc.go_to(4)  # back over the last invert and the clear, to just after the brush
    assert np.array_equal(doc.mask, states[2]) and _CountedMask.whole_writes <= 1
    assert all(np.array_equal(told, states[2]) for told in seen)  # listeners hear of it with the mask in place
    _CountedMask.whole_writes = 0
    doc.go_to(2)  # back over the brush (part of the mask) and the first invert
    assert np.array_equal(doc.mask, states[0]) and _CountedMask.whole_writes <= 1
    doc.go_to(6)
    assert np.array_equal(doc.mask, states[4])
    for position in (5, 4, 3, 2):
        doc.undo()
        assert np.array_equal(doc.mask, states[position - 2])


def _change(doc: Document, new: np.ndarray):  # noqa: ANN202
    from studio.core.comparison import mask_change

    return mask_change(doc.revision, doc.mask, np.ascontiguousarray(new, dtype=np.uint8))


def test_a_change_of_all_of_the_mask_takes_the_new_mask_as_it_is_and_the_next_edit_copies_it():
    """Invert, clear or grow wrote all of the mask on the window's thread (3-6 ms at 4096x4096), though the step keeps
    the new mask itself as its record: the document takes that record as its mask, read-only, as an undo does, and
    the first edit after copies it, leaving the history's record as it was."""
    doc = painted()
    doc.mask = doc.mask.view(_CountedMask)  # edited in place until the change: a write of all of it is counted
    before = doc.mask.copy()
    inverted = _change(doc, 255 - doc.mask)  # in a worker thread, in the window
    _CountedMask.whole_writes = 0
    doc.apply_mask_change("Invert", inverted)
    assert doc.mask is inverted.mask and not doc.mask.flags.writeable and _CountedMask.whole_writes == 0
    assert doc.has_mask and np.array_equal(doc.mask, 255 - before)
    erase = (1, 10, 5, 14)
    doc.edit_mask("Erase", lambda m: (m.__setitem__((slice(10, 14), slice(1, 5)), 0), erase)[1])
    assert doc.mask is not inverted.mask and doc.mask.flags.writeable and not doc.mask[10:14, 1:5].any()
    assert np.array_equal(inverted.mask, 255 - before)  # the history's record: the edit went into a copy
    erased = doc.mask.copy()
    cleared = _change(doc, new_mask(32, 24))
    doc.apply_mask_change("Clear", cleared)
    assert doc.mask is cleared.mask and not doc.has_mask
    doc.undo()
    assert np.array_equal(doc.mask, erased) and doc.has_mask
    doc.undo()
    assert np.array_equal(doc.mask, 255 - before)  # exactly the state before the edit
    doc.undo()
    assert np.array_equal(doc.mask, before) and doc.has_mask
    doc.go_to(5)  # over the erase again, to the clear
    assert doc.mask is cleared.mask and not doc.has_mask


def test_a_jump_over_a_new_size_and_a_change_of_all_of_its_mask_writes_the_mask_at_most_once():
    doc = painted()
    doc.mask = doc.mask.view(_CountedMask)
    before = doc.mask.copy()
    doc.replace_all("Extend", Image.new("RGB", (40, 24)), new_mask(40, 24).view(_CountedMask))
    doc.apply_mask_change("Invert", _change(doc, 255 - doc.mask))
    inverted = doc.mask.copy()
    _CountedMask.whole_writes = 0
    doc.go_to(2)
    assert np.array_equal(doc.mask, before) and _CountedMask.whole_writes <= 1
    _CountedMask.whole_writes = 0
    doc.go_to(4)
    assert np.array_equal(doc.mask, inverted) and _CountedMask.whole_writes <= 1
    doc.undo()
    assert doc.size == (40, 24) and not doc.mask.any()


def test_a_stroke_recorded_within_held_changes_redraws_only_what_changed():
    """A stroke ended inside changes_held (its pixels shown already) grows the history only: the held changes merge
    into the picture's box, not a redraw of everything (100-130 ms of tinting the whole mask at 4096²)."""
    from studio.core.mask import fill_rect

    doc = Document()
    doc.set_image(Image.new("RGB", (64, 64)), "Open")
    seen = []
    doc.add_listener(lambda change: seen.append(change))
    doc.begin_stroke("Brush")
    doc.stroke(lambda mask: fill_rect(mask, (1, 1, 5, 5)))
    seen.clear()
    with doc.changes_held():
        doc.end_stroke()
        doc.set_image(Image.new("RGB", (64, 64), "red").crop((0, 0, 64, 64)), "Result")
    assert [(c.box is None, c.size) for c in seen] == [(False, False)] and seen[0].image
    seen.clear()
    with doc.changes_held():
        doc.begin_stroke("Brush")
        doc.stroke(lambda mask: fill_rect(mask, (8, 8, 9, 9)))
        doc.end_stroke()
    assert [(c.box, c.image, c.mask) for c in seen] == [((8, 8, 9, 9), False, True)]
    seen.clear()
    doc.begin_stroke("Brush")
    doc.stroke(lambda mask: fill_rect(mask, (20, 20, 22, 22)))
    seen.clear()
    with doc.changes_held():
        doc.end_stroke()  # only the history grew: listeners still hear of it
    assert [(c.box, c.image, c.mask, c.size) for c in seen] == [(None, False, False, False)]


def test_undo_and_redo_name_a_generated_step_by_how_it_was_made_its_prompt_and_seed():
    from dataclasses import replace

    from studio.core.document_steps import GENERATED
    from studio.core.metadata import Recipe

    doc = painted()
    assert (doc.undo_description(), doc.redo_description()) == ("Paint mask", "")
    made = Recipe("a red fox in the snow at dawn, oil painting", "", 4, "Euler", 7, 42, 32, 24, "tiny-sd")
    doc.set_image(Image.new("RGB", (32, 24), (9, 9, 9)), GENERATED, made)
    doc.set_image(Image.new("RGB", (32, 24), (8, 8, 8)), GENERATED, replace(made, prompt="  a  fox ", seed=7,
                                                                              strength=0.5, mask_blur=4))
    doc.set_image(Image.new("RGB", (32, 24), (7, 7, 7)), GENERATED, replace(made, prompt="", seed=8, strength=0.6))
    doc.set_image(Image.new("RGB", (32, 24), (6, 6, 6)), "Filter: Invert colours", made)
    named = []
    while doc.can_undo():
        named.append(doc.undo_description())
        doc.undo()
    assert named == ["Invert colours filter", "Img2img (seed 8)", "Inpainted 'a fox' (seed 7)",
                     "Generated 'a red fox in the snow at…' (seed 42)", "Paint mask", "Open"]
    assert doc.redo_description() == "Open" and doc.history_labels()[2] == GENERATED  # the list keeps its labels


def test_an_extend_canvas_fill_is_named_as_filling_the_border_not_as_an_inpaint():
    from studio.core.document_steps import OUTPAINTED
    from studio.core.metadata import Recipe

    doc = painted()
    made = Recipe("a house by a lake", "", 4, "Euler", 7, 42, 32, 24, "tiny-sd", strength=0.75, mask_blur=8)
    doc.set_image(Image.new("RGB", (32, 24), (9, 9, 9)), OUTPAINTED, made)
    assert doc.undo_description() == "Filled the extended border 'a house by a lake' (seed 42)"
    assert doc.history_descriptions()[-1] == doc.undo_description()


def _small_dab(mask: np.ndarray, x: int) -> tuple[int, int, int, int]:
    mask[10:12, x:x + 2] = 255
    return (x, 10, x + 2, 12)


def test_history_revision_rises_when_the_steps_or_the_position_change_and_not_on_a_dab():
    """The history list and the Undo/Redo words are redone only when it rises: never on a brush's dab (hundreds a
    stroke), always on a new step, an undo, a redo or a click in the list."""
    doc = painted()
    revisions = [doc.history_revision]
    assert revisions[-1] > 0  # two steps pushed
    doc.begin_stroke("Paint mask")
    for dx in range(3):
        doc.stroke(lambda mask, dx=dx: _small_dab(mask, dx))
        assert doc.history_revision == revisions[-1]  # a dab: no new step yet
    doc.end_stroke()
    assert doc.history_revision > revisions[-1]  # the stroke is a step
    revisions.append(doc.history_revision)
    doc.mark_saved()
    assert doc.history_revision == revisions[-1]  # saved: the same steps at the same place
    doc.undo()
    assert doc.history_revision > revisions[-1]
    revisions.append(doc.history_revision)
    doc.redo()
    assert doc.history_revision > revisions[-1]
    revisions.append(doc.history_revision)
    doc.go_to(0)
    assert doc.history_revision > revisions[-1] and doc.history_position == 0
    revisions.append(doc.history_revision)
    doc.go_to(0)  # already there
    assert doc.history_revision == revisions[-1]
    doc.edit_mask("Paint mask", dab)  # a new step where undone ones were
    assert doc.history_revision > revisions[-1]
