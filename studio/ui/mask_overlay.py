"""The mask drawn over the picture as a tinted, translucent layer, updated region by region.

The overlay is a premultiplied ARGB32 QImage that numpy edits in place through a view of its pixels,
so a brush stroke recolours only its box and the view repaints only that box. A new mask's layer
covers only the mask's box (an extended canvas's mask is one strip); the first edit outside it
widens the layer to the whole picture. Tinting a whole 4096x4096 mask takes 100-130 ms, so a
layer can be made ahead in a worker thread (``tinted_layer``, for a mask about to come), and the
layer of the mask shown before a new one is kept: undoing or redoing a whole-canvas change, or a
change of most of the mask in place (invert, clear, grow), swaps it back.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from studio.core.mask import Box, bounding_box
from studio.ui.qt_images import new_qimage

DEFAULT_COLOR = "#ff3b6b"
DEFAULT_OPACITY = 0.5


class TintedLayer(NamedTuple):
    """A mask (as it was: never edited after) and its tinted layer over its box, in the given tints."""

    mask: np.ndarray
    image: QImage
    box: Box
    tints: np.ndarray


def tinted_layer(mask: np.ndarray, tints: np.ndarray, box: Box | None = None) -> TintedLayer | None:
    """The layer over the mask's box (given, or found) for a mask with pixels; None for an empty one. Safe off
    the window's thread: QImage is reentrant."""
    box = box or bounding_box(mask)
    if box is None:
        return None
    image = _new_layer(box, clear=False)
    x0, y0, x1, y1 = box
    _tint(_pixels_of(image), mask[y0:y1, x0:x1], tints)
    return TintedLayer(mask, image, box, tints)


def _new_layer(box: Box, clear: bool) -> QImage:
    # Over a numpy array (new_qimage): a 4096x4096 layer let go of costs the window's thread 0.2 ms, not 4-5 ms.
    x0, y0, x1, y1 = box
    image, rows = new_qimage(x1 - x0, y1 - y0, QImage.Format.Format_ARGB32_Premultiplied)
    if clear:
        rows.fill(0)
    return image


def _pixels_of(image: QImage) -> np.ndarray:
    """A numpy view of the layer's pixels (the layer keeps them alive, wherever they were allocated)."""
    stride = image.bytesPerLine() // 4  # ARGB32 rows are whole 32-bit pixels
    raw = np.frombuffer(image.bits(), dtype=np.uint32, count=stride * image.height())
    return raw.reshape(image.height(), stride)[:, :image.width()]


def _area(box: Box) -> int:
    x0, y0, x1, y1 = box
    return (x1 - x0) * (y1 - y0)


