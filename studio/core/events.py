"""Immutable job events, sent from the engine thread to the asyncio loop.

Every job produces JobQueued, then JobStarted, any number of JobProgress / JobPreview, and
exactly one of JobFinished, JobFailed or JobCancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image

from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest, PostProcessRequest


@dataclass(frozen=True)
class JobEvent:
    job_id: int


@dataclass(frozen=True)
class JobQueued(JobEvent):
    request: GenerationRequest | PostProcessRequest
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobStarted(JobEvent):
    pass


@dataclass(frozen=True)
class JobProgress(JobEvent):
    step: int  # steps done in the current image, 1..total
    total: int
    image_index: int  # 0-based index in the batch
    image_count: int
    elapsed: float  # seconds since the job started

    @property
    def fraction(self) -> float:
        done = self.image_index * self.total + self.step
        return done / max(1, self.total * self.image_count)


class StepRate:
    """Denoising speed within the current picture, from its progress events.

    Counted from the picture's first step, so loading the model and encoding the prompt before it (and the
    previous picture's decode) do not pull the figure down: it is the speed of the steps themselves.
    """

    def __init__(self) -> None:
        self._first: JobProgress | None = None

    def update(self, event: JobProgress) -> float | None:
        """Steps per second so far in this event's picture; None until two of its steps have been seen."""
        first = self._first
        if (first is None or (event.job_id, event.image_index) != (first.job_id, first.image_index)
                or event.step <= first.step):
            self._first = event
            return None
        seconds = event.elapsed - first.elapsed
        return (event.step - first.step) / seconds if seconds > 0 else None


def format_rate(steps_per_second: float) -> str:
    """"7.4 it/s", or "2.35 s/it" below one step a second (as tqdm and A1111 show it)."""
    if steps_per_second >= 1:
        return f"{steps_per_second:.1f} it/s"
    return f"{1 / steps_per_second:.2f} s/it"


def format_seconds(seconds: float) -> str:
    """A job's duration: "0.27 s" (a fast GPU's picture needs the hundredths), "12.3 s", "2 min 05 s"."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


@dataclass(frozen=True)
class JobPreview(JobEvent):
    image: Image.Image = field(compare=False)
    step: int
    image_index: int
    box: tuple[int, int, int, int] | None = None  # where on the output it belongs (inpainting a region)


@dataclass(frozen=True)
class GeneratedImage:
    image: Image.Image = field(compare=False)
    recipe: Recipe
    path: Path | None = None  # where the output store saved it, if it did


@dataclass(frozen=True)
class JobOutput(JobEvent):
    """One image of the job is done (and saved, when the job saves its outputs)."""

    output: GeneratedImage
    index: int


@dataclass(frozen=True)
class JobFinished(JobEvent):
    outputs: tuple[GeneratedImage, ...]
    elapsed: float
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # what went wrong without stopping it (a filter failed): said first, as a problem


@dataclass(frozen=True)
class JobFailed(JobEvent):
    message: str  # one sentence for the person
    detail: str = ""  # traceback, for the log
    outputs: tuple[GeneratedImage, ...] = ()  # images finished before the failure, kept
    notes: tuple[str, ...] = ()  # what the person should know besides (a filter left out, a picture unsaved)


@dataclass(frozen=True)
class JobCancelled(JobEvent):
    was_running: bool = False
    outputs: tuple[GeneratedImage, ...] = ()  # images finished before the cancel, kept
    notes: tuple[str, ...] = ()  # what the person should know besides the cancel
    message: str = ""  # the cancel's own sentence ("Cancelled during <filter>: ..."), said first; "" for "Cancelled."


DeviceKind = Literal["", "cuda", "mps", "cpu"]  # "": not said (a status without the device)


@dataclass(frozen=True)
class EngineStatus:
    """Not about one job: the engine thread's state (device found, model loaded, ...)."""

    device: str = ""  # the status bar's words for it
    model: str = ""
    message: str = ""
    device_kind: DeviceKind = ""  # with the device's words: what the window decides by (the GPU menu)


TERMINAL_EVENTS = (JobFinished, JobFailed, JobCancelled)
