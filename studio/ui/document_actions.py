"""Everything the person does to the document outside generating: opening files, clipboard, drag and drop,
undo/redo, mask edits and canvas size (saving is PictureSaving's). Long file work runs off the UI thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QObject, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox, QProgressDialog

from studio.core.comparison import Comparison, MaskChange, compare, mask_change
from studio.core.errors import StudioError
from studio.core import images
from studio.core.images import open_image, read_recipe
from studio.core.inpaint import extend_canvas
from studio.core.mask import Box, bounding_box, grow, invert, mask_from_image
from studio.core.metadata import Recipe
from studio.ui.actions import make_action
from studio.ui.dialogs import ExtendCanvasDialog, ScaleImageDialog
from studio.ui.mask_overlay import TintedLayer, tinted_layer
from studio.ui.modal import modal
from studio.ui.picture_saving import PictureSaving
from studio.ui.qt_images import pil_to_qt_owned_qimage, qimage_to_pil
from studio.ui.tasks import Tasks

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

log = logging.getLogger(__name__)

OPEN_FILTERS = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif);;All files (*)"
# A scale to this many pixels or more takes seconds (16384x10641: ~10 s): it is shown with a busy bar and a Cancel.
BIG_SCALE_PIXELS = 4096 * 4096
OPENABLE = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class DocumentActions(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.document = window.document
        self._tasks = Tasks()
        self.scaling_progress: QProgressDialog | None = None  # the busy bar of a big scale under way
        self._whole_changes = asyncio.Lock()  # one change of the whole canvas or mask at a time
        self.saving = PictureSaving(window, self.run, self._warn)
        a = self._action
        self.open = a("&Open Image…", "open", QKeySequence.StandardKey.Open, self.open_image_dialog)
        self.save = a("&Save Canvas As…", "save", QKeySequence.StandardKey.Save, self.saving.save_image_dialog,
                      "Save the canvas picture as PNG, JPEG or WebP")
        self.open_mask = a("Open &Mask…", "layers-mask", None, self.open_mask_dialog,
                           "Load a mask from a picture (white = regenerate)")
        self.save_mask = a("Save Mas&k As…", "save-as", None, self.saving.save_mask_dialog,
                           "Save the mask as a PNG")
        self.undo = a("&Undo", "undo", QKeySequence.StandardKey.Undo, self.document_undo)
        self.redo = a("&Redo", "redo", None, self.document_redo)
        self.redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.document.add_listener(self._name_history_actions)
        self.copy = a("&Copy Picture", "copy", QKeySequence.StandardKey.Copy, self.copy_picture)
        self.copy_masked = a("Copy &Masked Area", "copy", "Ctrl+Shift+C", self.copy_masked_area,
                             "Copy the masked part of the picture, transparent elsewhere")
        self.paste = a("&Paste", "paste", QKeySequence.StandardKey.Paste, self.paste_from_clipboard)
        self.extend = a("&Extend Canvas…", "extend", None, self.extend_dialog,
                        "Add pixels on any side and fill them (outpainting)")
        self.scale = a("&Scale Image…", "scale", None, self.scale_dialog)
        self.invert_mask = a("&Invert Mask", "invert", "Ctrl+I", self.invert)
        self.clear_mask = a("&Clear Mask", "mask-clear", "Ctrl+Shift+A", self.clear)

    def _action(self, text: str, icon_name: str, shortcut: Any, slot: Callable[[], Any], tip: str = "") -> QAction:
        return make_action(self.window, text, icon_name, shortcut, slot, tip)

    def run(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        return self._tasks.run(coro)

    async def _warn(self, title: str, text: str) -> None:
        await modal(lambda: QMessageBox.warning(self.window, title, text))

    def _busy_refusal(self) -> bool:
        """Undo and whole-document changes wait until the brush is let go."""
        return self.window.canvas.busy

    # -- history ---------------------------------------------------------------------------------
    def document_undo(self) -> None:
        # Said, so the line no longer shows a message about the step just taken back ("... the picture is unchanged").
        doc = self.document
        if not self._busy_refusal() and doc.undo():
            self.window.status.set_message(f"Undid {doc.redo_description()}.")

    def document_redo(self) -> None:
        doc = self.document
        if not self._busy_refusal() and doc.redo():
            self.window.status.set_message(f"Redid {doc.undo_description()}.")

    def _name_history_actions(self, _change: object = None) -> None:
        """The Edit menu names the step each would take back or make again, as the status line then says it."""
        for action, word, step in ((self.undo, "Undo", self.document.undo_description()),
                                   (self.redo, "Redo", self.document.redo_description())):
            text = f"&{word} {step.replace('&', '&&')}".rstrip()
            if action.text() != text:  # a brush's every dab tells the document's listeners
                action.setText(text)
                action.setToolTip(f"{word} {step}".rstrip())

    # -- pictures --------------------------------------------------------------------------------
    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open image", "", OPEN_FILTERS)
        if path:
            self.run(self.open_path(Path(path)))

    async def open_path(self, path: Path) -> bool:
        """Open a picture as the document; on failure the document is untouched."""
        try:
            image = await asyncio.to_thread(open_image, path)
            recipe = await asyncio.to_thread(_recipe_or_none, path)
        except StudioError as exc:
            await self._warn("Open image", str(exc))
            return False
        await self.take_in(image, f"Open {path.name}", recipe)
        self.document.mark_saved()  # the file holds it: closing now loses nothing
        self.window.status.set_message(f"Opened {path.name} ({image.width}×{image.height}).")
        return True

    async def take_in(self, image: Image.Image, label: str, recipe: Recipe | None = None) -> None:
        """The picture as the document's, as an opened one is: converted for display and compared with the canvas
        picture in worker threads first, and a stroke begun meanwhile finished on the picture it began on."""
        compared = await self.take_in_ahead(image)
        await self._brush_let_go()
        self.document.set_image(image, label, recipe, compared=compared)

    async def replace_in(self, image: Image.Image, mask: np.ndarray, label: str) -> None:
        """A new picture and mask at once as the document's, converted for display in a worker thread first, and a
        stroke begun meanwhile finished on the picture it began on."""
        await self.window.canvas.convert_ahead(image, mask)
        await self._brush_let_go()
        self.document.replace_all(label, image, mask)

    async def take_in_ahead(self, image: Image.Image) -> Comparison | None:
        """Convert a picture the document is about to take in for display, and compare it with the canvas picture
        of its size, in worker threads (at 4096x4096 the conversion held the window 150 ms, the comparison 50-65
        ms, cutting the parts the undo step keeps 5-10 ms): Document.set_image's ``compared``."""
        current, canvas = self.document.image, self.window.canvas
        if current is None or (current.size, current.mode) != (image.size, image.mode):
            await canvas.convert_ahead(image)
            return None
        compared, _ = await asyncio.gather(asyncio.to_thread(compare, current, image), canvas.convert_ahead(image))
        return compared

    # -- masks -----------------------------------------------------------------------------------
    def open_mask_dialog(self) -> None:
        if self.document.image is None:
            self.window.status.set_message("Open or generate a picture before loading a mask.", error=True)
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Open mask", "", OPEN_FILTERS)
        if path:
            self.run(self.open_mask_path(Path(path)))

    async def open_mask_path(self, path: Path) -> bool:
        try:
            picture = await asyncio.to_thread(partial(open_image, path, keep_mode=True))  # 16-bit grey stays so
        except StudioError as exc:
            await self._warn("Open mask", str(exc))
            return False

        def fitted(current: np.ndarray) -> np.ndarray:  # at the picture's size when its turn comes
            return mask_from_image(picture, (current.shape[1], current.shape[0]))

        await self._changed_mask(f"Open mask {path.name}", fitted)
        if picture.size != self.document.size:
            self.window.status.set_message(
                f"The mask was {picture.width}×{picture.height}; it was scaled to the picture's size.")
        return True

    def invert(self) -> asyncio.Task | None:
        return self._change_mask("Invert mask", invert)

    def clear(self) -> asyncio.Task | None:
        return self._change_mask("Clear mask", np.zeros_like)

    def grow(self, pixels: int) -> asyncio.Task | None:
        label = f"Grow mask {pixels} px" if pixels > 0 else f"Shrink mask {-pixels} px"
        return self._change_mask(label, lambda mask: grow(mask, pixels))

    def _change_mask(self, label: str, make: Callable[[np.ndarray], np.ndarray]) -> asyncio.Task | None:
        if self.document.image is None or self._busy_refusal():
            return None
        return self.run(self._changed_mask(label, make))

    def fill_mask(self, label: str, operation: Callable[[np.ndarray], Box | None]) -> asyncio.Task:
        """A big rectangle or lasso fill (the canvas's mask_filler), made in a worker thread as invert is."""

        def make(current: np.ndarray) -> np.ndarray:
            mask = current.copy()
            operation(mask)
            return mask

        return self.run(self._changed_mask(label, make))

    async def _changed_mask(self, label: str, make: Callable[[np.ndarray], np.ndarray]) -> None:
        """A new whole mask (invert, clear, grow, a mask file), made in a worker thread with its tinted layer: at
        4096x4096 inverting held the window 74-86 ms. It waits for the whole-canvas changes asked before it and
        works on their result. If the person edits the mask meanwhile, it is made again here, from their mask."""
        async with self._whole_changes:
            doc, overlay = self.document, self.window.canvas.overlay
            await self._brush_let_go()
            if doc.image is None:
                return
            revision, current, tints = doc.revision, doc.mask, overlay.tints

            def work() -> tuple[MaskChange, TintedLayer | None, np.ndarray]:
                change = mask_change(revision, current, make(current))
                # The mask as it is, for the layer shown now: the change's own copy where it changed all of it (the
                # history keeps that very array, so an undo finds the layer by it without comparing masks).
                whole = change.box == (0, 0, current.shape[1], current.shape[0])
                return change, tinted_layer(change.mask, tints), change.before if whole else current.copy()

            change, layer, shown = await asyncio.to_thread(work)
            await self._brush_let_go()
            if doc.image is None:
                return
            if doc.revision != revision:  # edited meanwhile: made again, from the person's mask
                doc.set_mask(label, make(doc.mask))
                return
            overlay.keep(layer, shown)
            doc.apply_mask_change(label, change)

    async def _brush_let_go(self) -> None:
        while self._busy_refusal():  # a stroke under way: the mask changes once it is let go
            await asyncio.sleep(0.02)

    # -- clipboard and drops ---------------------------------------------------------------------
    def copy_picture(self) -> asyncio.Task | None:
        image = self.document.image
        if image is None:
            return None
        return self.run(self._to_clipboard(lambda: image, "Copied the picture."))

    def copy_masked_area(self) -> asyncio.Task | None:
        doc = self.document
        box = bounding_box(doc.mask) if doc.image is not None else None
        if box is None:
            self.window.status.set_message("There is no mask to copy; paint one first.", error=True)
            return None
        x0, y0, x1, y1 = box
        return self.run(self._to_clipboard(partial(masked_cut, doc.image, doc.mask[y0:y1, x0:x1].copy(), box),
                                           f"Copied the masked area ({x1 - x0}×{y1 - y0})."))

    async def _to_clipboard(self, picture: Callable[[], Image.Image], message: str) -> None:
        """Make and convert the picture in a worker thread (a 4096x4096 one held the window 74-98 ms); the
        clipboard takes it on this thread."""
        # In Qt's own memory: the clipboard keeps it past this window (and past Python, at exit), and one over a
        # numpy array released it then, after the interpreter was gone: a crash on quitting.
        qimage = await asyncio.to_thread(lambda: pil_to_qt_owned_qimage(picture()))
        QGuiApplication.clipboard().setImage(qimage)
        self.window.status.set_message(message)

    def paste_from_clipboard(self) -> None:
        self.open_mime(QGuiApplication.clipboard().mimeData(), "Paste")

    @staticmethod
    def accepts(mime: QMimeData) -> bool:
        return mime.hasImage() or any(Path(u.toLocalFile()).suffix.lower() in OPENABLE
                                      for u in mime.urls() if u.isLocalFile())

    def open_mime(self, mime: QMimeData | None, label: str) -> bool:
        """Open the first picture file in mime, else its image data. False if there is neither."""
        if mime is None:
            return False
        for url in mime.urls():
            path = Path(url.toLocalFile()) if url.isLocalFile() else None
            if path is not None and path.suffix.lower() in OPENABLE:
                self.run(self.open_path(path))
                return True
        if mime.hasImage():
            qimage = mime.imageData()
            if qimage is not None and not qimage.isNull():
                self.run(self._take_pasted(qimage, label))
                return True
        self.window.status.set_message("There is no picture on the clipboard.", error=True)
        return False

    async def _take_pasted(self, qimage: QImage, label: str) -> None:
        """Convert pasted image data in worker threads: a 4096x4096 picture held the window 150-250 ms."""
        if self._refused_as_too_large(qimage.width(), qimage.height(), "pasted"):
            return
        image = await asyncio.to_thread(qimage_to_pil, qimage)
        await self.take_in(image, label)
        self.window.status.set_message(f"{label}: {image.width}×{image.height} picture.")

    # -- canvas size -----------------------------------------------------------------------------
    def extend_dialog(self) -> None:
        doc = self.document
        if doc.image is None:
            self.window.status.set_message("Open or generate a picture before extending it.", error=True)
            return
        dialog = ExtendCanvasDialog(doc.size, self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.extend_canvas(*dialog.amounts(), fill=dialog.fill_check.isChecked())

    def extend_canvas(self, left: int, top: int, right: int, bottom: int, fill: bool) -> asyncio.Task | None:
        """Extend in a worker thread, then fill the new area by inpainting if asked (the frame tool does):
        on this thread, extending a 4096x4096 picture held the window 1.1-1.4 s."""
        if self.document.image is None or not any((left, top, right, bottom)) or self._busy_refusal():
            return None
        return self.run(self._extend_canvas((left, top, right, bottom), fill))

    async def _extend_canvas(self, amounts: tuple[int, int, int, int], fill: bool) -> None:
        left, top, right, bottom = amounts
        changed = await self._resized(lambda image, mask: extend_canvas(image, mask, *amounts), "extended", "extend",
                                      lambda width, height: (width + left + right, height + top + bottom))
        if changed is None:
            return
        image, mask, record, masked = changed
        before = self.document.image
        self.document.replace_all(f"Extend canvas to {image.width}×{image.height}", image, mask,
                                  self.document.recipe, record=record, masked=masked)
        self.window.canvas.set_mask_visible(True)
        self.window.mask_toolbar.show_mask_action.setChecked(True)
        # Control guides made for the picture are extended with it (before the fill job takes them).
        problems = await self.window.prompt_panel.control_box.follow_extend(before, image, amounts)
        if problems:  # no fill job with a guide that no longer lies on the picture
            then = " The canvas is extended; change or remove that guide, then press Generate to fill it." if fill \
                else ""
            self.window.status.set_message(" ".join(problems) + then, error=True)
        elif fill:
            self.window.generate()
        else:
            self.window.status.set_message(f"Extended the canvas to {image.width}×{image.height}.")

    def scale_dialog(self) -> None:
        doc = self.document
        if doc.image is None:
            return
        dialog = ScaleImageDialog(doc.size, self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.scale_image(*dialog.new_size())

    def scale_image(self, width: int, height: int) -> asyncio.Task | None:
        """Scale in a worker thread: on this thread, 2048x2048 to 4096x4096 held the window 0.42-0.47 s."""
        doc = self.document
        if doc.image is None or (width, height) == doc.size or self._busy_refusal():
            return None
        self.window.status.set_message(f"Scaling to {width}×{height}…")
        task = self.run(self._scale_image(width, height))
        if width * height >= BIG_SCALE_PIXELS:
            self.scaling_progress = self._show_scaling(task, width, height)
        return task

    def _show_scaling(self, task: asyncio.Task, width: int, height: int) -> QProgressDialog:
        """A busy bar with a Cancel button while a big scale runs in its worker thread (the window keeps drawing);
        Cancel leaves the picture as it is (the thread's result is dropped when it ends)."""
        progress = QProgressDialog(f"Scaling the picture to {width}×{height}…", "Cancel", 0, 0, self.window)
        progress.setWindowTitle("Scale Image")
        progress.setWindowModality(Qt.WindowModality.WindowModal)  # no edit meanwhile that the scale would drop
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.setMinimumDuration(0)
        cancel = partial(self._cancel_scaling, task, f"{width}×{height}")
        progress.canceled.connect(cancel)
        progress.rejected.connect(cancel)  # closed or put away otherwise: no scale left running unseen
        task.add_done_callback(lambda _: self._scaling_ended(progress))
        progress.show()
        return progress

    def _scaling_ended(self, progress: QProgressDialog) -> None:
        progress.close()  # (its close says canceled, which the ended task no longer hears)
        progress.deleteLater()
        if self.scaling_progress is progress:
            self.scaling_progress = None

    def _cancel_scaling(self, task: asyncio.Task, size: str) -> None:
        if task.cancel():
            self.window.status.set_message(f"Scaling to {size} was cancelled; the picture is unchanged.")

    async def _scale_image(self, width: int, height: int) -> None:
        changed = await self._resized(lambda image, mask: scaled(image, mask, width, height), "scaled", "scale",
                                      lambda *_: (width, height))
        if changed is not None:
            image, mask, record, masked = changed
            self.document.replace_all(f"Scale to {width}×{height}", image, mask, self.document.recipe, record=record,
                                      masked=masked)
            self.window.status.set_message(f"Scaled to {width}×{height}.")

    async def _resized(self, work: Callable[[Image.Image, np.ndarray], tuple[Image.Image, np.ndarray]], done: str,
                       verb: str, new_size: Callable[[int, int], tuple[int, int]],
                       ) -> tuple[Image.Image, np.ndarray, np.ndarray, bool] | None:
        """A new size's picture, mask, a copy of the mask and whether it masks anything (Document.replace_all's
        ``record`` and ``masked``), made in a worker thread and converted for display there (its layer tinted from
        the copy), or None.

        ``new_size``: the size the work makes of the picture's, refused with a sentence past Studio's pixel limit
        (Studio could not open such a picture again, nor recover it after a crash).

        Size changes run one after another: a second frame dragged before the first is in extends its result.
        If the person changes the picture or mask meanwhile, their work is kept and the change is dropped with
        a sentence."""
        async with self._whole_changes:
            doc = self.document
            if doc.image is None or self._busy_refusal():
                return None
            if self._refused_as_too_large(*new_size(*doc.size), done):
                return None
            revision = doc.revision

            def made(image: Image.Image, mask: np.ndarray) -> tuple[Image.Image, np.ndarray, np.ndarray, bool]:
                # Read here, not copied on the window's thread (16 MB at 4096x4096: 3-50 ms there, most of it the
                # new memory's first touch); ``work`` makes a new mask. Painted on meanwhile, the mask may be read
                # half-changed: the revision then moved on, and the result is dropped below.
                image, mask = work(image, mask)
                # The history's record of the new mask, and whether it masks anything, found here too.
                return image, mask, mask.copy(), bool(mask.any())

            try:
                image, mask, record, masked = await asyncio.to_thread(made, doc.image, doc.mask)
            except Exception as exc:  # noqa: BLE001 - told as a sentence; the document is unchanged
                log.exception("The picture could not be %s", done)
                reason = "there was not enough memory" if isinstance(exc, MemoryError) else str(exc) or repr(exc)
                self.window.status.set_message(f"The picture could not be {done} ({reason}); it is unchanged.",
                                               error=True)
                return None
            await self.window.canvas.convert_ahead(image, record)
            if self.document.revision == revision and not self._busy_refusal():
                return image, mask, record, masked
        self.window.status.set_message(f"The picture or mask changed while it was being {done}, so it was not "
                                       f"{done}; {verb} it again.", error=True)
        return None

    def _refused_as_too_large(self, width: int, height: int, done: str) -> bool:
        if not images.too_large(width, height):
            return False
        self.window.status.set_message(f"A {width}×{height} picture would be too large for Studio to open again "
                                       f"(over {images.MAX_PIXELS:,} pixels), so it was not {done}; the picture is "
                                       "unchanged.", error=True)
        return True

    def open_folder(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def _recipe_or_none(path: Path) -> Recipe | None:
    try:
        return read_recipe(path)
    except (StudioError, OSError, ValueError, TypeError, KeyError):
        return None  # a picture without a readable recipe is still a picture


def scaled(image: Image.Image, mask: np.ndarray, width: int, height: int) -> tuple[Image.Image, np.ndarray]:
    """The picture (Lanczos) and its mask (bilinear) at a new size."""
    return (image.resize((width, height), Image.Resampling.LANCZOS),
            np.asarray(Image.fromarray(mask, "L").resize((width, height), Image.Resampling.BILINEAR)))


def masked_cut(image: Image.Image, mask: np.ndarray, box: Box) -> Image.Image:
    """The picture's part in box, transparent where the mask (its part in box) is not."""
    cut = image.crop(box).convert("RGBA")
    alpha = np.minimum(np.asarray(cut.getchannel("A")), mask)
    cut.putalpha(Image.fromarray(alpha, "L"))
    return cut
