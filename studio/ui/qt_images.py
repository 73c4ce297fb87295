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


def qimage_to_pil(qimage: QImage) -> Image.Image:
    qimage = qimage.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height = qimage.width(), qimage.height()
    data = bytes(qimage.constBits())[: qimage.bytesPerLine() * height]
    image = Image.frombuffer("RGBA", (width, height), data, "raw", "RGBA", qimage.bytesPerLine(), 1)
    return image.copy()
