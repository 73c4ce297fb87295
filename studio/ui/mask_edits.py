"""Whole-mask changes: a mask opened from a file, invert, clear, grow or shrink, and big fills, each made in a
worker thread with its tinted layer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from studio.core.comparison import MaskChange, mask_change
from studio.core.errors import StudioError
from studio.core.images import open_image
from studio.core.mask import Box, grow, invert, mask_from_image
from studio.ui.document_work import DocumentWork
from studio.ui.mask_overlay import TintedLayer, tinted_layer
from studio.ui.picture_opening import OPEN_FILTERS


class MaskEdits(DocumentWork):
    """The mask part of DocumentActions."""

    def open_mask_dialog(self) -> None:
        if self.document.image is None:
            self.window.status.set_message("Open or generate a picture before loading a mask.", error=True)
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Open Mask", "", OPEN_FILTERS)
        if path:
            self.run(self.open_mask_path(Path(path)))

    async def open_mask_path(self, path: Path) -> bool:
        try:
            picture = await asyncio.to_thread(partial(open_image, path, keep_mode=True))  # 16-bit grey stays so
        except StudioError as exc:
            await self._warn("Open Mask", str(exc))
            return False

        def fitted(current: np.ndarray) -> np.ndarray:  # at the picture's size when its turn comes
            return mask_from_image(picture, (current.shape[1], current.shape[0]))

        await self._changed_mask(f"Open mask {path.name}", fitted)
        if picture.size != self.document.size:
            self.window.status.set_message(
                f"The mask was {picture.width}×{picture.height}; it was scaled to the picture's size.")
        return True

    def invert(self) -> asyncio.Task | None:
        return self._change_mask("Invert mask", invert)

    def clear(self) -> asyncio.Task | None:
        return self._change_mask("Clear mask", np.zeros_like)

    def grow(self, pixels: int) -> asyncio.Task | None:
        label = f"Grow mask {pixels} px" if pixels > 0 else f"Shrink mask {-pixels} px"
        return self._change_mask(label, lambda mask: grow(mask, pixels))

    def _change_mask(self, label: str, make: Callable[[np.ndarray], np.ndarray]) -> asyncio.Task | None:
        if self.document.image is None or self._busy_refusal():
            return None
        return self.run(self._changed_mask(label, make))

    def fill_mask(self, label: str, operation: Callable[[np.ndarray], Box | None]) -> asyncio.Task:
        """A big rectangle or lasso fill (the canvas's mask_filler), made in a worker thread as invert is."""

        def make(current: np.ndarray) -> np.ndarray:
            mask = current.copy()
            operation(mask)
            return mask

        return self.run(self._changed_mask(label, make))

    async def _changed_mask(self, label: str, make: Callable[[np.ndarray], np.ndarray]) -> None:
        """A new whole mask (invert, clear, grow, a mask file), made in a worker thread with its tinted layer: at
        4096x4096 inverting held the window 74-86 ms. It waits for the whole-canvas changes asked before it and
        works on their result. If the person edits the mask meanwhile, it is made again here, from their mask."""
        async with self._whole_changes:
            doc, overlay = self.document, self.window.canvas.overlay
            await self._brush_let_go()
            if doc.image is None:
                return
            revision, current, tints = doc.revision, doc.mask, overlay.tints

            def work() -> tuple[MaskChange, TintedLayer | None, np.ndarray]:
                change = mask_change(revision, current, make(current))
                # The mask as it is, for the layer shown now: the change's own copy where it changed all of it (the
                # history keeps that very array, so an undo finds the layer by it without comparing masks).
                whole = change.box == (0, 0, current.shape[1], current.shape[0])
                return change, tinted_layer(change.mask, tints), change.before if whole else current.copy()

            change, layer, shown = await asyncio.to_thread(work)
            await self._brush_let_go()
            if doc.image is None:
                return
            if doc.revision != revision:  # edited meanwhile: made again, from the person's mask
                doc.set_mask(label, make(doc.mask))
                return
            overlay.keep(layer, shown)
            doc.apply_mask_change(label, change)
