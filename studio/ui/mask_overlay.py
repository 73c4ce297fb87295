"""The mask drawn over the picture as a tinted, translucent layer, updated region by region.

The overlay is a premultiplied ARGB32 QImage that numpy edits in place through a view of its pixels,
so a brush stroke recolours only its box and the view repaints only that box.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from studio.core.mask import Box, bounding_box

DEFAULT_COLOR = "#ff3b6b"
DEFAULT_OPACITY = 0.5


class MaskOverlayItem(QGraphicsItem):
    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setZValue(2)
        self._color = QColor(DEFAULT_COLOR)
        self._opacity = DEFAULT_OPACITY
        self._tints = self._tint_table()
        self._pixels = np.zeros((0, 0), dtype=np.uint32)
        self._image = QImage()
        self._mask: np.ndarray | None = None

    # -- style ---------------------------------------------------------------------------------
    @property
    def color(self) -> QColor:
        return QColor(self._color)

    @property
    def overlay_opacity(self) -> float:
        return self._opacity

    def set_style(self, color: QColor | str, opacity: float) -> None:
        self._color = QColor(color)
        self._opacity = min(1.0, max(0.05, opacity))
        self._tints = self._tint_table()
        if self._mask is not None and not self._image.isNull():
            self._fill((0, 0, self._mask.shape[1], self._mask.shape[0]))
            self.update()

    # -- content -------------------------------------------------------------------------------
    def set_mask(self, mask: np.ndarray) -> None:
        """Show a (new) mask; the item keeps a reference and reads it on update_region."""
        self.prepareGeometryChange()
        self._mask = mask
        # The tinted layer is made when a masked pixel first needs it: a new picture's mask is empty, and
        # allocating and clearing a 1024x1024 layer for it cost the window's thread ~2 ms per new size.
        # Only the mask's box is tinted: an extended canvas's mask is often one strip.
        self._image, self._pixels = QImage(), np.zeros((0, 0), dtype=np.uint32)
        box = bounding_box(mask)
        if box is not None and self._make_layer():
            self._fill(box)
        self.update()

    def update_region(self, box: Box) -> None:
        if self._mask is None or not self._make_layer():
            return
        self._fill(box)
        x0, y0, x1, y1 = box
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _make_layer(self) -> bool:
        """The tinted layer for the current mask, made (transparent) if it is not yet; False for no pixels."""
        if not self._image.isNull():
            return True
        height, width = self._mask.shape if self._mask is not None else (0, 0)
        if not (width and height):
            return False
        # Qt owns the pixels; numpy edits them in place through a view of the QImage's own buffer
        # (the other way round, Qt could outlive a numpy buffer that Python had freed).
        self._image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
        self._image.fill(0)
        stride = self._image.bytesPerLine() // 4  # ARGB32 rows are whole 32-bit pixels
        raw = np.frombuffer(self._image.bits(), dtype=np.uint32, count=stride * height)
        self._pixels = raw.reshape(height, stride)[:, :width]
        return True

    def _tint_table(self) -> np.ndarray:
        """The premultiplied 0xAARRGGBB pixel for each of the 256 mask values."""
        alpha = np.arange(256, dtype=np.uint32) * int(self._opacity * 255 + 0.5) // 255
        red, green, blue = (alpha * value // 255 for value in self._color.getRgb()[:3])
        return (alpha << 24) | (red << 16) | (green << 8) | blue

    def _fill(self, box: Box) -> None:
        # One table lookup per pixel: tinting a whole 4096x4096 mask took 150 ms channel by channel, 75 ms so.
        x0, y0, x1, y1 = box
        self._pixels[y0:y1, x0:x1] = self._tints[self._mask[y0:y1, x0:x1]]

    # -- QGraphicsItem -------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:  # noqa: N802
        height, width = self._mask.shape if self._mask is not None else (0, 0)
        return QRectF(0, 0, width, height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image.isNull():
            return
        exposed = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if exposed.isEmpty():
            return
        painter.drawImage(exposed, self._image, exposed)
