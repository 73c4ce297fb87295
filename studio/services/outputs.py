"""Where generated images go: one PNG per image, recipe embedded, written atomically."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from PIL import Image

from studio.core.control import shareable_controls
from studio.core.errors import StudioError
from studio.core.images import keep_png, save_image
from studio.core.metadata import Recipe

log = logging.getLogger(__name__)

SOURCES_FOLDER = "sources"
CONTROL_SUFFIX = "-control.png"  # a ControlNet guide's picture
PICTURE_SUFFIX = "-picture.png"  # a plugin's picture parameter (kept as "-control.png" before, which it is not)
# The names save_control and save_parameter_picture give (the pixels' digest; before, the time and a random number):
# only these are Studio's to remove with a history entry (a guide whose picture could not be kept records the
# person's own file instead, which is never theirs to delete).
_KEPT_CONTROL = re.compile(r"^(?:[0-9a-f]{16}|\d{6}-[0-9a-f]{10})"
                           f"(?:{re.escape(CONTROL_SUFFIX)}|{re.escape(PICTURE_SUFFIX)})$")
# write_atomically's temp files: ".<final name>.<random>.part". One older than this is left from a crash
# (a live save takes seconds at most; another Studio process may be saving into the same folder).
STALE_PART_AGE = 15 * 60.0
_PART = re.compile(r"^\..+\.part$")
NAME_TRIES = 100


class OutputStore:
    """Saves into ``root/YYYY-MM-DD/NNNNN-SEED.png``; numbers keep counting across runs.

    Sources of img2img / inpaint jobs go to ``root/YYYY-MM-DD/sources/``. The first save of a
    session removes temp files that a crash left behind mid-write (they never carry a final name).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()  # the history records where pictures are, from any folder
        self._lock = threading.Lock()
        self._swept = False

    def save(self, image: Image.Image, recipe: Recipe) -> Path:
        folder = self._today()
        with self._lock:
            self._sweep_once()
            try:
                folder.mkdir(parents=True, exist_ok=True)
                # Another Studio may be saving into the same folder: a number it took is never written over.
                for _ in range(NAME_TRIES):
                    try:
                        return save_image(image, folder / f"{_next_number(folder):05d}-{recipe.seed}.png", recipe,
                                          exclusive=True)
                    except FileExistsError:
                        continue
                raise StudioError(f"The image could not be saved in {folder}: every new number was taken "
                                  "while Studio tried.")
            except OSError as exc:
                raise StudioError(f"The image could not be saved in {folder}: {exc.strerror or exc}.") from exc

    def shareable(self, recipe: Recipe) -> Recipe:
        """The recipe as a saved picture carries it, for people who share pictures: its control pictures named relative
        to this folder (a kept copy: ``2026-12-07/sources/<hex>-control.png``) or by their file name alone (the
        person's own file), never by a path of their computer. The history keeps the full paths."""
        if not recipe.controls:
            return recipe
        return replace(recipe, controls=shareable_controls(recipe.controls, self.root))

    def save_sources(self, image: Image.Image, mask: Image.Image | None = None) -> tuple[Path, Path | None]:
        """Keep a job's source picture (and mask) as PNGs, so the job can be restored and run again."""
        folder = self._today() / SOURCES_FOLDER
        stem = f"{datetime.now():%H%M%S}-{uuid.uuid4().hex[:10]}"
        with self._lock:
            self._sweep_once()
            try:
                folder.mkdir(parents=True, exist_ok=True)
                image_path = save_image(image, folder / f"{stem}-image.png")
                mask_path = save_image(mask, folder / f"{stem}-mask.png") if mask is not None else None
            except OSError as exc:
                raise StudioError(f"The source picture could not be saved in {folder}: "
                                  f"{exc.strerror or exc}.") from exc
        return image_path, mask_path

    def save_control(self, image: Image.Image, folder: Path | None = None) -> Path:
        """Keep a job's control picture (a ControlNet guide's, as given, before its preprocessor) as a PNG beside
        the sources (or in ``folder``), so the picture's recipe and the history point at a file that stays. It is
        named by its pixels (``pixel_digest``) in today's sources: a picture kept there already is named again, not
        written again, so a photo that guides every job of a day costs one file, written once."""
        return self._keep(image, folder, CONTROL_SUFFIX, "control picture")

    def save_parameter_picture(self, image: Image.Image, folder: Path | None = None) -> Path:
        """Keep the picture a plugin generator's or chain step's picture parameter was given, as ``save_control``
        keeps a guide's (named by its pixels in today's sources), ending ``-picture.png``: it guides no ControlNet."""
        return self._keep(image, folder, PICTURE_SUFFIX, "picture")

    def _keep(self, image: Image.Image, folder: Path | None, suffix: str, what: str) -> Path:
        folder = self._today() / SOURCES_FOLDER if folder is None else folder
        with self._lock:
            self._sweep_once()
            try:
                return keep_png(image, folder, suffix=suffix)
            except OSError as exc:
                raise StudioError(f"The {what} could not be saved in {folder}: {exc.strerror or exc}.") from exc

    def restore_control(self, image: Image.Image, path: Path) -> None:
        """Write a kept control or parameter picture again at path: deleting the last history entry that used it
        removed it while a job that names it was running (that job's pictures and row name it). Exactly that name,
        whichever scheme made it: one an older Studio gave (time and a random number) is not its pixels' digest."""
        with self._lock:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                save_image(image, path, exclusive=True)
            except FileExistsError:
                pass  # kept again meanwhile (another job, another Studio): the same picture
            except OSError as exc:
                raise StudioError(f"The picture {path.name} could not be kept again in {path.parent}: "
                                  f"{exc.strerror or exc}.") from exc

    def remove_stale_parts(self, max_age: float = STALE_PART_AGE) -> list[Path]:
        """Delete temp files (``.*.part``) older than max_age seconds left in the output folders by a crash."""
        removed: list[Path] = []
        cutoff = time.time() - max_age
        for folder in _output_folders(self.root):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                if not _PART.match(entry.name):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
                except OSError as exc:
                    log.warning("Could not remove the stale temp file %s: %s", entry.path, exc)
        if removed:
            log.info("Removed %d temp file(s) left by an interrupted save", len(removed))
        return removed

    def _today(self) -> Path:
        return self.root / datetime.now().strftime("%Y-%m-%d")

    def _sweep_once(self) -> None:
        if not self._swept:
            self._swept = True
            self.remove_stale_parts()


def is_kept_control(path: str | os.PathLike[str]) -> bool:
    """Whether path names a picture that ``save_control`` or ``save_parameter_picture`` kept (by its name, in a
    sources folder)."""
    path = Path(path)
    return path.parent.name == SOURCES_FOLDER and _KEPT_CONTROL.match(path.name) is not None


def _output_folders(root: Path) -> list[Path]:
    folders: list[Path] = []
    try:
        days = [Path(e.path) for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return folders
    for day in days:
        folders.append(day)
        if (day / SOURCES_FOLDER).is_dir():
            folders.append(day / SOURCES_FOLDER)
    return folders


def _next_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    return max(numbers, default=0) + 1
