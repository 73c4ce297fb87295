"""The canvas: shows the document (picture + mask overlay) and a live preview; zoom, pan, tools.

Wheel zooms around the pointer; space+drag or middle-drag pans with any tool. Pointer events are
mapped to image pixels and handed to the active tool (studio.ui.canvas_tools), which edits the
document through core operations; the canvas only redraws the boxes the document reports.
Zoom, fit and pan are studio.ui.canvas_navigation's; the preview layer studio.ui.canvas_preview's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QWidget

from studio.core.document import Document
from studio.core.document_changes import DocumentChange
from studio.core.mask import Box
from studio.ui.canvas_navigation import WHEEL_STEP, NavigableView
from studio.ui.canvas_painting import EMPTY_CANVAS_HINT, draw_brush_outline, draw_empty_canvas_hint
from studio.ui.canvas_picture import CanvasPicture
from studio.ui.canvas_preview import PreviewLayer
from studio.ui.canvas_tools import BRUSH, ERASER, HAND, Tool, make_tool
from studio.ui.mask_overlay import MaskOverlayItem, TintedLayer, tinted_layer
from studio.ui.qt_images import pil_to_pixmap_ready_qimage

log = logging.getLogger(__name__)

BIG_FILL = 1024 * 1024  # px: a fill's box this big, over a quarter of the mask or more, is made in a worker thread
MIN_BRUSH, MAX_BRUSH = 1.0, 1024.0


class CanvasView(NavigableView):
    tool_changed = Signal(str)
    brush_changed = Signal()
    stroke_finished = Signal()  # a tool let go: deferred work (a result that landed) may go on
    frame_requested = Signal(int, int, int, int)  # the frame tool asks to extend: left, top, right, bottom

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)  # the scene, with the extent's checkerboard at the bottom
        self.setObjectName("canvas")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        # A file dropped here goes to the window, which opens it: the scene would take the drag and refuse it.
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)

        self._image_item = CanvasPicture(self.image)
        self._scene.addItem(self._image_item)
        self.overlay = MaskOverlayItem()
        self._scene.addItem(self.overlay)
        self.preview = PreviewLayer(self._scene)

        self.document: Document | None = None
        self.empty_hint = EMPTY_CANVAS_HINT  # what an empty canvas says to do first (set_empty_hint)
        # The window's: makes a whole-mask change in a worker thread with its tinted layer (label, operation).
        self.mask_filler: Callable[[str, Callable[[np.ndarray], Box | None]], object] | None = None
        tasks = self._image_item.tasks
        self.destroyed.connect(lambda: tasks.cancel_all())  # a conversion ending later has no view to show it in
        self._space_held = False
        self.brush_size = 48.0
        self.brush_hardness = 0.8
        self._cursor_pos: QPointF | None = None  # in image pixels
        self._tool: Tool = make_tool(HAND, self)
        self._apply_cursor()

    # -- document ------------------------------------------------------------------------------
    def set_document(self, document: Document) -> None:
        self.document = document
        document.add_listener(self._document_changed)
        self._document_changed(DocumentChange(None, True, True, size=True))

    def fill_mask(self, label: str, operation: Callable[[np.ndarray], Box | None], box: Box) -> None:
        """A rectangle or lasso fill over ``box``: one undoable mask edit. Over much of a big mask it is made in a
        worker thread with its tinted layer (mask_filler), as invert is: at 4096x4096 a big lasso held the window
        90-300 ms, and its undo and redo as long again; the layers kept make those a swap."""
        x0, y0, x1, y1 = box
        area = max(0, x1 - x0) * max(0, y1 - y0)
        if self.mask_filler is not None and area >= BIG_FILL and 4 * area >= self.document.mask.size:
            self.mask_filler(label, operation)
        else:
            self.document.edit_mask(label, operation)

    def prepare(self, image: Image.Image, converted: QImage) -> None:
        """Hand over ``image`` already converted for display (qt_images.pil_to_pixmap_ready_qimage, made off
        this thread); when the document next takes that very picture in, the canvas uses it as it is."""
        self._image_item.prepare(image, converted)

    async def convert_ahead(self, image: Image.Image, mask: np.ndarray | None = None) -> None:
        """Convert a picture the document is about to take in (a result, an opened file) in a worker thread: at
        1024x1024 the conversion took this thread 3-8 ms with the engine decoding beside it (a 4096x4096 photo
        150-160 ms); taking the converted one in costs it under 0.1 ms. With a mask coming too (extend, scale),
        its tinted layer is made there as well (100-130 ms at 4096x4096)."""
        tints = self.overlay.tints

        def convert() -> tuple[QImage, TintedLayer | None]:
            return pil_to_pixmap_ready_qimage(image), None if mask is None else tinted_layer(mask, tints)

        try:
            converted, layer = await asyncio.to_thread(convert)
        except Exception:  # the canvas converts it itself then
            log.exception("Converting a picture for display failed")
            return
        self.prepare(image, converted)
        self.overlay.keep(layer)

    def image(self) -> Image.Image | None:
        return None if self.document is None else self.document.image

    def _document_changed(self, change: DocumentChange) -> None:
        doc = self.document
        if change.size:
            self.overlay.set_mask(doc.mask, edited=change.mask_edited, source=change.mask_source)
            self._set_extent(*doc.size)
            if self._auto_fit:
                self.fit()
            self.viewport().update()  # the empty-canvas hint comes and goes with the picture
        elif change.mask and change.box is not None:
            self.overlay.update_region(change.box, change.mask_source, doc.mask)
        if change.image:
            self._image_item.show_change(doc.image, change.box)
            self.clear_preview()

    def converting_regions(self) -> bool:
        """Changed regions of the picture are being converted in a worker thread (the canvas shows them as they
        were until then)."""
        return self._image_item.converting_regions()

    def showing_stand_in(self) -> bool:
        """A big picture is being converted in a worker thread; its rough stand-in is shown."""
        return self._image_item.showing_stand_in()

    # -- mask display ----------------------------------------------------------------------------
    def set_mask_visible(self, visible: bool) -> None:
        self.overlay.setVisible(visible)

    def mask_visible(self) -> bool:
        return self.overlay.isVisible()

    # -- tools ---------------------------------------------------------------------------------
    @property
    def tool(self) -> str:
        return self._tool.name

    def set_tool(self, name: str) -> None:
        if self._tool.active or name == self._tool.name:
            return
        self._tool = make_tool(name, self)
        self._apply_cursor()
        self._update_cursor_area()
        self.tool_changed.emit(name)

    def set_brush(self, size: float | None = None, hardness: float | None = None) -> None:
        self._update_cursor_area()
        if size is not None:
            self.brush_size = min(MAX_BRUSH, max(MIN_BRUSH, float(size)))
        if hardness is not None:
            self.brush_hardness = min(1.0, max(0.0, float(hardness)))
        self._update_cursor_area()
        self.brush_changed.emit()

    def _uses_brush(self) -> bool:
        return self._tool.name in (BRUSH, ERASER)

    def _apply_cursor(self) -> None:
        self.viewport().setCursor(self._tool.cursor)

    # -- preview -------------------------------------------------------------------------------
    def show_preview(self, preview: Image.Image, width: int, height: int,
                     box: tuple[int, int, int, int] | None = None) -> None:
        """Show a denoising preview (latent-sized, or up to 512 px from TAESD) over the result's future
        area (or box)."""
        if box is not None:
            x, y, width, height = box[0], box[1], box[2] - box[0], box[3] - box[1]
        else:
            x = y = 0
        if self.preview.show(preview, x, y, width, height):
            self.viewport().update()
        if box is None and (self.image() is None or self.image().size != (width, height)):
            grew = self._set_extent(max(width, self._extent_w), max(height, self._extent_h))
            if grew and self._auto_fit:
                self._fit_when_free()

    def clear_preview(self) -> None:
        if not self.preview.hide():
            return
        # Back to the picture's extent, and to its fit where the view followed the preview's (a larger job
        # cancelled): it stayed zoomed out as if that picture had arrived.
        if self._set_extent(*(self.document.size if self.document else (0, 0))) and self._auto_fit:
            self._fit_when_free()
        self.viewport().update()

    def has_preview(self) -> bool:
        return self.preview.is_visible()

    # -- painting ------------------------------------------------------------------------------
    def set_empty_hint(self, hint: str) -> None:
        if hint != self.empty_hint:
            self.empty_hint = hint
            self.viewport().update()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        super().drawForeground(painter, rect)
        if self.image() is None and not self.preview.is_visible():
            draw_empty_canvas_hint(painter, self.viewport().rect(), self.empty_hint)
            return
        self._tool.draw(painter)
        if self._uses_brush() and self._cursor_pos is not None and not self._pan_from:
            draw_brush_outline(painter, self._cursor_pos, self.brush_size, self.zoom())

    def _cursor_scene_rect(self) -> QRectF:
        if self._cursor_pos is None:
            return QRectF()
        r = self.brush_size / 2 + 4 / max(self.zoom(), 1e-3)
        return QRectF(self._cursor_pos.x() - r, self._cursor_pos.y() - r, 2 * r, 2 * r)

    def _update_cursor_area(self) -> None:
        rect = self._cursor_scene_rect().united(self._tool.outline_rect())
        if not rect.isNull():
            self.viewport().update(self.mapFromScene(rect).boundingRect().adjusted(-3, -3, 3, 3))

    # -- input ---------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        delta = event.angleDelta().y()
        if delta == 0:
            return super().wheelEvent(event)
        self._auto_fit = False
        self._update_cursor_area()
        self.set_zoom(self.zoom() * (WHEEL_STEP ** (delta / 120)), anchor_under_mouse=True)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if event.key() in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight):
            step = max(1.0, self.brush_size * 0.15)
            self.set_brush(size=self.brush_size + (step if event.key() == Qt.Key.Key_BracketRight else -step))
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self._apply_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._tool.active or self._pan_from is not None:
            event.accept()  # another button while one is held: the stroke or pan under way goes on as it was
            return
        button = event.button()
        pans = button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and (self._space_held or self._tool.name == HAND))
        if pans:
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            self._update_cursor_area()
            event.accept()
            return
        if self._tool.press(self.mapToScene(event.position().toPoint()), button, event.modifiers()):
            self._update_cursor_area()
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            self._pan_to(event.position())
            event.accept()
            return
        self._update_cursor_area()
        self._cursor_pos = self.mapToScene(event.position().toPoint())
        self._tool.move(self._cursor_pos)
        self._update_cursor_area()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            self._pan_from = None
            if self._space_held:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self._apply_cursor()
            self._fit_if_pending()
            event.accept()
            return
        if self._tool.active:
            self._update_cursor_area()
            self._tool.release(self.mapToScene(event.position().toPoint()))
            self._update_cursor_area()
            self.stroke_finished.emit()
            self._fit_if_pending()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self._update_cursor_area()
        self._cursor_pos = None
        super().leaveEvent(event)

    def focusOutEvent(self, event: QEvent) -> None:  # noqa: N802
        self._space_held = False
        super().focusOutEvent(event)

    @property
    def busy(self) -> bool:
        """A tool is mid-gesture: a result landing now should wait for stroke_finished."""
        return self._tool.active
