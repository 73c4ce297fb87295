"""Gallery thumbnails, loaded lazily off the UI thread: memory LRU, then a disk cache, then the image.

Only rows that are (still) wanted get loaded: when the person scrolls fast through thousands of
pictures, requests for rows that scrolled away are dropped before any file is opened.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PySide6.QtGui import QImage

from studio.core.images import write_atomically
from studio.ui.qt_images import pil_to_qimage

log = logging.getLogger(__name__)
THUMB_SIZE = 192
MEMORY_ITEMS = 1500
PARALLEL = 2


def _cache_name(path: Path) -> str:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(key.encode()).hexdigest() + ".jpg"


def cached_thumbnail(path: Path, cache_dir: Path) -> Path | None:
    """Where path's thumbnail is (or would be) cached; None when path cannot be read (its name needs its size
    and time, so ask before deleting the picture)."""
    try:
        return cache_dir / _cache_name(path)
    except OSError:
        return None


def load_thumbnail(path: Path, cache_dir: Path) -> Image.Image:
    """A THUMB_SIZE thumbnail of path, from the disk cache when it is there (and writes it there)."""
    cached = cache_dir / _cache_name(path)
    if cached.exists():
        with Image.open(cached) as img:
            img.load()
            return img.copy()
    with Image.open(path) as img:
        img.draft("RGB", (THUMB_SIZE, THUMB_SIZE))  # JPEG: decode at a fraction of full size
        img.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR)
        thumb = img.convert("RGB")
    try:
        import io

        cache_dir.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        thumb.save(buffer, "JPEG", quality=85)
        write_atomically(cached, buffer.getvalue(), durable=False)
    except OSError:
        pass  # a cache we cannot write only costs time next run
    return thumb


class ThumbnailLoader:
    def __init__(self, cache_dir: Path, on_loaded: Callable[[int], None]) -> None:
        self._cache_dir = cache_dir
        self._on_loaded = on_loaded
        self._images: OrderedDict[int, QImage | None] = OrderedDict()  # None: could not be read
        self._wanted: OrderedDict[int, Path] = OrderedDict()  # newest request last
        self._running = 0

    def get(self, key: int, path: Path | None) -> QImage | None:
        """The thumbnail if loaded; otherwise ask for it (on_loaded(key) fires when it is ready)."""
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        if path is not None:
            self._wanted[key] = path
            self._wanted.move_to_end(key)
            self._pump()
        return None

    def forget_unless(self, keep: Callable[[int], bool]) -> None:
        """Drop pending requests for rows no longer on screen."""
        for key in [k for k in self._wanted if not keep(k)]:
            del self._wanted[key]

    def cached_file(self, path: Path) -> Path | None:
        """The disk cache's file for path (blocking: it reads the picture's size and time)."""
        return cached_thumbnail(path, self._cache_dir)

    def invalidate(self, key: int) -> None:
        """Forget key's thumbnail in memory and any pending request for it (the disk copy: see cached_file)."""
        self._images.pop(key, None)
        self._wanted.pop(key, None)

    def _pump(self) -> None:
        while self._running < PARALLEL and self._wanted:
            key, path = self._wanted.popitem(last=True)  # newest first: what the person looks at now
            self._running += 1
            asyncio.ensure_future(self._load(key, path))

    async def _load(self, key: int, path: Path) -> None:
        image: QImage | None = None
        try:
            image = pil_to_qimage(await asyncio.to_thread(load_thumbnail, path, self._cache_dir))
        except Exception as exc:  # noqa: BLE001 - a missing or damaged file just has no thumbnail
            log.info("No thumbnail for %s: %s", path, exc)
        finally:
            self._running -= 1
        self._images[key] = image
        while len(self._images) > MEMORY_ITEMS:
            self._images.popitem(last=False)
        self._on_loaded(key)
        self._pump()
