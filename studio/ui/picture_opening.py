"""Opening a picture as the document, from a file or any picture the window takes in (pasted, dropped, a job's):
converted for display and compared with the canvas picture in worker threads first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from studio.core.comparison import Comparison, compare
from studio.core.errors import StudioError
from studio.core.images import first_page_words, open_image, read_recipe
from studio.core.metadata import Recipe
from studio.ui.document_work import DocumentWork

OPEN_FILTERS = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"


class PictureOpening(DocumentWork):
    """The picture opening part of DocumentActions."""

    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open Image", "", OPEN_FILTERS)
        if path:
            self.run(self.open_path(Path(path)))

    async def open_path(self, path: Path) -> bool:
        """Open a picture as the document; on failure the document is untouched."""
        try:
            image = await asyncio.to_thread(open_image, path)
            recipe = await asyncio.to_thread(_recipe_or_none, path)
            pages = await asyncio.to_thread(first_page_words, path)
        except StudioError as exc:
            await self._warn("Open Image", str(exc))
            return False
        await self.take_in(image, f"Open {path.name}", recipe)
        self.document.mark_saved()  # the file holds it: closing now loses nothing
        self.window.results.forget_held(path)  # used from the Gallery: Use New Picture has nothing left to use
        opened = f"{path.name} ({image.width}×{image.height})"
        self.window.status.set_message(f"Opened {', '.join(filter(None, [opened, pages]))}.")
        return True

    async def take_in(self, image: Image.Image, label: str, recipe: Recipe | None = None) -> None:
        """The picture as the document's, as an opened one is: converted for display and compared with the canvas
        picture in worker threads first, and a stroke begun meanwhile finished on the picture it began on."""
        compared = await self.take_in_ahead(image)
        await self._brush_let_go()
        self.document.set_image(image, label, recipe, compared=compared)
        self.window.prompt_panel.picture_replaced()

    async def replace_in(self, image: Image.Image, mask: np.ndarray, label: str) -> None:
        """A new picture and mask at once as the document's, converted for display in a worker thread first, and a
        stroke begun meanwhile finished on the picture it began on."""
        await self.window.canvas.convert_ahead(image, mask)
        await self._brush_let_go()
        self.document.replace_all(label, image, mask)
        self.window.prompt_panel.picture_replaced()

    async def take_in_ahead(self, image: Image.Image) -> Comparison | None:
        """Convert a picture the document is about to take in for display, and compare it with the canvas picture
        of its size, in worker threads (at 4096x4096 the conversion held the window 150 ms, the comparison 50-65
        ms, cutting the parts the undo step keeps 5-10 ms): Document.set_image's ``compared``."""
        current, canvas = self.document.image, self.window.canvas
        if current is None or (current.size, current.mode) != (image.size, image.mode):
            await canvas.convert_ahead(image)
            return None
        compared, _ = await asyncio.gather(asyncio.to_thread(compare, current, image), canvas.convert_ahead(image))
        return compared


def _recipe_or_none(path: Path) -> Recipe | None:
    try:
        return read_recipe(path)
    except (StudioError, OSError, ValueError, TypeError, KeyError):
        return None  # a picture without a readable recipe is still a picture
