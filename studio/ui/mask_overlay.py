"""The mask drawn over the picture as a tinted, translucent layer, updated region by region.

The overlay is a premultiplied ARGB32 QImage that numpy edits in place through a view of its pixels,
so a brush stroke recolours only its box and the view repaints only that box. A new mask's layer
covers only the mask's box (an extended canvas's mask is one strip); the first edit outside it
widens the layer to the whole picture.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF
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
        self._mask: np.ndarray | None = None
        self._clear_layer()

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
        if not self._image.isNull():
            self._fill(self._layer_box)
            self.update()

    # -- content -------------------------------------------------------------------------------
    def set_mask(self, mask: np.ndarray) -> None:
        """Show a (new) mask; the item keeps a reference and reads it on update_region."""
        self.prepareGeometryChange()
        self._mask = mask
        # The tinted layer is made when a masked pixel first needs it: a new picture's mask is empty, and
        # allocating and clearing a 1024x1024 layer for it cost the window's thread ~2 ms per new size
        # (a 4096x4096 one 30-70 ms, which is why a mask with pixels gets a layer over its box alone).
        self._clear_layer()
        box = bounding_box(mask)
        if box is not None:
            self._make_layer(box)
            self._fill(box)
        self.update()

    def update_region(self, box: Box) -> None:
        if self._mask is None or not self._cover(box):
            return
        self._fill(box)
        x0, y0, x1, y1 = box
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _clear_layer(self) -> None:
        self._image = QImage()
        self._pixels = np.zeros((0, 0), dtype=np.uint32)
        self._layer_box: Box = (0, 0, 0, 0)  # the part of the mask the layer covers

    def _cover(self, box: Box) -> bool:
        """Make sure the layer covers box, widening it to the whole mask if not; False for a mask of no pixels."""
        lx0, ly0, lx1, ly1 = self._layer_box
        x0, y0, x1, y1 = box
        if not self._image.isNull() and lx0 <= x0 and ly0 <= y0 and x1 <= lx1 and y1 <= ly1:
            return True
        height, width = self._mask.shape
        if not (width and height):
            return False
        covered = self._layer_box if not self._image.isNull() else None
        self._make_layer((0, 0, width, height))
        if covered is not None:
            self._fill(covered)  # the mask holds the truth: tint again what the narrower layer showed
        return True

    def _make_layer(self, box: Box) -> None:
        """A transparent layer over box of the mask."""
        x0, y0, x1, y1 = box
        # Qt owns the pixels; numpy edits them in place through a view of the QImage's own buffer
        # (the other way round, Qt could outlive a numpy buffer that Python had freed).
        self._image = QImage(x1 - x0, y1 - y0, QImage.Format.Format_ARGB32_Premultiplied)
        self._image.fill(0)
        stride = self._image.bytesPerLine() // 4  # ARGB32 rows are whole 32-bit pixels
        raw = np.frombuffer(self._image.bits(), dtype=np.uint32, count=stride * (y1 - y0))
        self._pixels = raw.reshape(y1 - y0, stride)[:, :x1 - x0]
        self._layer_box = box

    def _tint_table(self) -> np.ndarray:
        """The premultiplied 0xAARRGGBB pixel for each of the 256 mask values."""
        alpha = np.arange(256, dtype=np.uint32) * int(self._opacity * 255 + 0.5) // 255
        red, green, blue = (alpha * value // 255 for value in self._color.getRgb()[:3])
        return (alpha << 24) | (red << 16) | (green << 8) | blue

    def _fill(self, box: Box) -> None:
        # One table lookup per pixel: tinting a whole 4096x4096 mask took 150 ms channel by channel, 75-80 ms
        # so; a box of one value (a cleared or inverted empty mask) is one colour, 10 ms.
        x0, y0, x1, y1 = box
        lx0, ly0 = self._layer_box[:2]
        mask = self._mask[y0:y1, x0:x1]
        low = mask.min(initial=255)
        uniform = low == mask.max(initial=0)
        self._pixels[y0 - ly0:y1 - ly0, x0 - lx0:x1 - lx0] = self._tints[low] if uniform else self._tints[mask]

    # -- QGraphicsItem -------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:  # noqa: N802
        height, width = self._mask.shape if self._mask is not None else (0, 0)
        return QRectF(0, 0, width, height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image.isNull():
            return
        x0, y0, x1, y1 = self._layer_box
        exposed = option.exposedRect.toAlignedRect().intersected(QRect(x0, y0, x1 - x0, y1 - y0))
        if not exposed.isEmpty():
            painter.drawImage(exposed, self._image, exposed.translated(-QPoint(x0, y0)))
