"""The document on the canvas: picture, mask and recipe, with an undo history of every change (``document_history``).

The picture is never changed in place (each change makes a new Image), so readers such as the
autosave may hold on to it; the mask is edited in place, only by the document's own changes, and copied by
readers. A change of all of the mask, and an undo or redo of one, takes the history's record of it as the mask itself,
read-only, and the first edit after copies it (copying 16 MB on the window's thread took 3-50 ms at 4096x4096).
Whether any pixel is masked (``has_mask``) is kept as the mask changes, so asking costs no scan of it.
Every change records only the region it touched, so a brush stroke on a 4096x4096 canvas costs
the stroke's box in memory, not the whole mask.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image

from studio.core import comparison
from studio.core.comparison import Comparison, MaskChange
from studio.core.document_changes import DocumentChange, Listener, merged_changes
from studio.core.document_history import DocumentHistory
from studio.core.document_steps import HistoryStep
from studio.core.mask import Box, new_mask, union_box
from studio.core.metadata import Recipe


class Document(DocumentHistory):
    def __init__(self) -> None:
        self.image: Image.Image | None = None
        self._mask: np.ndarray = new_mask(0, 0)  # read-only while it is a record the history holds
        self._masked: bool | None = False  # whether any pixel is masked (None: not known, found when asked)
        self.recipe: Recipe | None = None
        self._steps: list[HistoryStep] = []
        self._position = 0  # steps before this are done; after it, redoable
        self._listeners: list[Callable[[], Listener | None]] = []
        self._stroke_before: np.ndarray | None = None
        self._stroke_box: Box | None = None
        self._stroke_label = ""
        self._stroke_masked: bool | None = None  # has_mask when the stroke began
        self.revision = 0  # bumps on every change: autosave compares it
        self.history_revision = 0  # bumps when the steps or the position among them change, not on a brush's dab
        # The step done when the document was last kept elsewhere (a result in the outputs, an opened or saved file):
        # undoing back to it leaves nothing unsaved. An empty document has nothing to lose.
        self._start_kept = False  # the document before any step (empty) has nothing to keep
        self._held_changes: list[DocumentChange] | None = None  # while changes_held() holds them
        self._unseen: Image.Image | None = None  # a picture made while they are held, not yet shown to anyone

    # -- observing -------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """Call listener on every change. Bound methods are held weakly, so a closed view is not
        kept alive (and never called) by the document it showed."""
        ref = weakref.WeakMethod(listener) if hasattr(listener, "__self__") else (lambda: listener)
        self._listeners.append(ref)

    def _notify(self, change: DocumentChange) -> None:
        self.revision += 1  # held too: a mask change worked out ahead must see an edit made within the same hold
        if self._held_changes is not None:
            self._held_changes.append(change)
            return
        for ref in list(self._listeners):
            listener = ref()
            if listener is None:
                self._listeners.remove(ref)
            else:
                listener(change)

    @property
    def mask(self) -> np.ndarray:
        """The mask, edited in place by the document's changes only (readers that keep it copy it). After an undo or
        redo it may be the history's read-only record, replaced by a copy on the next edit: a reader that keeps it
        takes it again on each change it hears of."""
        return self._mask

    @mask.setter
    def mask(self, mask: np.ndarray) -> None:
        """Replace the mask outside the history: what the history knew of which states are empty is forgotten."""
        self._mask = mask
        self._forget_masked()

    def _editable_mask(self) -> np.ndarray:
        if not self._mask.flags.writeable:
            self._mask = self._mask.copy()
        return self._mask

    def _unedited_mask(self) -> np.ndarray:
        """The mask as it is now, in an array no one will edit: the history's record it is, or a copy."""
        return self._mask if not self._mask.flags.writeable else self._mask.copy()

    def _edited(self, box: Box) -> None:
        """The mask was edited in ``box`` only: has_mask follows without a scan of all of it where it can."""
        x0, y0, x1, y1 = box
        if self._mask[y0:y1, x0:x1].any():
            self._masked = True
        elif self._masked:
            self._masked = None  # erased there: whether any pixel is left elsewhere is found when asked

    def _forget_masked(self) -> None:
        """The mask changed in a way the history did not record (an edit or undo in the middle of a stroke, a mask
        set from outside): the states the steps go back to may differ from those they knew."""
        self._masked = self._stroke_masked = None
        for step in self._steps:
            step.masked_before = step.masked_after = None

    @property
    def size(self) -> tuple[int, int]:
        return (0, 0) if self.image is None else self.image.size

    @property
    def has_mask(self) -> bool:
        """Whether any pixel is masked: kept as the mask changes (a scan of a 4096x4096 mask held the window's thread
        3-5 ms after every edit), found with one only where a change could not tell."""
        if self._masked is None:
            self._masked = bool(self._mask.any())
        return self._masked

    @contextmanager
    def changes_held(self) -> Iterator[None]:
        """Listeners hear of the block's changes when it ends, merged: once for the picture and once for the
        mask, each covering every change's box (or once for everything, if any change was whole)."""
        if self._held_changes is not None:  # within another hold: that one tells
            yield
            return
        held: list[DocumentChange] = []
        self._held_changes = held
        try:
            yield
        finally:
            self._held_changes = self._unseen = None
            for change in merged_changes(held):
                self._notify(change)

    # -- changes ---------------------------------------------------------------------------------
    def set_image(self, image: Image.Image, label: str, recipe: Recipe | None = None,
                  compared: Comparison | tuple[Image.Image, Box | None] | None = None) -> None:
        """Replace the picture. Same size: the mask stays (and, in the same mode, only the changed box is recorded).

        ``compared``: a Comparison (``comparison.compare``), or just (picture, changed_box(picture, image)), made
        ahead off the window's thread; it is used if that picture is still the document's."""
        if image.mode not in ("RGB", "RGBA"):
            image, compared = image.convert("RGB"), None
        if self.image is not None and image.size == self.image.size and image.mode == self.image.mode:
            known = Comparison(*compared) if compared is not None and compared[0] is self.image else None
            box = known.box if known is not None else comparison.changed_box(self.image, image)
            if box is None and recipe == self.recipe:
                return
            if known is not None and known.image is image and known.before is not None and known.after is not None:
                before, after = known.before, known.after
            else:
                box = box or (0, 0, 1, 1)
                before, after = comparison.region(self.image, box), comparison.region(image, box)
            part = box != (0, 0, *image.size)
            self._push(HistoryStep(label, box, image_before=before, image_after=after,
                                  recipe_before=self.recipe, recipe_after=recipe,
                                  whole_before=self.image if part else None, whole_after=image if part else None))
            self.image, self.recipe = image, recipe
            self._notify(DocumentChange(box, True, False))
            return
        same_size = self.image is not None and image.size == self.image.size
        # Another mode at the same size (a picture with transparency after one without): the mask still fits.
        self._replace_all(label, image, self._mask.copy() if same_size else None, recipe,
                          masked=self._masked if same_size else None)

    def replace_all(self, label: str, image: Image.Image, mask: np.ndarray, recipe: Recipe | None = None,
                    record: np.ndarray | None = None, masked: bool | None = None) -> None:
        """A new size or a new picture and mask at once (extend canvas, scale image, restore).

        ``record``: a copy of ``mask`` made ahead, off the window's thread, that no one edits: the history keeps it
        and the document takes ``mask`` itself as its own, to edit in place (the caller hands both over and uses
        neither again). Without it the document copies the mask twice, which at 4096x4096 held the window 10-20 ms.
        ``masked``: whether any pixel of ``mask`` is masked, found ahead with it (None: found when asked).
        """
        if mask.shape != (image.height, image.width):
            raise ValueError("the mask must match the picture's size")
        if record is not None and (record.shape != mask.shape or record is mask):
            raise ValueError("the mask's record must be a copy of it")
        self._replace_all(label, image, mask if record is not None else mask.copy(), recipe, record, masked)

    def _replace_all(self, label: str, image: Image.Image, mask: np.ndarray | None, recipe: Recipe | None,
                     record: np.ndarray | None = None, masked: bool | None = None) -> None:
        """``mask`` None: a new empty one. The step records it as None (undo makes it afresh), not a copy of its
        zeros: copying a 4096x4096 one took the window's thread 6-11 ms on opening a picture of a new size.
        ``record``: the step's copy of ``mask``, made ahead (else it is copied here)."""
        # A stroke under way is recorded first, on the mask it painted (recorded later, its box and mask would be
        # taken from the new one and could never be undone); the brush, still down, goes on as a stroke of its own.
        stroke_label = self._stroke_label if self.in_stroke else None
        self.end_stroke()
        # The mask object is replaced here, never edited again, so the step keeps it as it is (16 MB at 4096x4096).
        if mask is not None and record is None:
            record = mask.copy()
        masked = False if mask is None else masked
        self._push(HistoryStep(label, None, image_before=self.image, image_after=image,
                              mask_before=self._mask if self.image is not None else None, mask_after=record,
                              recipe_before=self.recipe, recipe_after=recipe,
                              masked_before=self._masked if self.image is not None else False, masked_after=masked))
        self.image, self._mask, self.recipe = image, new_mask(*image.size) if mask is None else mask, recipe
        self._masked = masked
        self._notify(DocumentChange(None, True, True, size=True, mask_source=record))
        if stroke_label is not None:
            self.begin_stroke(stroke_label)

    def edit_mask(self, label: str, operation: Callable[[np.ndarray], Box | None]) -> Box | None:
        """One undoable mask edit: ``operation`` changes the mask in place and returns its box."""
        before, masked = self._unedited_mask(), self._masked
        box = operation(self._editable_mask())
        if box is not None:
            self._edited(box)
            self._record_mask(label, box, before, masked)
        return box

    def set_mask(self, label: str, mask: np.ndarray) -> None:
        """Replace the whole mask (invert, clear, grow, load from file); see also apply_mask_change."""
        if mask.shape != self.mask.shape:
            raise ValueError("the mask must match the picture's size")
        box = comparison.changed_box(self._mask, mask)
        if box is None:
            return
        before, masked = self._unedited_mask(), self._masked
        self._editable_mask()[...] = mask
        self._masked = None  # found when asked
        self._record_mask(label, box, before, masked)

    def apply_mask_change(self, label: str, change: MaskChange) -> None:
        """Set a new mask worked out ahead (``mask_change``); if the mask changed since, it is compared again."""
        if change.revision != self.revision:
            self.set_mask(label, change.mask)
            return
        if change.box is None:
            return
        x0, y0, x1, y1 = change.box
        # A change of all of the mask (invert, clear, grow) keeps the new mask itself, which no one edits, as its
        # record, and the document takes that record as its mask, read-only, as an undo does (the next edit copies
        # it): copying it held the window 3-10 ms at 4096x4096, writing it into the mask 3-6 ms.
        whole = change.box == (0, 0, *self.size)
        if not whole:
            self._editable_mask()[y0:y1, x0:x1] = change.mask[y0:y1, x0:x1]
        masked, self._masked = self._masked, change.masked
        self._push(HistoryStep(label, change.box, mask_before=change.before,
                              mask_after=change.mask if whole else change.mask[y0:y1, x0:x1].copy(),
                              masked_before=masked, masked_after=change.masked))
        if whole:
            self._mask = change.mask  # made read-only by the step, which holds it
        self._notify(DocumentChange(change.box, False, True, mask_source=change.mask if whole else None))

    def _record_mask(self, label: str, box: Box, before: np.ndarray, masked: bool | None) -> None:
        x0, y0, x1, y1 = box
        self._push(HistoryStep(label, box, mask_before=before[y0:y1, x0:x1].copy(),
                              mask_after=self._mask[y0:y1, x0:x1].copy(), masked_before=masked,
                              masked_after=self._masked))
        self._notify(DocumentChange(box, False, True))

    # -- strokes: many small edits, one undo step ------------------------------------------------
    def begin_stroke(self, label: str) -> None:
        if self._stroke_before is not None:
            self.end_stroke()  # one left unfinished is recorded, not lost from undo
        self._stroke_before = self._unedited_mask()
        self._stroke_box = None
        self._stroke_label = label
        self._stroke_masked = self._masked

    @property
    def in_stroke(self) -> bool:
        return self._stroke_before is not None

    def stroke(self, operation: Callable[[np.ndarray], Box | None]) -> Box | None:
        """Apply one piece of the current stroke (shown at once, recorded at end_stroke)."""
        if self._stroke_before is None:
            raise RuntimeError("stroke() outside begin_stroke()/end_stroke()")
        box = operation(self._editable_mask())
        if box is not None:
            self._edited(box)
            self._stroke_box = union_box(self._stroke_box, box)
            self._notify(DocumentChange(box, False, True))
        return box

    def end_stroke(self) -> None:
        before, box = self._stroke_before, self._stroke_box
        self._stroke_before = self._stroke_box = None
        if before is None or box is None:
            return
        x0, y0, x1, y1 = box
        self._push(HistoryStep(self._stroke_label, box, mask_before=before[y0:y1, x0:x1].copy(),
                              mask_after=self._mask[y0:y1, x0:x1].copy(), masked_before=self._stroke_masked,
                              masked_after=self._masked))
        self._notify(DocumentChange(None, False, False))  # pixels were shown already; the history grew
