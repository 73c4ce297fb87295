"""The document records what a new picture changed (for the canvas to redraw and for undo), exactly and cheaply."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest
from PIL import Image

from studio.core.document import Document
from studio.core.document_changes import DocumentChange
from studio.core.mask import fill_rect
from test_core_comparison import edited, every_difference


def changes_of(document: Document) -> list[DocumentChange]:
    seen: list[DocumentChange] = []
    document.add_listener(lambda change: seen.append(change))
    return seen


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("kind", ["colour", "alpha", "corner"])
def test_the_recorded_box_is_exactly_where_the_new_picture_differs(mode: str, kind: str) -> None:
    rng = np.random.default_rng(7)
    channels = len(mode)
    for _ in range(25):
        before = rng.integers(0, 256, (23, 37, channels), dtype=np.uint8)
        after = edited(before, rng, kind if channels == 4 or kind != "alpha" else "colour")
        document = Document()
        document.set_image(Image.fromarray(before, mode), "Open")
        seen = changes_of(document)
        document.set_image(Image.fromarray(after, mode), "Generated")
        expected = every_difference(Image.fromarray(before, mode), Image.fromarray(after, mode))
        assert seen == [DocumentChange(expected, True, False)]


def test_the_same_picture_again_changes_nothing_and_undo_restores_a_replaced_one() -> None:
    rng = np.random.default_rng(3)
    first = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    second = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    document = Document()
    document.set_image(first, "Open")
    seen = changes_of(document)
    document.set_image(first.copy(), "Open again")
    assert seen == [] and document.history_labels() == ["Open"]
    document.set_image(second, "Generated")
    assert seen == [DocumentChange((0, 0, 64, 48), True, False)]
    region, box = document.before_last_step()
    assert box == (0, 0, 64, 48) and region.tobytes() == first.tobytes()
    assert document.undo() and document.image.tobytes() == first.tobytes()
    assert document.redo() and document.image.tobytes() == second.tobytes()


def test_a_new_1024_picture_is_recorded_in_a_few_milliseconds_on_the_windows_thread() -> None:
    """Each generation's result goes through here on the Qt main thread; comparing every pixel in arrays and
    copying both pictures into the undo step took 25-70 ms at 1024x1024, four frames of a stalled window."""
    rng = np.random.default_rng(1)
    pictures = [Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)) for _ in range(8)]
    document = Document()
    document.set_image(pictures[0], "Generated")
    took = []
    for picture in pictures[1:]:
        started = time.perf_counter()
        document.set_image(picture, "Generated")
        took.append((time.perf_counter() - started) * 1000)
    assert statistics.median(took) < 10, took


def test_a_jump_through_the_history_tells_of_the_picture_and_the_mask_once_each() -> None:
    """A click in the history list walks many steps; the canvas must redraw once, over everything they touched,
    and the picture only where the picture changed."""
    from studio.core.mask import fill_rect

    rng = np.random.default_rng(5)
    pictures = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(2)]
    document = Document()
    document.set_image(Image.fromarray(pictures[0]), "Open")
    region = pictures[0].copy()
    region[5:10, 20:30] = 0
    document.set_image(Image.fromarray(region), "Generated")  # box (20, 5, 30, 10)
    document.edit_mask("Brush", lambda mask: fill_rect(mask, (40, 30, 50, 35)))
    document.edit_mask("Brush", lambda mask: fill_rect(mask, (2, 2, 4, 4)))
    latest = (document.image.tobytes(), document.mask.copy())
    seen = changes_of(document)
    revision = document.revision
    both = [DocumentChange((20, 5, 30, 10), True, False), DocumentChange((2, 2, 50, 35), False, True)]
    document.go_to(1)
    assert seen == both and document.revision > revision
    assert document.image.tobytes() == pictures[0].tobytes() and not document.mask.any()
    document.go_to(4)
    assert seen[2:] == both
    assert document.image.tobytes() == latest[0] and np.array_equal(document.mask, latest[1])
    document.go_to(4)  # where it is already: nothing to redraw
    document.go_to(2)  # back over mask steps only
    assert seen[4:] == [DocumentChange((2, 2, 50, 35), False, True)]

    document.replace_all("Extend", Image.fromarray(pictures[1]), np.zeros((40, 60), np.uint8))
    document.edit_mask("Brush", lambda mask: fill_rect(mask, (0, 0, 8, 8)))
    shown_mask = document.mask
    document.go_to(1)  # back over a whole-document step: everything, size included
    # The brush was undone in the mask a view had drawn before that mask was replaced: the view is told.
    assert seen[-1] == DocumentChange(None, True, True, size=True, mask_edited=True) and len(seen) == 8
    assert not shown_mask.any()
    document.go_to(6)  # forward: the brush is redone in the new mask, which no view has drawn yet
    assert seen[-1] == DocumentChange(None, True, True, size=True, mask_edited=False)
    document.go_to(1)
    document.redo()  # single steps still tell of themselves at once
    assert seen[-1] == DocumentChange((20, 5, 30, 10), True, False)


def test_a_change_found_ahead_is_used_only_against_the_picture_it_was_found_for() -> None:
    """The window compares a result with the canvas picture in a worker thread (30-40 ms at 4096x4096); if the
    document's picture changed before the result is taken in, the document compares again itself."""
    from studio.core.comparison import changed_box

    rng = np.random.default_rng(9)
    first, second, third = (Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)) for _ in range(3))
    document = Document()
    document.set_image(first, "Open")
    seen = changes_of(document)
    document.set_image(second, "Generated", compared=(first, (1, 2, 3, 4)))  # what it is told, it takes
    assert seen[-1] == DocumentChange((1, 2, 3, 4), True, False)
    document.set_image(third, "Generated", compared=(first, (1, 2, 3, 4)))  # found against an older picture
    assert seen[-1] == DocumentChange(changed_box(second, third), True, False)
    document.set_image(third.convert("L"), "Grey", compared=(third, None))  # converted: compared afresh
    assert seen[-1].box == changed_box(third, third.convert("L").convert("RGB"))
    document.set_image(document.image.copy(), "Same", compared=(document.image, None))  # no change, same recipe
    assert len(seen) == 3 and document.history_labels()[-1] == "Grey"


