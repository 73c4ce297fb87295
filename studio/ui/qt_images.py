"""PIL <-> Qt image conversion (copies, so neither side shares memory with the other).

Big pictures are converted a strip of rows at a time. These conversions run in worker threads, but a Qt call
holds Python's interpreter lock for all of its work: converting or copying a whole 4096x4096 picture in one call
held the window's thread 35-50 ms as surely as doing it there. A strip's call holds it a few milliseconds, and
Pillow's and numpy's copies between them let go of it.

A big QImage made here keeps its pixels in a numpy array (new_qimage): numpy asks Linux for huge pages for it, so
letting go of a 4096x4096 picture's pixmap costs the window's thread 0.2-0.5 ms where Qt's own allocation (4 KiB
pages, each given back in turn) cost it 4-5 ms, and an undo that drops two of them held it 10-20 ms.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image
from PySide6.QtCore import QRect
from PySide6.QtGui import QImage, QPixmap

STRIP_BYTES = 4 * 2**20  # about this much of a picture per Qt call (a few ms of the interpreter lock)


class ConversionCancelled(Exception):
    """A conversion given up between strips: its picture is no longer wanted."""


def _rgb_or_rgba(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if "A" in image.getbands() else "RGB")


def _over_bytes(image: Image.Image) -> tuple[QImage, bytes]:
    """A QImage over ``image``'s pixels (RGB or RGBA), valid only while the bytes live."""
    alpha = image.mode == "RGBA"
    data = image.tobytes()
    fmt = QImage.Format.Format_RGBA8888 if alpha else QImage.Format.Format_RGB888
    return QImage(data, image.width, image.height, image.width * (4 if alpha else 3), fmt), data


def new_qimage(width: int, height: int, fmt: QImage.Format) -> tuple[QImage, np.ndarray]:
    """A new QImage (not cleared) over a numpy array of its rows, which it keeps alive (PySide holds a reference
    for as long as Qt uses the pixels, QPixmap.fromImage's pixmap included), and that array, writable in place
    (rows 4-byte aligned, as Qt's own are). Safe off the window's thread."""
    depth = QImage.toPixelFormat(fmt).bitsPerPixel() // 8
    if depth < 1 or width <= 0 or height <= 0:
        raise ValueError(f"no {width}x{height} QImage in {fmt}")
    stride = (width * depth + 3) // 4 * 4
    rows = np.empty((height, stride), np.uint8)
    return QImage(rows, width, height, stride, fmt), rows


def _qt_owned_qimage(width: int, height: int, fmt: QImage.Format) -> tuple[QImage, np.ndarray]:
    """As new_qimage, but the pixels are in memory Qt allocated; the array is a view of them, writable in place."""
    qimage = QImage(width, height, fmt)
    if qimage.isNull():
        raise MemoryError(f"Qt could not make a {width}x{height} picture")
    return qimage, np.frombuffer(qimage.bits(), np.uint8).reshape(height, qimage.bytesPerLine())


def _strips(height: int, width: int) -> range:
    return range(0, height, max(1, STRIP_BYTES // max(1, width * 4)))


def _converted(image: Image.Image, target: QImage.Format | None,
               cancelled: Callable[[], bool] | None = None, qt_owned: bool = False) -> QImage:
    """``image`` as a new QImage in ``target``'s format (None: RGB888 or RGBA8888, the picture's own layout).
    ``cancelled`` is asked before each strip: true, the conversion stops there (ConversionCancelled).
    ``qt_owned``: its pixels in memory Qt allocated (else a numpy array's, new_qimage)."""
    image = _rgb_or_rgba(image)
    width, height = image.size
    own = QImage.Format.Format_RGBA8888 if image.mode == "RGBA" else QImage.Format.Format_RGB888
    result, rows = (_qt_owned_qimage if qt_owned else new_qimage)(width, height, own if target is None else target)
    step = _strips(height, width).step
    for top in _strips(height, width):
        if cancelled is not None and cancelled():
            raise ConversionCancelled
        bottom = min(height, top + step)
        part = image if (top, bottom) == (0, height) else image.crop((0, top, width, bottom))
        strip, _data = _over_bytes(part)  # the bytes live until the strip is copied
        if target is not None:
            strip = strip.convertToFormat(target)  # Qt's own conversion, premultiplying alpha as Qt does
        pixels = np.frombuffer(strip.constBits(), np.uint8).reshape(bottom - top, strip.bytesPerLine())
        rows[top:bottom, :pixels.shape[1]] = pixels
    return result


def pil_to_qimage(image: Image.Image) -> QImage:
    return _converted(image, None)


def pil_to_qt_owned_qimage(image: Image.Image) -> QImage:
    """``image`` as a QImage whose pixels are in Qt's own memory, for what outlives Python (the clipboard keeps its
    picture past the interpreter, and one over a numpy array crashed Studio on quitting). Written a strip at a time
    by numpy, which lets go of the interpreter lock: QImage.copy() of a 4096x4096 picture held it 24-28 ms."""
    return _converted(image, None, qt_owned=True)


def pil_to_qpixmap(image: Image.Image) -> QPixmap:
    return QPixmap.fromImage(pil_to_pixmap_ready_qimage(image))


def pil_to_pixmap_ready_qimage(image: Image.Image, cancelled: Callable[[], bool] | None = None) -> QImage:
    """``image`` in the format a raster QPixmap keeps (32-bit, alpha premultiplied), so that QPixmap.fromImage
    takes it as it is. Safe off the main thread, which is what it is for: QImage is reentrant, QPixmap is not.
    ``cancelled``: asked between strips; true, it stops (ConversionCancelled)."""
    alpha = _rgb_or_rgba(image).mode == "RGBA"
    return _converted(image, QImage.Format.Format_ARGB32_Premultiplied if alpha else QImage.Format.Format_RGB32,
                      cancelled)


def qimage_to_pil(qimage: QImage) -> Image.Image:
    """RGBA when the QImage has an alpha channel, else RGB."""
    has_alpha = qimage.hasAlphaChannel()
    fmt = QImage.Format.Format_RGBA8888 if has_alpha else QImage.Format.Format_RGB888
    mode = "RGBA" if has_alpha else "RGB"
    width, height = qimage.width(), qimage.height()
    result = Image.new(mode, (width, height))
    step = _strips(height, width).step
    for top in _strips(height, width):
        rows = min(step, height - top)
        strip = qimage.copy(QRect(0, top, width, rows)).convertToFormat(fmt)
        data = bytes(strip.constBits())[: strip.bytesPerLine() * rows]
        result.paste(Image.frombuffer(mode, (width, rows), data, "raw", mode, strip.bytesPerLine(), 1), (0, top))
    return result
