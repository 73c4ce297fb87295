"""Helpers for testing the first-party plugins in plugins/: import them from their folders, and a fake job context.

The plugins are imported the way a plugin author tests theirs: the plugin folder on sys.path, the
manifest read with Studio's own parser, parameters checked with Studio's own validation.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from studio.core.parameters import validate_params
from studio.core.plugin_manifest import (
    MANIFEST_NAME,
    ContributionSpec,
    Manifest,
    parse_manifest,
)
from studio.plugin_api import JobCancelledError

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
# plugin folder -> its package
PACKAGES = {"studio-procedural": "studio_procedural", "studio-film": "studio_film"}


class FakeContext:
    """A PluginContext that records what the plugin reports and cancels after ``cancel_after`` progress calls."""

    def __init__(self, data_dir: Path, cancel_after: int | None = None) -> None:
        self.device = "cpu"
        self.data_dir = data_dir
        self.cancel_after = cancel_after
        self.progress: list[tuple[int, int, int, Image.Image | None]] = []
        self.notes: list[str] = []
        self.statuses: list[str] = []
        self.cancel_checks = 0
        self.wants_previews = True

    def report_progress(self, step: int, total: int, image_index: int = 0, preview: Image.Image | None = None,
                        preview_box: tuple[int, int, int, int] | None = None) -> None:
        assert 0 < step <= total, (step, total)
        self.progress.append((step, total, image_index, preview))

    def is_cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.progress) >= self.cancel_after

    def check_cancelled(self) -> None:
        self.cancel_checks += 1
        if self.is_cancelled():
            raise JobCancelledError()

    def note(self, text: str) -> None:
        self.notes.append(text)

    def status(self, *, device: str = "", model: str = "", message: str = "") -> None:
        self.statuses.append(message)


def import_plugin(monkeypatch: pytest.MonkeyPatch, folder: str, module: str) -> Any:
    """``package.module`` of the plugin in plugins/<folder>, imported from that folder."""
    monkeypatch.syspath_prepend(str(PLUGINS / folder))
    return importlib.import_module(f"{PACKAGES[folder]}.{module}")


def manifest_of(folder: str) -> Manifest:
    return parse_manifest((PLUGINS / folder / PACKAGES[folder] / MANIFEST_NAME).read_bytes(), folder)


def checked(spec: ContributionSpec, **values: Any) -> dict[str, Any]:
    """The parameters as Studio hands them to the plugin: checked, defaults filled in."""
    return validate_params(spec.parameters, values, spec.title)