def test_a_comparison_made_ahead_gives_the_step_its_parts_and_undoes_exactly() -> None:
    """compare() also cuts out both pictures' parts in the changed box (5-10 ms of the window's thread for a big
    inpaint at 4096x4096): the step keeps those very parts, if made for the picture it is given."""
    from studio.core.comparison import compare

    rng = np.random.default_rng(4)
    first = Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    array = np.asarray(first).copy()
    array[3:9, 5:20] = 0
    second, third = Image.fromarray(array), Image.fromarray(array).copy()
    document = Document()
    document.set_image(first, "Open")
    ahead = compare(first, second)
    assert ahead.box == (5, 3, 20, 9) and ahead.image is second
    document.set_image(second, "Generated", compared=ahead)
    assert document._steps[-1].image_before is ahead.before and document._steps[-1].image_after is ahead.after
    document.undo()
    document.set_image(third, "Generated", compared=ahead)  # another picture than the one compared: cut here
    assert document._steps[-1].image_after is not ahead.after
    assert document._steps[-1].image_after.tobytes() == ahead.after.tobytes()
    document.undo()
    assert document.image.tobytes() == first.tobytes()
    document.redo()
    assert document.image.tobytes() == second.tobytes()


def test_a_mask_change_worked_out_ahead_is_used_only_against_the_mask_it_was_worked_out_for(monkeypatch) -> None:
    from studio.core import comparison
    from studio.core.comparison import mask_change

    doc = Document()
    doc.set_image(Image.new("RGB", (64, 48)), "Open")
    doc.mask[10:20, 5:25] = 255
    original = doc.mask.copy()
    seen = changes_of(doc)
    inverted = 255 - original
    ahead = mask_change(doc.revision, doc.mask, inverted)  # as a worker thread finds it
    assert ahead.box == (0, 0, 64, 48)

    compared: list[int] = []
    real = comparison.changed_box
    monkeypatch.setattr(comparison, "changed_box", lambda a, b: compared.append(1) or real(a, b))
    doc.apply_mask_change("Invert mask", ahead)
    assert compared == [] and np.array_equal(doc.mask, inverted) and doc.mask is ahead.mask
    assert seen == [DocumentChange((0, 0, 64, 48), False, True)]
    doc.undo()
    assert np.array_equal(doc.mask, original)
    doc.redo()
    assert np.array_equal(doc.mask, inverted)

    stale = mask_change(doc.revision, doc.mask, np.zeros_like(doc.mask))

    def stroke(mask: np.ndarray) -> tuple[int, int, int, int]:
        mask[0:2, 0:2] = 7
        return 0, 0, 2, 2

    doc.edit_mask("Stroke", stroke)  # the mask was edited since
    doc.apply_mask_change("Clear mask", stale)
    assert compared and not doc.has_mask  # compared again, against the mask as it is now
    doc.undo()
    assert doc.mask[0, 0] == 7 and doc.mask[30, 30] == 255


