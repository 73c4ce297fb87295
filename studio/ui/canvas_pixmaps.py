"""The canvas's pixmaps of whole pictures: those shown before, kept while the undo history holds their pictures, and
a rough stand-in shown while a big picture is converted in a worker thread.

At 4096x4096, converting a picture for display held the window 150-240 ms; an undo or redo back to a picture shown
before swaps its kept pixmap in, and any other big picture shows its stand-in at once (about 3 ms) until the worker
is done.
"""

from __future__ import annotations

import weakref

from PIL import Image
from PySide6.QtGui import QPixmap, QTransform

from studio.ui.qt_images import pil_to_qpixmap

KEPT_BYTES = 256 * 2**20  # pixmaps kept past this go, oldest first (four 4096x4096 pictures, 64 at 1024x1024)
CONVERT_AT_ONCE = 1024 * 1024  # px: a picture this small is converted on the window's thread (under ~10 ms)
STAND_IN_SIDE = 512  # px: the stand-in's longer side


def _nbytes(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * max(1, pixmap.depth() // 8)


class KeptPixmaps:
    """Pixmaps by the picture they show, held only while something else (the undo history) holds the picture."""

    def __init__(self, budget: int = KEPT_BYTES) -> None:
        self._budget = budget
        self._kept: dict[int, tuple[weakref.ref[Image.Image], QPixmap]] = {}  # by id(picture), oldest first

    def keep(self, image: Image.Image, pixmap: QPixmap) -> None:
        if pixmap.isNull():
            return
        self._kept.pop(id(image), None)
        self._kept[id(image)] = (weakref.ref(image), pixmap)
        self._trim()

    def take(self, image: Image.Image) -> QPixmap | None:
        """The pixmap kept for this very picture, no longer kept here (the canvas shows it, and may paint into it
        without Qt copying it first)."""
        self._trim()
        kept = self._kept.pop(id(image), None)
        return kept[1] if kept is not None and kept[0]() is image else None

    def __len__(self) -> int:
        return len(self._kept)

    def _trim(self) -> None:
        for key, (ref, _) in list(self._kept.items()):
            if ref() is None:  # its picture left the history
                del self._kept[key]
        total = sum(_nbytes(pixmap) for _, pixmap in self._kept.values())
        for key in list(self._kept):
            if total <= self._budget:
                break
            total -= _nbytes(self._kept.pop(key)[1])


def converts_at_once(image: Image.Image) -> bool:
    return image.width * image.height <= CONVERT_AT_ONCE


def stand_in(image: Image.Image) -> tuple[QPixmap, QTransform]:
    """A small pixmap of the picture and the transform that lays it over the whole picture."""
    scale = max(image.size) / STAND_IN_SIDE
    small = image.resize((max(1, round(image.width / scale)), max(1, round(image.height / scale))),
                         Image.Resampling.NEAREST)  # under 1 ms at 4096x4096; a filtered one took 20 ms
    return pil_to_qpixmap(small), QTransform.fromScale(image.width / small.width, image.height / small.height)
