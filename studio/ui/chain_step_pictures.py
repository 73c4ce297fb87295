"""The post-processing chain's steps that hold pictures (a colour transfer's reference, a style picture): each
picture is saved once, by content, in the data folder's post-references and referred to by path, in a worker
thread; until then the step hands the pictures themselves to a Generate."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from studio.core.errors import StudioError
from studio.core.images import keep_png, open_image
from studio.core.settings_sections import PostStepSetting

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

log = logging.getLogger(__name__)
REFERENCES = "post-references"  # pictures that chain steps refer to, kept so every run can use them


class ChainStepPictures:
    """The chain step part of PluginActions, which sets these up."""

    window: MainWindow
    # Chain steps whose pictures are being saved (see _step), by id: the step (kept alive) and its values.
    _unstored: dict[int, tuple[PostStepSetting, dict[str, Any]]]

    def _step(self, processor: str, values: dict[str, Any], strength: float) -> PostStepSetting:
        """A chain step for the settings. Its pictures are saved (once, by content) and referred to by path in a
        worker thread: PNG-encoding and hashing a 4096² canvas held the window 7 s. Until they are, the step's
        picture values are empty in the settings and post_steps() hands the pictures themselves to a Generate (a
        picture file chosen in the form, still a Path, is read there too)."""
        pictures = {name: value for name, value in values.items() if isinstance(value, Image.Image | Path)}
        step = PostStepSetting(processor=processor, params={**values, **dict.fromkeys(pictures, "")},
                               strength=strength)
        if pictures:
            self._unstored[id(step)] = (step, values)
            self.window.actions_.run(self._store(step, values))
        return step

    async def _store(self, step: PostStepSetting, values: dict[str, Any]) -> None:
        try:
            stored = await asyncio.to_thread(self._storable, values)
        except (OSError, StudioError) as exc:  # a chosen file gone or broken since, a full disk
            self._unstored.pop(id(step), None)
            self.window.status.set_message(f"The chain step's picture could not be kept: {exc}", error=True)
            return
        self._unstored.pop(id(step), None)
        if any(s is step for s in self.window.settings.generation.post):  # not replaced meanwhile
            step.params = stored
            self.window.save_settings_soon()

    def store_now(self) -> None:
        """The chain steps' pictures still being saved, saved here and now (quitting: the settings written next
        would hold their empty paths, and the steps would lose their pictures)."""
        for key, (step, values) in list(self._unstored.items()):
            try:
                stored = self._storable(values)
            except (OSError, StudioError) as exc:
                log.warning("A chain step's picture could not be kept: %s", exc)
                continue
            self._unstored.pop(key, None)
            if any(s is step for s in self.window.settings.generation.post):
                step.params = stored

    def _storable(self, values: dict[str, Any]) -> dict[str, Any]:
        """Values a chain step can keep in the settings: pictures are saved once and referred to by path (in a
        worker thread: see _step)."""
        folder = self.window.data_dir / REFERENCES
        stored = {}
        for name, value in values.items():
            if isinstance(value, Path):
                value = open_image(value)
            if isinstance(value, Image.Image):
                value = str(keep_png(value, folder))
            stored[name] = value
        return stored

    def _params(self, step: PostStepSetting) -> dict[str, Any]:
        """A chain step's values, with its pictures themselves while they are being saved."""
        return self._unstored.get(id(step), (step, step.params))[1]
