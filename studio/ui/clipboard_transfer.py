"""Pictures to and from the clipboard, and picture files or image data dropped or pasted onto the window."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication, QImage

from studio.core.mask import Box, bounding_box
from studio.ui.picture_opening import PictureOpening
from studio.ui.qt_images import pil_to_qt_owned_qimage, qimage_to_pil

OPENABLE = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class ClipboardTransfer(PictureOpening):
    """The clipboard and drop part of DocumentActions: what is pasted or dropped is opened as a picture file is."""

    def copy_picture(self) -> asyncio.Task | None:
        image = self.document.image
        if image is None:
            return None
        return self.run(self._to_clipboard(lambda: image, "Copied the picture."))

    def copy_masked_area(self) -> asyncio.Task | None:
        doc = self.document
        box = bounding_box(doc.mask) if doc.image is not None else None
        if box is None:
            self.window.status.set_message("There is no mask to copy; paint one first.", error=True)
            return None
        x0, y0, x1, y1 = box
        return self.run(self._to_clipboard(partial(masked_cut, doc.image, doc.mask[y0:y1, x0:x1].copy(), box),
                                           f"Copied the masked area ({x1 - x0}×{y1 - y0})."))

    async def _to_clipboard(self, picture: Callable[[], Image.Image], message: str) -> None:
        """Make and convert the picture in a worker thread (a 4096x4096 one held the window 74-98 ms); the
        clipboard takes it on this thread."""
        # In Qt's own memory: the clipboard keeps it past this window (and past Python, at exit), and one over a
        # numpy array released it then, after the interpreter was gone: a crash on quitting.
        qimage = await asyncio.to_thread(lambda: pil_to_qt_owned_qimage(picture()))
        QGuiApplication.clipboard().setImage(qimage)
        self.window.status.set_message(message)

    def paste_from_clipboard(self) -> None:
        self.open_mime(QGuiApplication.clipboard().mimeData(), "Paste")

    @staticmethod
    def accepts(mime: QMimeData) -> bool:
        return mime.hasImage() or any(Path(u.toLocalFile()).suffix.lower() in OPENABLE
                                      for u in mime.urls() if u.isLocalFile())

    def open_mime(self, mime: QMimeData | None, label: str) -> bool:
        """Open the first picture file in mime, else its image data. False if there is neither."""
        if mime is None:
            return False
        for url in mime.urls():
            path = Path(url.toLocalFile()) if url.isLocalFile() else None
            if path is not None and path.suffix.lower() in OPENABLE:
                self.run(self.open_path(path))
                return True
        if mime.hasImage():
            qimage = mime.imageData()
            if qimage is not None and not qimage.isNull():
                self.run(self._take_pasted(qimage, label))
                return True
        self.window.status.set_message("There is no picture on the clipboard.", error=True)
        return False

    async def _take_pasted(self, qimage: QImage, label: str) -> None:
        """Convert pasted image data in worker threads: a 4096x4096 picture held the window 150-250 ms."""
        if self._refused_as_too_large(qimage.width(), qimage.height(), "pasted"):
            return
        image = await asyncio.to_thread(qimage_to_pil, qimage)
        replaced = self.document.image is not None  # read before: an empty canvas has no old picture to bring back
        await self.take_in(image, label)
        # Studio has no layers: what is pasted becomes the canvas, which the sentence says, and how to undo it.
        done = "Pasted" if label == "Paste" else "Dropped" if label == "Drop" else label
        self.window.status.set_message(f"{done} a {image.width}×{image.height} picture" + (
            " in place of the canvas (Ctrl+Z brings the old one back)." if replaced else "."))


def masked_cut(image: Image.Image, mask: np.ndarray, box: Box) -> Image.Image:
    """The picture's part in box, transparent where the mask (its part in box) is not."""
    cut = image.crop(box).convert("RGBA")
    alpha = np.minimum(np.asarray(cut.getchannel("A")), mask)
    cut.putalpha(Image.fromarray(alpha, "L"))
    return cut