def test_a_mask_change_worked_out_ahead_sees_an_edit_made_within_the_same_hold() -> None:
    """Changes held (a history jump, results landing together) still move the revision on, one by one: a mask change
    worked out before an edit in the same hold is compared again, not pasted in by its stale box."""
    from studio.core.comparison import mask_change

    doc = Document()
    doc.set_image(Image.new("RGB", (64, 48)), "Open")
    doc.edit_mask("Brush", lambda mask: fill_rect(mask, (40, 30, 50, 40)))
    with doc.changes_held():
        cleared = mask_change(doc.revision, doc.mask, np.zeros_like(doc.mask))  # box: the brush's alone
        doc.edit_mask("Dab", lambda mask: fill_rect(mask, (0, 0, 2, 2)))
        doc.apply_mask_change("Clear mask", cleared)
    assert not doc.mask.any() and not doc.has_mask  # the dab is cleared too
    doc.undo()
    assert doc.mask[0, 0] == 255 and doc.mask[35, 45] == 255 and doc.has_mask


def test_history_jumps_never_change_a_picture_anyone_was_given_and_copy_it_at_most_once() -> None:
    """Pictures are never changed in place (the autosave and the canvas hold them); a jump over several picture
    steps pastes them into one copy, and a step that holds the whole picture is taken as it is."""
    rng = np.random.default_rng(9)
    doc = Document()
    doc.set_image(Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)), "Open")
    given = [doc.image]
    for k in range(4):  # four results, each changing a box of the one before
        array = np.asarray(doc.image).copy()
        array[5 * k:5 * k + 20, 10 * k:10 * k + 30] = 40 * k
        doc.set_image(Image.fromarray(array), "Generated")
        given.append(doc.image)
    doc.set_image(Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)), "Generated")  # all of it
    given.append(doc.image)
    snapshots = [g.tobytes() for g in given]

    copies = 0
    real_copy = Image.Image.copy

    def counted(self):  # noqa: ANN001, ANN202
        nonlocal copies
        copies += 1
        return real_copy(self)

    Image.Image.copy = counted
    try:
        doc.go_to(1)  # back over the whole step and three box steps
        assert doc.image.tobytes() == snapshots[0] and copies <= 1
        doc.go_to(5)
        assert doc.image.tobytes() == snapshots[4]
        doc.redo()
        assert doc.image is given[5]  # the whole picture, taken as it is
        doc.undo()
        doc.undo()
    finally:
        Image.Image.copy = real_copy
    assert doc.image.tobytes() == snapshots[3]
    assert [g.tobytes() for g in given] == snapshots  # nobody's picture changed


def test_a_picture_of_the_same_size_in_another_mode_keeps_the_mask_and_undoes_exactly():
    document = Document()
    document.set_image(Image.new("RGB", (32, 24), (9, 9, 9)), "Open")
    document.edit_mask("Paint", lambda m: (m.__setitem__((slice(0, 4), slice(0, 4)), 255), (0, 0, 4, 4))[1])
    see_through = Image.new("RGBA", (32, 24), (1, 2, 3, 0))
    document.set_image(see_through, "Open transparent")
    assert document.image.mode == "RGBA" and document.mask[:4, :4].all() and document.mask.sum() == 16 * 255
    document.undo()
    assert document.image.mode == "RGB" and document.mask.sum() == 16 * 255


def test_a_change_heavier_than_the_whole_history_stays_undoable_after_the_next_one(monkeypatch):
    from studio.core import document_steps as document_module

    monkeypatch.setattr(document_module, "HISTORY_BYTES", 10_000)
    document = Document()
    document.set_image(Image.new("RGB", (16, 16)), "Open")
    document.replace_all("Scale", Image.new("RGB", (128, 128), (5, 5, 5)), np.zeros((128, 128), np.uint8))
    document.edit_mask("Paint", lambda m: (m.__setitem__((slice(0, 4), slice(0, 4)), 255), (0, 0, 4, 4))[1])
    assert document.history_labels() == ["Scale", "Paint"]  # "Open" went: the budget is spent
    assert document.undo() and document.undo()
    assert document.image.size == (16, 16)  # the scale was undone


