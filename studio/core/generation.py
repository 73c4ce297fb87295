"""The contract between a job runner and a generator (Studio's own or a plugin's)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from PIL import Image

from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest


class JobContext(Protocol):
    """What a running job may tell and ask the engine. Safe to call from the engine thread only."""

    def report_progress(self, step: int, total: int, image_index: int = 0,
                        preview: Image.Image | None = None,
                        preview_box: tuple[int, int, int, int] | None = None) -> None:
        """Step ``step`` of ``total`` is done; ``preview_box`` places a preview of a region."""
        ...

    def is_cancelled(self) -> bool: ...

    def check_cancelled(self) -> None:
        """Raise JobCancelledError if the person cancelled this job."""
        ...

    def note(self, text: str) -> None:
        """Tell the person something that did not stop the job (a fallback taken, a size rounded)."""
        ...

    def status(self, *, device: str = "", model: str = "", message: str = "") -> None:
        """Update the engine status line (device, loaded model, what is happening)."""
        ...


@runtime_checkable
class Generator(Protocol):
    """Makes images for a request. Called on the engine thread, one job at a time."""

    def generate(self, request: GenerationRequest, context: JobContext) -> list[tuple[Image.Image, Recipe]]: ...
