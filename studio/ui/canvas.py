"""The canvas: shows the picture, a live preview while a job runs; zoom, pan and fit.

Wheel zooms around the pointer; space+drag or middle-drag pans; the view never edits pixels.
"""

from __future__ import annotations

from PIL import Image
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainter, QPixmap, QTransform, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

from studio.ui.qt_images import pil_to_qpixmap

MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
WHEEL_STEP = 1.15


def _checkerboard(size: int = 16) -> QBrush:
    tile = QPixmap(size * 2, size * 2)
    tile.fill(QColor("#2a2c33"))
    painter = QPainter(tile)
    painter.fillRect(0, 0, size, size, QColor("#32343c"))
    painter.fillRect(size, size, size, size, QColor("#32343c"))
    painter.end()
    return QBrush(tile)


class CanvasView(QGraphicsView):
    zoom_changed = Signal(float)
    image_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        self._scene = QGraphicsScene()
        super().__init__(self._scene, parent)
        self.setObjectName("canvas")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor("#141519"))
        # Pan with space/middle-drag instead: scroll bars would only eat canvas room.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)

        self._backdrop = self._scene.addRect(QRectF(), Qt.PenStyle.NoPen, _checkerboard())
        self._image_item = QGraphicsPixmapItem()
        self._image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._image_item)
        self._preview_item = QGraphicsPixmapItem()
        self._preview_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._preview_item.setZValue(1)
        self._preview_item.setVisible(False)
        self._scene.addItem(self._preview_item)
        self._image: Image.Image | None = None
        self._extent_w = self._extent_h = 0  # the picture's (or the coming result's) size
        self._space_held = False
        self._pan_from: QPointF | None = None
        self._auto_fit = True  # until the person zooms, keep the picture fitted to the window

    # -- content ----------------------------------------------------------------------------
    def image(self) -> Image.Image | None:
        return self._image

    def set_image(self, image: Image.Image | None) -> None:
        self._image = image
        self.clear_preview()
        if image is None:
            self._image_item.setPixmap(QPixmap())
            self._set_extent(0, 0)
        else:
            self._image_item.setPixmap(pil_to_qpixmap(image))
            self._set_extent(image.width, image.height)
        if self._auto_fit:
            self.fit()
        self.viewport().update()  # the empty-canvas hint comes and goes with the picture
        self.image_changed.emit()

    def show_preview(self, preview: Image.Image, width: int, height: int) -> None:
        """Show a (small, latent-sized) denoising preview over the result's future area."""
        # Upscale 4x smoothly here (~1 ms); the view's own scaling of a tiny pixmap looks blocky.
        preview = preview.resize((min(width, preview.width * 4), min(height, preview.height * 4)),
                                 Image.Resampling.BILINEAR)
        pixmap = pil_to_qpixmap(preview)
        self._preview_item.setPixmap(pixmap)
        self._preview_item.setTransform(QTransform.fromScale(
            width / max(1, pixmap.width()), height / max(1, pixmap.height())))
        if not self._preview_item.isVisible():
            self._preview_item.setVisible(True)
            self.viewport().update()
        if self._image is None or (self._image.width, self._image.height) != (width, height):
            grew = self._set_extent(max(width, self._extent_w), max(height, self._extent_h))
            if grew and self._auto_fit:
                self.fit()

    def clear_preview(self) -> None:
        self._preview_item.setVisible(False)
        self._preview_item.setPixmap(QPixmap())
        image = self._image
        self._set_extent(image.width if image else 0, image.height if image else 0)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        """An empty canvas says how to fill it."""
        super().drawForeground(painter, rect)
        if self._image is not None or self._preview_item.isVisible():
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor("#7d8290"))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        painter.setFont(font)
        painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                         "Write a prompt and press Generate (Ctrl+Enter)\nor open a picture (Ctrl+O)")
        painter.restore()

    def has_preview(self) -> bool:
        return self._preview_item.isVisible()

    def _set_extent(self, width: int, height: int) -> bool:
        changed = (width, height) != (self._extent_w, self._extent_h)
        self._extent_w, self._extent_h = width, height
        rect = QRectF(0, 0, width, height)
        self._backdrop.setRect(rect)
        self._backdrop.setVisible(width > 0 and height > 0)
        margin = max(width, height, 256) * 0.5
        self._scene.setSceneRect(rect.adjusted(-margin, -margin, margin, margin))
        return changed

    # -- zoom --------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor_under_mouse: bool = False) -> None:
        factor = min(MAX_ZOOM, max(MIN_ZOOM, factor))
        old_anchor = self.transformationAnchor()
        if not anchor_under_mouse:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setTransform(QTransform.fromScale(factor, factor))
        self.setTransformationAnchor(old_anchor)
        self.zoom_changed.emit(factor)

    def zoom_in(self) -> None:
        self._auto_fit = False
        self.set_zoom(self.zoom() * WHEEL_STEP)

    def zoom_out(self) -> None:
        self._auto_fit = False
        self.set_zoom(self.zoom() / WHEEL_STEP)

    def actual_size(self) -> None:
        self._auto_fit = False
        self.set_zoom(1.0)

    def fit(self) -> None:
        """Fit the picture to the window, and keep it fitted on resize until the person zooms."""
        self._auto_fit = True
        if self._extent_w <= 0 or self._extent_h <= 0:
            self.set_zoom(1.0)
            return
        view = self.viewport().rect().adjusted(24, 24, -24, -24)
        factor = min(view.width() / self._extent_w, view.height() / self._extent_h)
        self.set_zoom(max(MIN_ZOOM, factor))
        self.centerOn(self._extent_w / 2, self._extent_h / 2)

    # -- input -------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        delta = event.angleDelta().y()
        if delta == 0:
            return super().wheelEvent(event)
        self._auto_fit = False
        steps = delta / 120
        self.set_zoom(self.zoom() * (WHEEL_STEP ** steps), anchor_under_mouse=True)
        event.accept()

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001
        super().resizeEvent(event)
        if self._auto_fit:
            self.fit()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space_held):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(int(self.horizontalScrollBar().value() - delta.x()))
            self.verticalScrollBar().setValue(int(self.verticalScrollBar().value() - delta.y()))
            self._auto_fit = False
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            if self._space_held:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def focusOutEvent(self, event: QEvent) -> None:  # noqa: N802
        self._space_held = False
        super().focusOutEvent(event)
