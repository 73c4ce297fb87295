"""The window's side of a finished job's pictures: made ready for the canvas in worker threads as they come,
held while a brush stroke is under way, left in the gallery where they would throw away steps the person can still
redo, and otherwise put in the undo history (where each goes: result_landing).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from studio.core.comparison import Comparison, compare
from studio.core.document_steps import GENERATED, OUTPAINTED  # the undo steps of a generated picture, a fill
from studio.core.events import GeneratedImage
from studio.core.inpaint import without_extended_border
from studio.core.requests import GenerationRequest
from studio.ui.actions import make_action
from studio.ui.result_landing import Landing, held_because, landed

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

log = logging.getLogger(__name__)
USE_HELD_KEY = "Ctrl+Shift+N"
HELD_BACK = (f"The new picture is in the Gallery (double-click it or press Enter to use it, or {USE_HELD_KEY} from "
             "anywhere); the canvas keeps the steps you undid, so you can still redo them.")
BORDER_MASK_CLEARED = "Clear the extended border's mask"  # the undo step after an Extend Canvas fill lands


@dataclass
class ExtendedBorder:
    """What Extend Canvas did to the mask of a picture it made to be filled: its mask (``extended``), the person's
    mask before it (None: there was none) and where the old picture lies in the new one."""

    extended: np.ndarray
    before: np.ndarray | None
    left: int
    top: int


class ResultArrival:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.pending: list[Landing] = []  # results that landed mid-stroke
        # Made ahead, off this thread, for each result: (result, what goes on the canvas, its comparison with the
        # canvas picture).
        self._compared: list[tuple[Image.Image, Image.Image, Comparison]] = []
        self.held_note = ""  # said when the job ends: a result stayed in the gallery (see _held_back)
        # Inpaints sent from the canvas: the picture each was made from, and the document's revision then (moved on
        # as its own results land). Weak: a picture the canvas and the queue no longer hold is not kept for this.
        self._sent: list[tuple[weakref.ref[Image.Image], int]] = []
        # Pictures Extend Canvas made and sent to be filled: once a fill lands, the border's mask goes, or the next
        # inpaint (of a few strokes elsewhere) would quietly redraw the border again.
        self._borders: list[tuple[weakref.ref[Image.Image], ExtendedBorder]] = []
        self.held_path: Path | None = None  # the newest picture held back in the gallery, until used
        self.use_held_action = make_action(window, "Use &New Picture", "open", USE_HELD_KEY, self.use_held,
                                           f"Put the new picture held in the Gallery on the canvas ({USE_HELD_KEY})")
        self.use_held_action.setEnabled(False)

    def use_held(self) -> None:
        """The held-back picture onto the canvas, as the Gallery's Enter does (the person chose to leave the steps
        they undid). Only while it is still held back: once the steps it waited behind are gone (a later result or
        another picture took the canvas) or its file is (deleted from the Gallery), it would throw away a newer
        canvas or fail on a missing file."""
        path = self.held_path
        self.forget_held()
        if path is None:
            return
        if not self.window.document.can_redo() or not path.exists():
            self.window.status.set_message(f"{path.name} is no longer held back for the canvas; nothing was changed. "
                                           "To use it, open it from the Gallery.")
            return
        self.window.actions_.run(self.window.actions_.open_path(path))

    def forget_held(self, path: Path | None = None) -> None:
        """Nothing is held back any more (with ``path``: if that picture was the one held)."""
        if path is None or path == self.held_path:
            self.held_path = None
            self.use_held_action.setEnabled(False)

    def sent(self, request: GenerationRequest, revision: int) -> None:
        """An inpaint was sent from the document at ``revision`` (its picture and mask as they were then): the
        history keeps that picture and mask with its results (history_recording), so once one lands on a document
        unchanged since, closing loses nothing. A mask painted after it was sent moves the revision on."""
        if request.mask is None or request.init_image is None:
            return
        self._sent = [(source, at) for source, at in self._sent if source() is not None]
        self._sent.append((weakref.ref(request.init_image), revision))

    def border_sent(self, image: Image.Image, border: ExtendedBorder) -> None:
        """``image``, made by Extend Canvas with ``border``, is being sent to have its new border filled."""
        self._borders = [(picture, known) for picture, known in self._borders if picture() is not None]
        self._borders.append((weakref.ref(image), border))

    def _border_of(self, source: Image.Image | None) -> ExtendedBorder | None:
        return next((border for picture, border in self._borders if source is not None and picture() is source),
                    None)

    def _clear_border(self, border: ExtendedBorder) -> None:
        """The fill is in: Extend's mask goes (its own undo step), the person's own mask and strokes stay."""
        document = self.window.document
        if document.mask.shape == border.extended.shape:
            document.set_mask(BORDER_MASK_CLEARED, without_extended_border(
                document.mask, border.extended, border.before, border.left, border.top))

    def _unchanged_since_sent(self, source: Image.Image | None) -> int | None:
        """Which of the sent inpaints made from ``source`` the document is unchanged since (its index), if any."""
        revision = self.window.document.revision
        return next((index for index, (sent, at) in enumerate(self._sent)
                     if source is not None and sent() is source and at == revision), None)

    def _history_keeps_sources(self) -> bool:
        """The person's own history is written to: not one opened read-only, nor a stand-in for this session."""
        history = self.window.history
        return not history.read_only and history.path.parent == self.window.data_dir

    async def take_in_ahead(self, result: Image.Image, source: Image.Image | None) -> None:
        """Work out what goes on the canvas, convert it for display, find where it differs from the canvas picture
        and cut out both pictures' parts there for the undo history, in worker threads: at 1024x1024 the conversion
        took this thread 3-8 ms with the engine busy beside it; at 4096x4096 the comparison alone took it 20-40 ms,
        the parts of a big inpaint 5-10 ms, and carrying an inpaint's changes onto a canvas changed since
        (result_landing) 740 ms. A result that will wait behind a brush stroke is compared with the
        one before it, which the document will have by then."""
        canvas = self.window.canvas
        current = self.pending[-1][0].image if self.pending else self.window.document.image
        try:
            shown = await asyncio.to_thread(landed, current, result, source)
        except Exception:  # the window works it out itself then
            log.exception("Placing a result on the canvas failed")
            return
        if shown is None:
            return  # it will not go on the canvas
        if current is None or (current.size, current.mode) != (shown.size, shown.mode):
            await canvas.convert_ahead(shown)  # a new size: nothing to compare with
            return
        try:
            compared, _ = await asyncio.gather(asyncio.to_thread(compare, current, shown), canvas.convert_ahead(shown))
        except Exception:  # the document compares them itself then
            log.exception("Comparing a result with the canvas failed")
            return
        self._compared.append((result, shown, compared))

    def arrive(self, landing: Landing) -> None:
        if self.window.canvas.busy:
            self.pending.append(landing)  # never under the person's brush
        else:
            self.show([landing])

    def apply_pending(self) -> None:
        pending, self.pending = self.pending, []
        if pending:
            self.show(pending)

    def take_held_note(self) -> str:
        note, self.held_note = self.held_note, ""
        return note

    def show(self, results: list[Landing]) -> None:
        """Each result becomes a step in the undo history; the canvas redraws once, for the last one (those that
        waited behind a brush stroke are never seen, so only the last one's conversion, made ahead, is used)."""
        document = self.window.document
        moved: set[int] = set()  # the sent inpaints whose own results landed here (their revision moves on)
        with document.changes_held():
            for output, label, source in results:
                if self._held_back(output, label):
                    continue
                ahead = self._made_ahead(output)
                if ahead is not None and ahead[1].picture is document.image:  # the canvas it was worked out for
                    image, compared = ahead
                else:
                    try:
                        image = landed(document.image, output.image, source)  # the canvas as it is
                    except Exception:  # never lost without a word: the person is told it was not put on the canvas
                        log.exception("Putting a result on the canvas failed")
                        image = None
                    compared = None
                if image is None:
                    self._hold(output, held_because(output.image, source, output.path is not None))
                    continue
                unchanged = self._unchanged_since_sent(source)
                border = self._border_of(source) if label == GENERATED else None
                document.set_image(image, OUTPAINTED if border is not None else label, output.recipe, compared=compared)
                self.forget_held()  # the steps it was held behind are gone: using it now would replace this result
                if unchanged is not None:  # the document moved on by this job's own result only
                    self._sent[unchanged] = (self._sent[unchanged][0], document.revision)
                    moved.add(unchanged)
                if border is not None:
                    self._clear_border(border)
                # In the outputs folder, and the mask with the inpaint's history entry: nothing to lose.
                kept_mask = unchanged is not None and self._history_keeps_sources()
                if output.path is not None and (not document.has_mask or kept_mask):
                    document.mark_saved()
            held_at = document.revision
        for index in moved:  # the hold's end told the listeners, which moves the revision on again
            if self._sent[index][1] == held_at:
                self._sent[index] = (self._sent[index][0], document.revision)
        if self.window.autosaver is not None:
            self.window.actions_.run(self.window.autosaver.save_now())  # every generation is on disk at once

    def _held_back(self, output: GeneratedImage, label: str) -> bool:
        """A generated picture that lands while the person has undone steps stays in the gallery: putting it on
        the canvas would throw away the steps they can still redo."""
        if label != GENERATED or not self.window.document.can_redo() or output.path is None:
            return False
        self._hold(output, HELD_BACK)
        self.held_path = output.path
        self.use_held_action.setEnabled(True)
        return True

    def _hold(self, output: GeneratedImage, why: str) -> None:
        self._made_ahead(output)  # what was made ahead for it goes too
        self.held_note = why
        self.window.status.set_message(why)

    def _made_ahead(self, output: GeneratedImage) -> tuple[Image.Image, Comparison] | None:
        """(what goes on the canvas, its comparison with the canvas picture) made ahead for this result, if any;
        those of earlier results go with it."""
        for index, (result, shown, compared) in enumerate(self._compared):
            if result is output.image:
                del self._compared[:index + 1]
                return shown, compared
        return None
