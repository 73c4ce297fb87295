"""Control guides extended with the canvas picture (outpainting), remembered so that undoing the extension takes
each guide back to its own picture and redoing it extends the guide again."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image

from studio.core.control import ControlGuide, guide_label
from studio.core.errors import StudioError, first_line
from studio.ui.control_guide_row import GuideRow
from studio.ui.tasks import Tasks

KEPT_EXTENSIONS = 8  # per guide: how many canvas extensions an undo or a history jump can take it back over
Amounts = tuple[int, int, int, int]  # left, top, right, bottom


@dataclass(frozen=True)
class _Extension:
    """One guide extended with the canvas: the canvas pictures before and after (held weakly: the document's undo
    history keeps them; once both are gone, so is the record) and the guide each one goes with."""

    canvas_before: weakref.ref[Image.Image]
    canvas_after: weakref.ref[Image.Image]
    amounts: Amounts
    original: ControlGuide
    original_note: str
    extended: ControlGuide

    def gone(self) -> bool:
        return self.canvas_before() is None and self.canvas_after() is None


def _preprocessing(guide: ControlGuide) -> tuple[str, int, int]:
    return guide.preprocessor, guide.low_threshold, guide.high_threshold


class GuideExtensions:
    """``canvas_now`` reads the picture the canvas shows; ``extend`` extends a guide (``extend_guide`` with the
    window's preprocessors), run in a worker thread."""

    def __init__(self, tasks: Tasks, canvas_now: Callable[[], Image.Image | None],
                 extend: Callable[[ControlGuide, tuple[int, int], Amounts], ControlGuide]) -> None:
        self._tasks, self._canvas_now, self._extend = tasks, canvas_now, extend
        self._kept: dict[GuideRow, list[_Extension]] = {}  # newest last

    def forget(self, row: GuideRow) -> None:
        self._kept.pop(row, None)

    async def follow_extend(self, rows: list[GuideRow], before: Image.Image, after: Image.Image,
                            amounts: Amounts) -> list[str]:
        """The canvas picture ``before`` was extended by ``amounts`` into ``after``: each guide made for it (a
        picture of its size) is extended alike, so its lines stay on the picture's, preprocessed in a worker
        thread. Returns a sentence for each guide that could not be extended (it is left as it was)."""
        problems = []
        for number, row in enumerate(list(rows), 1):
            guide, note = row.guide(), row.picture.note
            if guide.image is None or guide.image.size != before.size:
                continue
            try:
                extended = await asyncio.to_thread(self._extend, guide, before.size, amounts)
            except (StudioError, ValueError, OSError) as exc:  # a preprocessor's model missing, a picture it refuses
                problems.append(f"{guide_label(number, len(rows))} could not be extended with the canvas: "
                                f"{first_line(exc).rstrip('.')}.")
                continue
            if row.picture.image is not guide.image:  # given another picture meanwhile: the person's choice stands
                continue
            kept = self._kept.setdefault(row, [])
            kept.append(_Extension(weakref.ref(before), weakref.ref(after), amounts, guide, note, extended))
            del kept[:-KEPT_EXTENSIONS]
            now = self._canvas_now()
            if now is None or now is after:  # else undone meanwhile: a redo takes the extension
                row.take_extended(extended)
        return problems

    def follow_canvas(self, picture: Image.Image | None) -> None:
        """The canvas shows ``picture`` after an undo, a redo or a history jump: a guide extended with the canvas
        goes back to its picture before the extension (or is extended again), unless the person has given it
        another picture since."""
        if picture is None:
            return
        for row, kept in list(self._kept.items()):
            kept[:] = [e for e in kept if not e.gone()]
            ours = [image for e in kept for image in (e.original.image, e.extended.image)]
            if not kept or not any(row.picture.image is image for image in ours):
                self._kept.pop(row)  # nothing to go back to, or another picture chosen: forgotten
                continue
            for index in range(len(kept) - 1, -1, -1):
                extension = kept[index]
                if extension.canvas_before() is picture:
                    if row.picture.image is not extension.original.image:
                        row.restore(extension.original, extension.original_note)
                    break
                if extension.canvas_after() is picture:
                    if row.picture.image is not extension.extended.image:
                        self._extend_again(row, kept, index)
                    break

    def _extend_again(self, row: GuideRow, kept: list[_Extension], index: int) -> None:
        """A redo: the extension as made, or made again where the person changed the preprocessor since."""
        extension, now = kept[index], row.guide()
        if row.picture.image is not extension.original.image or _preprocessing(now) == _preprocessing(
                extension.original):
            row.take_extended(extension.extended)
            return

        async def remake() -> None:
            after = extension.canvas_after()
            if after is None:
                return
            extended = await asyncio.to_thread(self._extend, now, extension.original.image.size, extension.amounts)
            if self._canvas_now() is after and row.picture.image is now.image and index < len(kept) and \
                    kept[index] is extension:
                kept[index] = replace(extension, original=now, extended=extended)
                row.take_extended(extended)

        self._tasks.run(remake())
