"""The canvas's preview layer: a job's denoising preview (or compare's picture before a change) over the picture,
with a checkerboard under it so nothing of the picture shows through where the preview is transparent."""

from __future__ import annotations

from PIL import Image
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene

from studio.ui.qt_images import pil_to_qpixmap

PREVIEW_UPSCALE_TO = 256  # px: latent-sized previews are enlarged to about this before the view scales them


def checkerboard(size: int = 16) -> QBrush:
    """The dark checkerboard shown where a picture (or preview) has no pixels, or transparent ones."""
    tile = QPixmap(size * 2, size * 2)
    tile.fill(QColor("#2a2c33"))
    painter = QPainter(tile)
    painter.fillRect(0, 0, size, size, QColor("#32343c"))
    painter.fillRect(size, size, size, size, QColor("#32343c"))
    painter.end()
    return QBrush(tile)


class PreviewLayer:
    """The preview item and its checkerboard backdrop, added to ``scene`` above the picture and its mask."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.item.setZValue(3)
        self.item.setVisible(False)
        scene.addItem(self.item)
        # Under the preview, the checkerboard: where a preview is transparent (compare's picture before a change,
        # a cut-out), the picture under it must not show through as if it were the earlier one.
        self._backdrop = scene.addRect(QRectF(), Qt.PenStyle.NoPen, checkerboard())
        self._backdrop.setZValue(2.5)
        self._backdrop.setVisible(False)

    def is_visible(self) -> bool:
        return self.item.isVisible()

    def show(self, preview: Image.Image, x: int, y: int, width: int, height: int) -> bool:
        """Show ``preview`` scaled over the scene rectangle (x, y, width, height); True when it was hidden."""
        # Upscale latent-sized previews to about 256 px smoothly here (SD's 64 px 4x, SDXL's 128 px 2x: ~1 ms
        # either way; 4x of SDXL's took 3 ms of this thread 30 times a second); the view's own scaling of a
        # tiny pixmap looks blocky. Bigger (TAESD) ones are shown as they come.
        factor = PREVIEW_UPSCALE_TO // max(preview.size)
        if factor >= 2:
            preview = preview.resize((min(width, preview.width * factor), min(height, preview.height * factor)),
                                     Image.Resampling.BILINEAR)
        pixmap = pil_to_qpixmap(preview)
        self.item.setPixmap(pixmap)
        self.item.setPos(x, y)
        self.item.setTransform(QTransform.fromScale(
            width / max(1, pixmap.width()), height / max(1, pixmap.height())))
        self._backdrop.setRect(QRectF(x, y, width, height))  # in scene coordinates: tiles line up
        if self.item.isVisible():
            return False
        self.item.setVisible(True)
        self._backdrop.setVisible(True)
        return True

    def hide(self) -> bool:
        """Hide the preview and let its pixmap go; True when it was shown."""
        if not self.item.isVisible():
            return False
        self.item.setVisible(False)
        self._backdrop.setVisible(False)
        self.item.setPixmap(QPixmap())
        return True
