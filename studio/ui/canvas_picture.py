"""The document's picture on the canvas: a pixmap item that shows it, converted for display without holding the
window. A picture converted ahead (a result, an opened file) is taken as it is; a changed region is painted over
the pixmap (a big one converted by a worker first); a whole new big picture shows a rough stand-in while a worker
converts it; pictures shown before are swapped back in from those kept (canvas_pixmaps).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from PIL import Image
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QImage, QPainter, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem

from studio.core.mask import Box, union_box
from studio.ui.canvas_pixmaps import KeptPixmaps, converts_at_once, stand_in
from studio.ui.qt_images import ConversionCancelled, pil_to_pixmap_ready_qimage, pil_to_qimage, pil_to_qpixmap
from studio.ui.tasks import Tasks

log = logging.getLogger(__name__)

REGION_AT_ONCE = 512 * 512  # px: a changed region this small is converted on the window's thread (about 1-2 ms)


def loop_running() -> bool:
    """Whether a worker thread's result can come back to this thread (an asyncio loop runs here)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class CanvasPicture(QGraphicsPixmapItem):
    """``current``: the document's picture as it is now (a region converted by a worker is painted only if the
    picture is still the one it was cut from)."""

    def __init__(self, current: Callable[[], Image.Image | None]) -> None:
        super().__init__()
        self.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._current = current
        self._prepared: tuple[Image.Image, QImage] | None = None  # a picture converted ahead (prepare())
        self._shown: weakref.ref[Image.Image] | None = None  # the document picture the pixmap shows, whole
        self._kept = KeptPixmaps()  # the pictures shown before it, whole, while the undo history holds them
        self._converting: Image.Image | None = None  # the picture a worker converts, its stand-in shown meanwhile
        self._conversions = 0  # numbers them: only the newest one goes on
        self._regions: Box | None = None  # changed, converted by a worker before they are painted (_paint_regions)
        self._painting_regions = False
        self.tasks = Tasks()  # the conversions under way (the view cancels them when it goes)

    def prepare(self, image: Image.Image, converted: QImage) -> None:
        """Hand over ``image`` already converted for display (qt_images.pil_to_pixmap_ready_qimage, made off
        this thread); when the document next takes that very picture in, the canvas uses it as it is."""
        self._prepared = (image, converted)

    def _take_prepared(self, image: Image.Image | None) -> QImage | None:
        prepared, self._prepared = self._prepared, None
        return prepared[1] if prepared is not None and prepared[0] is image else None

    def show_change(self, image: Image.Image | None, box: Box | None) -> None:
        """Show the document's picture ``image`` after a change of its ``box`` (None: all of it)."""
        pixmap = self.pixmap()
        prepared = self._take_prepared(image)
        # Over a stand-in, a region is not painted: the whole picture is converted again.
        whole = image is None or box in (None, (0, 0, *image.size)) or self._converting is not None
        x0, y0, x1, y1 = box or (0, 0, 0, 0)
        if whole or pixmap.isNull():
            self._regions = None  # painted with the rest
            self._show_whole(image, prepared)
        elif prepared is not None:
            self._paint(pixmap, box, prepared, QRect(x0, y0, x1 - x0, y1 - y0))
        elif (x1 - x0) * (y1 - y0) <= REGION_AT_ONCE or not loop_running():
            self._paint(pixmap, box, pil_to_qimage(image.crop(box)))
        else:
            # A big region (an undo of an inpaint result): converted by a worker, a strip at a time, and painted
            # when done (a 3000x1300 one held this thread 9-16 ms); until then the canvas shows it as it was.
            self._regions = union_box(self._regions, box)
            self._shown = None  # the pixmap shows no one picture until then
            if not self._painting_regions:
                self._painting_regions = True
                self.tasks.run(self._paint_regions())

    def _paint(self, pixmap: QPixmap, box: Box, image: QImage, part: QRect | None = None) -> None:
        """Paint ``image`` (its ``part``) over the picture's pixmap at the changed region ``box`` (an inpaint result,
        an undo of one). The item lets go of its share of the pixmap first, or painting would copy all of it (a
        4096x4096 one: 50-100 ms)."""
        at = QPoint(box[0], box[1])
        self.setPixmap(QPixmap())
        painter = QPainter(pixmap)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        if part is None:
            painter.drawImage(at, image)
        else:
            painter.drawImage(at, image, part)
        painter.end()
        self.setPixmap(pixmap)
        if self._regions is None:
            self._shown = weakref.ref(self._current())

    async def _paint_regions(self) -> None:
        """Convert the regions changed (self._regions) in a worker thread and paint them, until none is left; one
        changed again meanwhile is converted again from the picture as it is now."""
        try:
            while self._regions is not None:
                image, box = self._current(), self._regions
                try:
                    converted = await asyncio.to_thread(lambda: pil_to_qimage(image.crop(box)))
                except Exception:  # this thread converts it then
                    log.exception("Converting a changed region for display failed")
                    converted = pil_to_qimage(image.crop(box))
                if self._regions is None or self._current() is not image:
                    continue  # painted whole meanwhile, or changed again: the loop goes on with what there is now
                self._regions = None  # the picture is the one converted: no region changed since
                pixmap = self.pixmap()
                if not pixmap.isNull():
                    self._paint(pixmap, box, converted)
        finally:
            self._painting_regions = False

    def converting_regions(self) -> bool:
        """Changed regions of the picture are being converted in a worker thread (the canvas shows them as they
        were until then)."""
        return self._regions is not None

    def _show_whole(self, image: Image.Image | None, prepared: QImage | None) -> None:
        """Show a whole new picture. The pictures shown before it stay converted while they live (in the undo
        history): undoing or redoing a change of the whole canvas (extend, scale, a new picture) swaps back to one,
        where converting a 4096x4096 picture again held this thread 150-240 ms. Any other big picture is converted
        in a worker thread, its rough stand-in shown meanwhile."""
        outgoing = self._shown() if self._shown is not None else None
        if image is not None and image is self._converting and prepared is None:
            return  # already on its way
        current = self.pixmap()
        if outgoing is not None and outgoing is not image:
            self._kept.keep(outgoing, current)
        self._converting = None
        if image is None:
            pixmap = QPixmap()
        elif prepared is not None:
            pixmap = QPixmap.fromImage(prepared)
        elif outgoing is image:
            pixmap = current
        elif (kept := self._kept.take(image)) is not None:
            pixmap = kept
        elif converts_at_once(image) or not loop_running():
            pixmap = pil_to_qpixmap(image)
        else:
            self._converting = image
            self._shown = None
            self._set_pixmap(*stand_in(image))
            self._conversions += 1
            self.tasks.run(self._convert(image, self._conversions))
            return
        self._set_pixmap(pixmap)
        self._shown = None if image is None else weakref.ref(image)

    def _set_pixmap(self, pixmap: QPixmap, transform: QTransform | None = None) -> None:
        self.setPixmap(pixmap)
        self.setTransform(transform or QTransform())

    async def _convert(self, image: Image.Image, number: int) -> None:
        # Given up between strips once another conversion starts (Ctrl+Z held over many big pictures past the kept
        # pixmaps' budget started a conversion for each, all running to the end side by side; and after A, B, A
        # again, the first one of A ran on beside the second).
        try:
            converted = await asyncio.to_thread(pil_to_pixmap_ready_qimage, image,
                                                lambda: self._conversions != number)
        except ConversionCancelled:
            return
        except Exception:  # this thread converts it then
            log.exception("Converting a picture for display failed")
            converted = None
        if self._converting is not image or self._conversions != number:
            return  # another picture came meanwhile
        self._converting = None
        self._set_pixmap(pil_to_qpixmap(image) if converted is None else QPixmap.fromImage(converted))
        self._shown = weakref.ref(image)

    def showing_stand_in(self) -> bool:
        """A big picture is being converted in a worker thread; its rough stand-in is shown."""
        return self._converting is not None
