"""The document's undo history: which steps are done, undoing and redoing them, and what is kept elsewhere.

``DocumentHistory`` is the part of ``Document`` that moves along its steps (``document_steps.HistoryStep``) and puts
a step's state back; ``Document`` makes the changes that add steps.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
from PIL import Image

from studio.core.document_changes import DocumentChange
from studio.core.document_steps import HistoryStep, describe, forget_oldest, trim_whole_pictures
from studio.core.mask import Box, new_mask
from studio.core.metadata import Recipe


class DocumentHistory:
    """Undo, redo and the position among the steps, for ``Document``, which holds the state declared here."""

    image: Image.Image | None
    _mask: np.ndarray
    _masked: bool | None
    recipe: Recipe | None
    _steps: list[HistoryStep]
    _position: int
    history_revision: int
    _start_kept: bool
    _held_changes: list[DocumentChange] | None
    _unseen: Image.Image | None
    size: tuple[int, int]
    in_stroke: bool
    _notify: Callable[[DocumentChange], None]
    _forget_masked: Callable[[], None]
    _editable_mask: Callable[[], np.ndarray]
    changes_held: Callable[[], AbstractContextManager[None]]

    def history_labels(self) -> list[str]:
        return [s.label for s in self._steps]

    def history_descriptions(self) -> list[str]:
        """Each step named as Undo and Redo name it (``document_steps.describe``), oldest first."""
        return [describe(s) for s in self._steps]

    def undo_description(self) -> str:
        """The step Undo takes back, named (``document_steps.describe``); "" when there is none."""
        return describe(self._steps[self._position - 1]) if self._position else ""

    def redo_description(self) -> str:
        """The step Redo makes again, named; "" when there is none."""
        return describe(self._steps[self._position]) if self._position < len(self._steps) else ""

    @property
    def history_position(self) -> int:
        return self._position

    def before_last_step(self) -> tuple[Image.Image, Box | None] | None:
        """What the picture was before the last change that touched it (for before/after comparison): the
        region that changed and its box, or the whole picture (box None)."""
        for step in reversed(self._steps[:self._position]):
            if step.image_before is None and step.box is not None:
                continue  # a mask-only change: look further back
            if step.image_before is None:
                return None  # the first picture: nothing before it
            return step.image_before, step.box
        return None

    def mark_saved(self) -> None:
        """The document as it is now is kept elsewhere: closing here, or after undoing or redoing back to here,
        loses nothing (each kept state is remembered: three generated pictures are each in the outputs folder)."""
        step = self._current_step()
        if step is None:
            self._start_kept = True
        else:
            step.kept = True

    @property
    def changed_since_save(self) -> bool:
        """Whether the picture or mask holds work kept nowhere else (a painted mask, an edit since the last save)."""
        step = self._current_step()
        return self.image is not None and (self.in_stroke or not (step.kept if step else self._start_kept))

    def _current_step(self) -> HistoryStep | None:
        return self._steps[self._position - 1] if self._position else None

    def can_undo(self) -> bool:
        return self._position > 0

    def can_redo(self) -> bool:
        return self._position < len(self._steps)

    def undo(self) -> bool:
        if not self.can_undo():
            return False
        # The position moves only once the step is back: one that cannot be restored leaves history and document
        # as they were, in agreement. Listeners hear of it after the move: told before, the window read can_redo()
        # as False and left Redo disabled (Ctrl+Z then Ctrl+Y at once redid nothing).
        change = self._restore(self._steps[self._position - 1], before=True)
        self._position -= 1
        self.history_revision += 1
        trim_whole_pictures(self._steps, self._position, self.image)
        self._notify(change)
        return True

    def redo(self) -> bool:
        if not self.can_redo():
            return False
        change = self._restore(self._steps[self._position], before=False)
        self._position += 1
        self.history_revision += 1
        trim_whole_pictures(self._steps, self._position, self.image)
        self._notify(change)
        return True

    def go_to(self, position: int) -> None:
        """Undo or redo until ``position`` steps are done (a click in the history list).

        Listeners hear of it once for the picture and once for the mask, each change covering every step's:
        a view redraws each once however far back the person goes."""
        position = max(0, min(position, len(self._steps)))
        with self.changes_held():
            while self._position > position:
                self.undo()
            while self._position < position:
                self.redo()

    def _push(self, step: HistoryStep) -> None:
        if self.in_stroke and (step.mask_before is not None or step.box is None):
            self._forget_masked()  # a mask change within a stroke: undoing the stroke puts back what was before both
            step.masked_before = step.masked_after = None
        del self._steps[self._position:]
        self._steps.append(step)
        forget_oldest(self._steps)
        self._position = len(self._steps)
        self.history_revision += 1
        trim_whole_pictures(self._steps, self._position, self.image)

    def _restore(self, step: HistoryStep, before: bool) -> DocumentChange:
        """Put the step's state back (its state before it, or after it) and return the change to tell of."""
        image = step.image_before if before else step.image_after
        mask = step.mask_before if before else step.mask_after
        recipe = step.recipe_before if before else step.recipe_after
        if self.in_stroke:
            self._forget_masked()  # the stroke's pixels stay: the state is none the step knew
        masked = None if self.in_stroke else step.masked_before if before else step.masked_after
        if step.box is None:
            self.image = image
            # The record itself, read-only (the next edit copies it): a jump over many changes copies nothing.
            self._mask = new_mask(*self.size) if mask is None else mask
            self._masked = False if mask is None else masked
            self.recipe = recipe
            return DocumentChange(None, True, True, size=True, mask_source=mask)
        x0, y0, x1, y1 = step.box
        if x1 > self.size[0] or y1 > self.size[1] or self._mask.shape != self.size[::-1]:
            # Checked before anything changes: a picture pasted out of bounds would be cut off unnoticed.
            raise ValueError(f"the step {step.label!r} does not fit the {self.size[0]}x{self.size[1]} picture")
        if image is not None:
            whole_picture = step.whole_before if before else step.whole_after
            outgoing = self.image
            if image.size == self.image.size:
                canvas = image  # the step holds the whole picture, which is never changed in place: no copy
            elif whole_picture is not None:
                canvas = whole_picture  # the picture as it was, held: no copy
            else:
                # A picture made earlier in the same history jump has been seen by no one: paste into it.
                canvas = self.image if self.image is self._unseen else self.image.copy()
                canvas.paste(image, (x0, y0))
                if self._held_changes is not None:
                    self._unseen = canvas
            self.image = canvas
            self.recipe = recipe
            if step.image_before is not None and step.image_before.size != outgoing.size and \
                    outgoing is not self._unseen:
                # The picture left is the step's other side, whole (one made in a jump is pasted into further).
                if before:
                    step.whole_after = outgoing
                else:
                    step.whole_before = outgoing
        whole = mask is not None and mask.shape == self._mask.shape
        if whole:
            self._mask = mask  # the record itself, read-only, as for a whole step: no 16 MB copy (invert, clear)
        elif mask is not None:
            self._editable_mask()[y0:y1, x0:x1] = mask
        if mask is not None:
            self._masked = masked
        return DocumentChange(step.box, image is not None, mask is not None, mask_source=mask if whole else None)
