"""Changing the canvas size: extending it (outpainting's frame) and scaling the picture, in worker threads, one
after another, refused past Studio's pixel limit, and dropped with a sentence when the person edited meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QProgressDialog

from studio.core.inpaint import extend_canvas
from studio.core.mask import scaled_mask
from studio.ui.dialogs import ExtendCanvasDialog, ScaleImageDialog
from studio.ui.document_work import DocumentWork
from studio.ui.result_arrival import ExtendedBorder

log = logging.getLogger(__name__)

# A scale to this many pixels or more takes seconds (16384x10641: ~10 s): it is shown with a busy bar and a Cancel.
BIG_SCALE_PIXELS = 4096 * 4096


class CanvasResizing(DocumentWork):
    """The canvas size part of DocumentActions."""

    scaling_progress: QProgressDialog | None  # the busy bar of a big scale under way

    def extend_dialog(self) -> None:
        doc = self.document
        if doc.image is None:
            self.window.status.set_message("Open or generate a picture before extending it.", error=True)
            return
        dialog = ExtendCanvasDialog(doc.size, self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.extend_canvas(*dialog.amounts(), fill=dialog.fill_check.isChecked())

    def extend_canvas(self, left: int, top: int, right: int, bottom: int, fill: bool) -> asyncio.Task | None:
        """Extend in a worker thread, then fill the new area by inpainting if asked (the frame tool does):
        on this thread, extending a 4096x4096 picture held the window 1.1-1.4 s."""
        if self.document.image is None or not any((left, top, right, bottom)) or self._busy_refusal():
            return None
        return self.run(self._extend_canvas((left, top, right, bottom), fill))

    async def _extend_canvas(self, amounts: tuple[int, int, int, int], fill: bool) -> None:
        left, top, right, bottom = amounts
        changed = await self._resized(lambda image, mask: extend_canvas(image, mask, *amounts), "extended", "extend",
                                      lambda width, height: (width + left + right, height + top + bottom))
        if changed is None:
            return
        image, mask, record, masked = changed
        before = self.document.image
        mask_before = self.document.mask if self.document.has_mask else None  # never edited again once replaced
        self.document.replace_all(f"Extend canvas to {image.width}×{image.height}", image, mask,
                                  self.document.recipe, record=record, masked=masked)
        self.window.canvas.set_mask_visible(True)
        self.window.mask_toolbar.show_mask_action.setChecked(True)
        # Control guides made for the picture are extended with it (before the fill job takes them).
        problems = await self.window.prompt_panel.control_box.follow_extend(before, image, amounts)
        if problems:  # no fill job with a guide that no longer lies on the picture
            then = " The canvas is extended; change or remove that guide, then press Generate to fill it." if fill \
                else ""
            self.window.status.set_message(" ".join(problems) + then, error=True)
        elif fill:
            self.window.results.border_sent(image, ExtendedBorder(record, mask_before, left, top))
            self.window.generate()
        else:
            self.window.status.set_message(f"Extended the canvas to {image.width}×{image.height}.")

    def scale_dialog(self) -> None:
        doc = self.document
        if doc.image is None:
            return
        dialog = ScaleImageDialog(doc.size, self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.scale_image(*dialog.new_size())

    def scale_image(self, width: int, height: int) -> asyncio.Task | None:
        """Scale in a worker thread: on this thread, 2048x2048 to 4096x4096 held the window 0.42-0.47 s."""
        doc = self.document
        if doc.image is None or (width, height) == doc.size or self._busy_refusal():
            return None
        self.window.status.set_message(f"Scaling to {width}×{height}…")
        task = self.run(self._scale_image(width, height))
        if width * height >= BIG_SCALE_PIXELS:
            self.scaling_progress = self._show_scaling(task, width, height)
        return task

    def _show_scaling(self, task: asyncio.Task, width: int, height: int) -> QProgressDialog:
        """A busy bar with a Cancel button while a big scale runs in its worker thread (the window keeps drawing);
        Cancel leaves the picture as it is (the thread's result is dropped when it ends)."""
        progress = QProgressDialog(f"Scaling the picture to {width}×{height}…", "Cancel", 0, 0, self.window)
        progress.setWindowTitle("Scale Image")
        progress.setWindowModality(Qt.WindowModality.WindowModal)  # no edit meanwhile that the scale would drop
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.setMinimumDuration(0)
        cancel = partial(self._cancel_scaling, task, f"{width}×{height}")
        progress.canceled.connect(cancel)
        progress.rejected.connect(cancel)  # closed or put away otherwise: no scale left running unseen
        task.add_done_callback(lambda _: self._scaling_ended(progress))
        progress.show()
        return progress

    def _scaling_ended(self, progress: QProgressDialog) -> None:
        progress.close()  # (its close says canceled, which the ended task no longer hears)
        progress.deleteLater()
        if self.scaling_progress is progress:
            self.scaling_progress = None

    def _cancel_scaling(self, task: asyncio.Task, size: str) -> None:
        if task.cancel():
            self.window.status.set_message(f"Scaling to {size} was cancelled; the picture is unchanged.")

    async def _scale_image(self, width: int, height: int) -> None:
        changed = await self._resized(lambda image, mask: scaled(image, mask, width, height), "scaled", "scale",
                                      lambda *_: (width, height))
        if changed is not None:
            image, mask, record, masked = changed
            self.document.replace_all(f"Scale to {width}×{height}", image, mask, self.document.recipe, record=record,
                                      masked=masked)
            self.window.status.set_message(f"Scaled to {width}×{height}.")

    async def _resized(self, work: Callable[[Image.Image, np.ndarray], tuple[Image.Image, np.ndarray]], done: str,
                       verb: str, new_size: Callable[[int, int], tuple[int, int]],
                       ) -> tuple[Image.Image, np.ndarray, np.ndarray, bool] | None:
        """A new size's picture, mask, a copy of the mask and whether it masks anything (Document.replace_all's
        ``record`` and ``masked``), made in a worker thread and converted for display there (its layer tinted from
        the copy), or None.

        ``new_size``: the size the work makes of the picture's, refused with a sentence past Studio's pixel limit
        (Studio could not open such a picture again, nor recover it after a crash).

        Size changes run one after another: a second frame dragged before the first is in extends its result.
        If the person changes the picture or mask meanwhile, their work is kept and the change is dropped with
        a sentence."""
        async with self._whole_changes:
            doc = self.document
            if doc.image is None or self._busy_refusal():
                return None
            if self._refused_as_too_large(*new_size(*doc.size), done):
                return None
            revision = doc.revision

            def made(image: Image.Image, mask: np.ndarray) -> tuple[Image.Image, np.ndarray, np.ndarray, bool]:
                # Read here, not copied on the window's thread (16 MB at 4096x4096: 3-50 ms there, most of it the
                # new memory's first touch); ``work`` makes a new mask. Painted on meanwhile, the mask may be read
                # half-changed: the revision then moved on, and the result is dropped below.
                image, mask = work(image, mask)
                # The history's record of the new mask, and whether it masks anything, found here too.
                return image, mask, mask.copy(), bool(mask.any())

            try:
                image, mask, record, masked = await asyncio.to_thread(made, doc.image, doc.mask)
            except Exception as exc:  # noqa: BLE001 - told as a sentence; the document is unchanged
                log.exception("The picture could not be %s", done)
                reason = "there was not enough memory" if isinstance(exc, MemoryError) else str(exc) or repr(exc)
                self.window.status.set_message(f"The picture could not be {done} ({reason}); it is unchanged.",
                                               error=True)
                return None
            await self.window.canvas.convert_ahead(image, record)
            if self.document.revision == revision and not self._busy_refusal():
                return image, mask, record, masked
        self.window.status.set_message(f"The picture or mask changed while it was being {done}, so it was not "
                                       f"{done}; {verb} it again.", error=True)
        return None


def scaled(image: Image.Image, mask: np.ndarray, width: int, height: int) -> tuple[Image.Image, np.ndarray]:
    """The picture (Lanczos) and its mask (masking as much of it as before: mask.scaled_mask) at a new size."""
    return image.resize((width, height), Image.Resampling.LANCZOS), scaled_mask(mask, width, height)
