"""PIL <-> Qt image conversion (copies, so neither side shares memory with the other)."""

from __future__ import annotations

from PIL import Image
from PySide6.QtGui import QImage, QPixmap


def pil_to_qimage(image: Image.Image) -> QImage:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    fmt = QImage.Format.Format_RGBA8888 if image.mode == "RGBA" else QImage.Format.Format_RGB888
    data = image.tobytes()
    channels = 4 if image.mode == "RGBA" else 3
    return QImage(data, image.width, image.height, image.width * channels, fmt).copy()


def pil_to_qpixmap(image: Image.Image) -> QPixmap:
    return QPixmap.fromImage(pil_to_qimage(image))


def pil_to_pixmap_ready_qimage(image: Image.Image) -> QImage:
    """``image`` in the format a raster QPixmap keeps (32-bit, alpha premultiplied), so QPixmap.fromImage
    only copies it. Made off the main thread (QImage is reentrant, QPixmap is not): for a 1024x1024 result
    the conversion took that thread 3-8 ms while the engine decoded beside it, ~0.4 ms is left."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    alpha = image.mode == "RGBA"
    data = image.tobytes()  # kept alive until the conversion below has made its own copy
    packed = QImage(data, image.width, image.height, image.width * (4 if alpha else 3),
                    QImage.Format.Format_RGBA8888 if alpha else QImage.Format.Format_RGB888)
    return packed.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied if alpha else QImage.Format.Format_RGB32)


def qimage_to_pil(qimage: QImage) -> Image.Image:
    """RGBA when the QImage has an alpha channel, else RGB."""
    has_alpha = qimage.hasAlphaChannel()
    qimage = qimage.convertToFormat(QImage.Format.Format_RGBA8888 if has_alpha else QImage.Format.Format_RGB888)
    width, height = qimage.width(), qimage.height()
    mode = "RGBA" if has_alpha else "RGB"
    data = bytes(qimage.constBits())[: qimage.bytesPerLine() * height]
    return Image.frombuffer(mode, (width, height), data, "raw", mode, qimage.bytesPerLine(), 1).copy()
