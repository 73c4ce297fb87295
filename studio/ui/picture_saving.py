"""Saving the canvas picture and its mask: the Save dialogs, the name the person chose checked against the picture
types Studio writes (the extension added, another picture type refused, an existing file replaced only if they say
so), and the writing in a worker thread with a sentence when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from PySide6.QtWidgets import QFileDialog

from studio.core.errors import StudioError
from studio.core.images import SAVE_FORMATS, save_image
from studio.core.mask import mask_to_image
from studio.ui.task_dialog import ask

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

SAVE_FILTERS = "PNG image (*.png);;JPEG image (*.jpg *.jpeg);;WebP image (*.webp)"
# Common picture types Pillow has no plugin for (in this version or an older one): a name ending in one is refused.
OTHER_PICTURE_TYPES = frozenset({".svg", ".svgz", ".heic", ".heif", ".avif", ".jxl", ".xcf", ".kra", ".ora", ".exr",
                                 ".hdr", ".dng"})


class PictureSaving:
    """Save Canvas As and Save Mask As, for DocumentActions: its task runner (``run``) and warning box (``warn``)."""

    def __init__(self, window: MainWindow, run: Callable[[Coroutine[Any, Any, Any]], asyncio.Task],
                 warn: Callable[[str, str], Coroutine[Any, Any, None]]) -> None:
        self.window = window
        self.document = window.document
        self.run = run
        self._warn = warn

    def save_image_dialog(self) -> None:
        if self.document.image is None:
            self.window.status.set_message("The canvas is empty; there is nothing to save yet.", error=True)
            return
        path, chosen = QFileDialog.getSaveFileName(self.window, "Save Canvas",
                                                   str(self.window.settings.outputs_dir), SAVE_FILTERS)
        extension = ".jpg" if "JPEG" in chosen else ".webp" if "WebP" in chosen else ".png"
        target = self._save_target(path, SAVE_FORMATS, extension, "Save Canvas",
                                   "it saves pictures as PNG (.png), JPEG (.jpg, .jpeg) or WebP (.webp)")
        if target is not None:
            self.run(self.save_canvas(target))

    def _save_target(self, chosen: str, formats: Iterable[str], extension: str, title: str,
                     saves: str) -> Path | None:
        """The file the person chose, with ``extension`` added when it ends in none of ``formats`` (a name such as
        "Mr. Smith" keeps all of itself); a file of that name, which the file dialog did not ask about, is only
        replaced if they say so. A name ending in another picture type's extension (x.gif) is refused with a
        sentence that says what Studio ``saves``: "x.gif.png" was not what they asked for. None: nothing to save."""
        if not chosen:
            return None
        path = Path(chosen)
        if path.suffix.lower() in formats:
            return path
        if names_a_picture_type(path.name):
            self.run(self._warn(title, f"Studio cannot save {path.suffix} files; {saves}. Nothing was saved."))
            return None
        target = path.with_name(path.name + extension)
        if target.exists() and not ask(self.window, title, f"{target.name} already exists. Replace it?"):
            return None
        return target

    async def save_canvas(self, path: Path) -> bool:
        image, recipe = self.document.image, self.document.recipe
        if image is None:
            return False
        saved = await self._write(save_image, image, path, recipe, what="Save Canvas")
        if saved and self.document.image is image and not self.document.has_mask:  # a mask is not in the file
            self.document.mark_saved()
        return saved

    async def _write(self, writer: Callable[..., Any], *args: Any, what: str) -> bool:
        path = args[1]
        try:
            await asyncio.to_thread(writer, *args)
        except StudioError as exc:
            await self._warn(what, str(exc))
            return False
        except OSError as exc:
            await self._warn(what, f"{Path(path).name} could not be written: {exc.strerror or exc}.")
            return False
        self.window.status.set_message(f"Saved {path}.")
        return True

    def save_mask_dialog(self) -> None:
        if self.document.image is None or not self.document.has_mask:
            self.window.status.set_message("There is no mask to save; paint one first.", error=True)
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Save Mask", str(self.window.settings.outputs_dir),
                                              "PNG image (*.png)")
        target = self._save_target(path, (".png",), ".png", "Save Mask", "it saves masks as PNG (.png)")
        if target is not None:
            self.run(self.save_mask_to(target))

    async def save_mask_to(self, path: Path) -> bool:
        return await self._write(save_image, mask_to_image(self.document.mask.copy()), path, None, what="Save Mask")


def names_a_picture_type(name: str) -> bool:
    """Whether a file name ends in a picture type's extension (x.gif, x.tga, x.svg), not merely has a dot in it
    (Mr. Smith, face.mask v1) or ends in another kind of file's (cat.me, sunset.com): those get the extension.
    Pillow's formats and a few it lacks, not the system's MIME list, which names troff, DOS programs and C source
    and differs from one computer to the next."""
    suffix = Path(name).suffix.lower()
    return suffix in Image.registered_extensions() or suffix in OTHER_PICTURE_TYPES