def test_a_picture_of_a_new_size_records_its_empty_mask_without_copying_it() -> None:
    """Copying the new empty mask for the undo step took the window's thread 6-11 ms at 4096x4096; undo and redo
    make it afresh."""
    document = Document()
    document.set_image(Image.new("RGB", (64, 48)), "Open")
    document.mask[5:10, 5:10] = 255
    document.set_image(Image.new("RGB", (80, 40)), "Open another")
    assert document._steps[-1].mask_after is None and document.mask.shape == (40, 80) and not document.has_mask
    document.mask[1:3, 1:3] = 9
    document.undo()
    assert document.mask.shape == (48, 64) and document.mask[5:10, 5:10].all()
    document.redo()
    assert document.mask.shape == (40, 80) and not document.has_mask


@pytest.mark.parametrize("budget", [3 * 80 * 60 * 4, 0])  # three pictures' worth, or none
def test_undoing_and_redoing_results_of_part_of_the_picture_swaps_pictures_the_steps_hold(budget, monkeypatch):
    """The steps nearest the position hold the whole pictures before and after them: undo and redo of an inpaint
    result (and a jump back over three) swap pictures, where copying a 4096x4096 picture to paste the part back
    held the window 45-130 ms. Past the budget they hold only their parts, and come back exactly all the same."""
    from studio.core import document_steps as document_module

    monkeypatch.setattr(document_module, "KEPT_PICTURES_BYTES", budget)
    rng = np.random.default_rng(3)
    doc = Document()
    doc.set_image(Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)), "Open")
    states = [doc.image.tobytes()]
    for k in range(5):
        array = np.asarray(doc.image).copy()
        array[4 * k:4 * k + 20, 9 * k:9 * k + 30] = 30 * k + 7
        doc.set_image(Image.fromarray(array), "Generated")
        states.append(doc.image.tobytes())
    copies: list[int] = []
    real_copy = Image.Image.copy
    monkeypatch.setattr(Image.Image, "copy", lambda self: copies.append(1) or real_copy(self))
    for move, position in [("undo", 5), ("redo", 6), ("undo", 5), ("undo", 4), ("redo", 5), ("redo", 6)]:
        getattr(doc, move)()
        assert doc.history_position == position and doc.image.tobytes() == states[position - 1]
    doc.go_to(3)  # back over three
    assert doc.image.tobytes() == states[2]
    doc.go_to(6)
    assert doc.image.tobytes() == states[5]
    if budget:
        assert copies == []
        # Three pictures besides the one shown, however long the history.
        held = {id(p) for s in doc._steps for p in (s.whole_before, s.whole_after) if p is not None}
        assert len(held - {id(doc.image)}) <= 3
    else:
        assert copies and all(s.whole_before is None and s.whole_after is None for s in doc._steps)
    doc.go_to(1)
    assert doc.image.tobytes() == states[0]


def test_the_document_knows_whether_it_changed_since_it_was_saved() -> None:
    document = Document()
    assert not document.changed_since_save  # nothing to lose
    document.set_image(Image.new("RGB", (16, 8), "red"), "Open")
    assert document.changed_since_save  # kept nowhere until someone says so
    document.mark_saved()
    assert not document.changed_since_save
    document.edit_mask("Brush", lambda mask: fill_rect(mask, (1, 1, 4, 4)))
    assert document.changed_since_save
    document.undo()  # back where it was saved
    assert not document.changed_since_save
    document.begin_stroke("Brush")
    assert document.changed_since_save  # a stroke under way is unsaved work too


def test_every_state_that_was_saved_stays_saved_through_undo_and_redo() -> None:
    """Three generated pictures, each in the outputs folder: undoing to the first and redoing to the second asked
    on closing about "work that is not saved" (only the last saved state was remembered)."""
    document = Document()
    for colour in ("red", "green", "blue"):
        document.set_image(Image.new("RGB", (16, 8), colour), "Generated")
        document.mark_saved()
    document.undo()
    document.undo()
    assert not document.changed_since_save
    document.redo()
    assert not document.changed_since_save
    document.edit_mask("Brush", lambda mask: fill_rect(mask, (1, 1, 4, 4)))  # drops the redo of the blue one
    assert document.changed_since_save
    document.undo()
    assert not document.changed_since_save