def _same_mask(layer: TintedLayer, mask: np.ndarray, tints: np.ndarray) -> bool:
    # Every 97th row first: a different mask is told from a few percent of it.
    return (layer.mask.shape == mask.shape and np.array_equal(layer.tints, tints)
            and np.array_equal(layer.mask[::97], mask[::97]) and _equal(layer.mask, mask))


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Two masks of one shape are equal, compared 8 pixels at a time where their rows allow (half the time of
    comparing pixels: 1.3 ms where it took 2.5 at 4096x4096)."""
    if a.flags.c_contiguous and b.flags.c_contiguous and a.size % 8 == 0:
        return np.array_equal(a.reshape(-1).view(np.uint64), b.reshape(-1).view(np.uint64))
    return np.array_equal(a, b)


def _at_most_two_layers(kept: list[TintedLayer]) -> list[TintedLayer]:
    """The first of ``kept`` that hold two layers (entries may share one layer, kept by two equal masks)."""
    layers: list[QImage] = []
    result = []
    for k in kept:
        if not any(k.image is layer for layer in layers):
            if len(layers) == 2:
                continue
            layers.append(k.image)
        result.append(k)
    return result


def _distinct(masks: list[np.ndarray | None]) -> list[np.ndarray]:
    """The first two distinct arrays of ``masks``: a layer is kept by two masks at most (each may be 16 MB, and
    the document's own records, which come first, are the ones an undo or redo gives back)."""
    result: list[np.ndarray] = []
    for mask in masks:
        if mask is not None and len(result) < 2 and all(mask is not other for other in result):
            result.append(mask)
    return result


def _find(kept: list[TintedLayer], mask: np.ndarray, tints: np.ndarray, source: np.ndarray | None,
          ) -> TintedLayer | None:
    """The layer kept for exactly this mask: the one made of ``source`` (an array equal to the mask, which no one
    edits) if there is one, else one found by comparing masks."""
    if source is not None:
        known = next((k for k in kept if k.mask is source and np.array_equal(k.tints, tints)), None)
        if known is not None:
            return known
    return next((k for k in kept if _same_mask(k, mask, tints)), None)


def _tint(pixels: np.ndarray, mask: np.ndarray, tints: np.ndarray) -> None:
    # One table lookup per pixel (channel by channel took twice as long): 70 ms for all of a 4096x4096 mask. A box
    # of one value (a cleared mask, an inverted empty one) is one colour, about 10 ms; so is a box the mask covers
    # only a small part of (an undo back to a brush dab), looked up only around its masked pixels: 14 ms.
    low = mask.min(initial=255)
    if low == mask.max(initial=0):
        pixels[...] = tints[low]
        return
    if low == 0:
        x0, y0, x1, y1 = bounding_box(mask)
        if 2 * (x1 - x0) * (y1 - y0) < mask.size:
            pixels[...] = tints[0]
            pixels[y0:y1, x0:x1] = tints[mask[y0:y1, x0:x1]]
            return
    pixels[...] = tints[mask]


class MaskOverlayItem(QGraphicsItem):
    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setZValue(2)
        self._color = QColor(DEFAULT_COLOR)
        self._opacity = DEFAULT_OPACITY
        self.tints = self._tint_table()
        self._mask: np.ndarray | None = None
        self._kept: list[TintedLayer] = []  # made ahead, and the one shown before the current mask
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
        self.tints = self._tint_table()
        if not self._image.isNull():
            self._fill(self._layer_box)
            self.update()

    def _tint_table(self) -> np.ndarray:
        """The premultiplied 0xAARRGGBB pixel for each of the 256 mask values."""
        alpha = np.arange(256, dtype=np.uint32) * int(self._opacity * 255 + 0.5) // 255
        red, green, blue = (alpha * value // 255 for value in self._color.getRgb()[:3])
        return (alpha << 24) | (red << 16) | (green << 8) | blue

    # -- content -------------------------------------------------------------------------------
    def keep(self, layer: TintedLayer | None, shown: np.ndarray | None = None) -> None:
        """Hold a layer made ahead (tinted_layer) for a mask about to come (set_mask, or a change of most of the
        mask). ``shown``: a copy of the mask the current layer shows, so that layer can be kept when the new one
        replaces it (an undo brings it back)."""
        if layer is not None:
            self._kept = _at_most_two_layers([layer, *self._kept])  # and the one shown last before the current
        if shown is not None:
            self._sources = _distinct([shown, *self._sources])  # the layer is as it was: those stay true

    def set_mask(self, mask: np.ndarray, edited: bool = False, source: np.ndarray | None = None) -> None:
        """Show a (new) mask; the item keeps a reference and reads it on update_region. ``edited``: the mask shown
        until now was edited in place without update_region (a history jump held its changes), so the layer shows
        it as it was: that layer is kept only with a copy known to equal what it shows. ``source``: an array equal to
        ``mask`` that no one edits (DocumentChange.mask_source), if known."""
        self.prepareGeometryChange()
        outgoing: list[TintedLayer] = []
        if self._mask is not None and not self._image.isNull() and self._mask is not mask:
            # The mask replaced is never edited again (the document let go of it, or its history keeps it as it
            # is): kept by that very array too, an undo back to it finds the layer without comparing masks.
            outgoing = self._outgoing([] if edited else [self._mask])
        self._mask = mask
        self._clear_layer()
        # The tinted layer is made when a masked pixel first needs it: a new picture's mask is empty, and
        # allocating and clearing a 1024x1024 layer for it cost the window's thread ~2 ms per new size.
        # A kept layer is looked for first: finding the mask's box costs 5 ms at 4096x4096, and it knows its box.
        kept = _find(self._kept, mask, self.tints, source)
        box = kept.box if kept is not None else bounding_box(mask)
        if box is not None:
            layer = kept or tinted_layer(mask, self.tints, box)
            self._show(layer)
            self._shown_as(kept, source)
        self._kept = outgoing
        self.update()

    def update_region(self, box: Box, source: np.ndarray | None = None, mask: np.ndarray | None = None) -> None:
        """Redraw the mask in box; ``source``: as for set_mask (a change of all of the mask: invert, an undo).
        ``mask``: the document's mask now, if it may be another array of the same size (the document takes an undo's
        record back as its mask, and copies it on the next edit); what the layer shows stays true."""
        if mask is not None and self._mask is not None and mask.shape == self._mask.shape:
            self._mask = mask
        if self._mask is None:
            return
        x0, y0, x1, y1 = box
        if 4 * (x1 - x0) * (y1 - y0) >= self._mask.size and self._swap_whole(source):
            self.update()
            return
        if not self._cover(box):
            return
        self._fill(box)
        self._sources = [] if source is None else [source]  # given only for a change of all of the mask
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _swap_whole(self, source: np.ndarray | None = None) -> bool:
        """After a change of most of the mask (invert, clear, grow, an undo of one): show the layer kept for
        exactly this mask, none for an empty mask, or for a mask of a few pixels (an undo back to a brush dab) a
        new layer over them alone, instead of tinting the whole layer again: at 4096x4096 comparing costs 5-7 ms
        where tinting cost 30-80 ms. The layer shown until now is kept in turn, where its mask is known.
        False when most of the layer is masked and no layer was kept for it: it is tinted where it is."""
        mask = self._mask
        match, fresh = _find(self._kept, mask, self.tints, source), False
        if match is None:
            box = bounding_box(mask)
            if box is not None:
                if not self._image.isNull() and 2 * _area(box) >= _area(self._layer_box):
                    return False
                match, fresh = tinted_layer(mask, self.tints, box), True
        outgoing = self._outgoing([])
        if match is None:
            self._clear_layer()
        else:
            self._show(match)
            self._shown_as(None if fresh else match, source)  # a fresh layer's mask is the document's, edited later
        # Two layers at most; none that is the one shown now, which is edited in place from now on.
        kept = [k for k in (*outgoing, *self._kept) if match is None or k.image is not match.image]
        self._kept = _at_most_two_layers(kept)
        return True

    def _outgoing(self, more: list[np.ndarray]) -> list[TintedLayer]:
        """The layer shown now, to keep as it is replaced: by each unedited array known to equal what it shows."""
        if self._image.isNull():
            return []
        return [TintedLayer(mask, self._image, self._layer_box, self.tints)
                for mask in _distinct([*self._sources, *more])]

    def _shown_as(self, kept: TintedLayer | None, source: np.ndarray | None) -> None:
        """The layer now shown is ``kept`` (None: made afresh from the document's mask, which is edited later):
        what it shows equals the masks it was kept by, and ``source``, none of them ever edited."""
        self._sources = _distinct([source, *(k.mask for k in self._kept if kept is not None and k.image is kept.image)])

    def _show(self, layer: TintedLayer) -> None:
        self._image, self._layer_box = layer.image, layer.box
        self._pixels = _pixels_of(self._image)

    def _clear_layer(self) -> None:
        self._image = QImage()
        self._pixels = np.zeros((0, 0), dtype=np.uint32)
        self._layer_box: Box = (0, 0, 0, 0)  # the part of the mask the layer covers
        self._sources: list[np.ndarray] = []  # masks equal to what the layer shows, never edited (none known: [])

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
        self._image, self._layer_box = _new_layer((0, 0, width, height), clear=True), (0, 0, width, height)
        self._pixels = _pixels_of(self._image)
        if covered is not None:
            self._fill(covered)  # the mask holds the truth: tint again what the narrower layer showed
        return True

    def _fill(self, box: Box) -> None:
        x0, y0, x1, y1 = box
        lx0, ly0 = self._layer_box[:2]
        _tint(self._pixels[y0 - ly0:y1 - ly0, x0 - lx0:x1 - lx0], self._mask[y0:y1, x0:x1], self.tints)

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
