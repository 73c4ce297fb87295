"""The contract between a job runner and a generator (Studio's own or a plugin's)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from studio.core.held_memory import HeldModel
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest


class JobContext(Protocol):
    """What a running job may tell and ask the engine. Safe to call from the engine thread only."""

    def report_progress(self, step: int, total: int, image_index: int = 0,
                        preview: Image.Image | None = None,
                        preview_box: tuple[int, int, int, int] | None = None) -> None:
        """Step ``step`` of ``total`` is done; ``preview_box`` places a preview of a region."""
        ...

    @property
    def wants_previews(self) -> bool:
        """Whether anyone will see this job's previews (the window does; the ``studio`` command shows none): a job
        that is told no makes none, so it spends nothing on them."""
        ...

    def is_cancelled(self) -> bool: ...

    def check_cancelled(self) -> None:
        """Raise JobCancelledError if the person cancelled this job."""
        ...

    def note(self, text: str) -> None:
        """Tell the person something that did not stop the job (a fallback taken, a size rounded)."""
        ...

    def status(self, *, device: str = "", model: str = "", message: str = "", device_kind: str = "") -> None:
        """Update the engine status line (device, loaded model, what is happening); ``device_kind`` (cuda | mps |
        cpu) goes with the device's words, for what depends on the device rather than reads it."""
        ...


class PluginContext(JobContext, Protocol):
    """The JobContext a plugin sees: the job's calls plus the device and its own data folder."""

    @property
    def device(self) -> str:
        """The person's device choice: auto | cuda | mps | cpu."""
        ...

    @property
    def data_dir(self) -> Path:
        """The plugin's own folder (created for it); files outside it need the 'files' permission."""
        ...


@runtime_checkable
class Generator(Protocol):
    """Makes images for a request. Called on the engine thread (a plugin's on its own thread), one job at a time.

    Yields one image per picture of the batch (``request.batch_count``, seeds ``request.seed_for(i)``):
    either a PIL image, for which Studio writes the recipe, or an (image, Recipe) pair.
    """

    def generate(self, request: GenerationRequest,
                 context: JobContext) -> Iterable[Image.Image | tuple[Image.Image, Recipe]]: ...


@runtime_checkable
class PostProcessor(Protocol):
    """Turns a picture into another of the same size (or a stated new size, e.g. an upscaler).

    ``params`` are the checked values of the processor's declared parameters.
    """

    def process(self, image: Image.Image, params: Mapping[str, Any], context: JobContext) -> Image.Image: ...


@runtime_checkable
class MemoryHolder(Protocol):
    """Optional, for a generator or post-processor that keeps models loaded between jobs: the Models in Memory
    window lists them and frees them. Both are called on the engine thread, between jobs, and must be quick."""

    def held_models(self) -> Sequence[HeldModel]:
        """What is loaded now."""
        ...

    def release_memory(self, in_use: bool = False) -> Sequence[HeldModel]:
        """Let go what is kept only to be quick later (and with ``in_use``, everything), dropping every reference
        to it; returns what went. Studio collects the garbage and empties the device's cache afterwards."""
        ...
