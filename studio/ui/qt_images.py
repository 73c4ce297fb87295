"""PIL <-> Qt image conversion (copies, so neither side shares memory with the other)."""

from __future__ import annotations

from PIL import Image
from PySide6.QtGui import QImage, QPixmap


def _over_bytes(image: Image.Image) -> tuple[QImage, bytes]:
    """A QImage over ``image``'s pixels (RGB, or RGBA where it has alpha), valid only while the bytes live."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    alpha = image.mode == "RGBA"
    data = image.tobytes()
    fmt = QImage.Format.Format_RGBA8888 if alpha else QImage.Format.Format_RGB888
    return QImage(data, image.width, image.height, image.width * (4 if alpha else 3), fmt), data


def pil_to_qimage(image: Image.Image) -> QImage:
    qimage, _data = _over_bytes(image)  # the bytes live until the copy is made
    return qimage.copy()


def pil_to_qpixmap(image: Image.Image) -> QPixmap:
    return QPixmap.fromImage(pil_to_qimage(image))


def pil_to_pixmap_ready_qimage(image: Image.Image) -> QImage:
    """``image`` in the format a raster QPixmap keeps (32-bit, alpha premultiplied), so that QPixmap.fromImage
    takes it as it is. Safe off the main thread, which is what it is for: QImage is reentrant, QPixmap is not."""
    qimage, _data = _over_bytes(image)  # the bytes live until the conversion has made its own copy
    return qimage.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied if qimage.hasAlphaChannel()
                                  else QImage.Format.Format_RGB32)


def qimage_to_pil(qimage: QImage) -> Image.Image:
    """RGBA when the QImage has an alpha channel, else RGB."""
    has_alpha = qimage.hasAlphaChannel()
    qimage = qimage.convertToFormat(QImage.Format.Format_RGBA8888 if has_alpha else QImage.Format.Format_RGB888)
    width, height = qimage.width(), qimage.height()
    mode = "RGBA" if has_alpha else "RGB"
    data = bytes(qimage.constBits())[: qimage.bytesPerLine() * height]
    return Image.frombuffer(mode, (width, height), data, "raw", mode, qimage.bytesPerLine(), 1).copy()
