"""Where generated images go: one PNG per image, recipe embedded, written atomically."""

from __future__ import annotations

import re
import threading
from datetime import datetime
from pathlib import Path

from PIL import Image

from studio.core.errors import StudioError
from studio.core.images import save_image
from studio.core.metadata import Recipe


class OutputStore:
    """Saves into ``root/YYYY-MM-DD/NNNNN-SEED.png``; numbers keep counting across runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def save(self, image: Image.Image, recipe: Recipe) -> Path:
        folder = self.root / datetime.now().strftime("%Y-%m-%d")
        with self._lock:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                number = _next_number(folder)
                return save_image(image, folder / f"{number:05d}-{recipe.seed}.png", recipe)
            except OSError as exc:
                raise StudioError(f"The image could not be saved in {folder}: {exc.strerror or exc}.") from exc


def _next_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    return max(numbers, default=0) + 1
