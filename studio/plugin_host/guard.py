"""Running a plugin's code so that its exceptions, hangs and ignored cancels fail only its own job (it runs in
Studio's process: no sandbox, see the README).

The plugin runs on a thread of its own; the engine thread waits for its results and watches the
job's cancel flag. A plugin that does not stop within the grace period after a cancel is left
behind (Python cannot kill a thread): its context is closed, so anything it still reports is
dropped, and PluginHung names it (the job runner ends the job as cancelled, with that sentence).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from studio.core.errors import InvalidRequest, JobCancelledError, StudioError
from studio.core.generation import JobContext

T = TypeVar("T")
CANCEL_GRACE_SECONDS = 5.0
_POLL = 0.05
PREVIEW_INTERVAL = 0.1  # a plugin's previews reach the window at most 10 times a second (the newest wins)
PREVIEW_MAX_SIDE = 512  # and at most this big: shrunk on the plugin's thread, never the window's
PROGRESS_RATE, PROGRESS_BURST = 30.0, 10  # its progress reports: a few at once, then at most 30 a second


class PluginFailed(StudioError):
    """A plugin raised or could not be loaded; the message names it."""


class PluginHung(PluginFailed):
    """A plugin did not stop within the grace period after a cancel."""


class PluginRefusedInput(InvalidRequest):
    """A plugin said the person's input cannot work (its InvalidRequest): not a failure of the plugin."""


class GuardedContext:
    """The context a plugin sees: the job's own calls, the device, its data folder, and a off switch."""

    def __init__(self, inner: JobContext, device: str, data_dir: Path, image_index: int | None = None) -> None:
        self._inner = inner
        self._image_index = image_index  # a post-processor works on one picture of a batch: report it as that
        self._device = device
        self._data_dir = data_dir
        self._closed = threading.Event()
        self._clock = time.monotonic
        self._tokens, self._refilled = float(PROGRESS_BURST), self._clock()
        self._preview_at = -PREVIEW_INTERVAL  # when a preview was last passed on
        self._pending: tuple[Image.Image, tuple[int, int, int, int] | None] | None = None  # the newest held back

    @property
    def device(self) -> str:
        return self._device

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    def close(self) -> None:
        self._closed.set()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise JobCancelledError()

    def report_progress(self, step: int, total: int, image_index: int = 0, preview: Image.Image | None = None,
                        preview_box: tuple[int, int, int, int] | None = None) -> None:
        """Passed on throttled, so that a plugin reporting in a tight loop cannot flood the window: progress at
        most PROGRESS_RATE a second (after a burst; the last step always), previews at most every
        PREVIEW_INTERVAL, the newest one held back meanwhile and sent with the next report let through, shrunk to
        PREVIEW_MAX_SIDE."""
        self._check_open()
        step, total = int(step), int(total)
        if isinstance(preview, Image.Image):  # a plugin's bad preview must not reach the window
            self._pending = (preview, preview_box)  # (its own object, copied only if it is passed on)
        now = self._clock()
        self._tokens = min(float(PROGRESS_BURST), self._tokens + (now - self._refilled) * PROGRESS_RATE)
        self._refilled = now
        if self._tokens < 1 and step < total:  # the last step always reaches the window: the bar is full
            return
        self._tokens = max(0.0, self._tokens - 1)
        shown, box = None, None
        if self._pending is not None and now - self._preview_at >= PREVIEW_INTERVAL:
            (shown, box), self._pending, self._preview_at = self._pending, None, now
            try:
                shown = _small_copy(shown)
            except Exception:  # noqa: BLE001 - a picture that cannot be shown: the progress still is
                shown, box = None, None
        index = self._image_index if self._image_index is not None else int(image_index)
        self._inner.report_progress(step, total, index, shown, box)

    @property
    def wants_previews(self) -> bool:
        # A plugin's own test context may predate the property: previews are wanted, as before it.
        return getattr(self._inner, "wants_previews", True)

    def is_cancelled(self) -> bool:
        return self._closed.is_set() or self._inner.is_cancelled()

    def check_cancelled(self) -> None:
        self._check_open()
        self._inner.check_cancelled()

    def note(self, text: str) -> None:
        self._check_open()
        self._inner.note(str(text)[:500])

    def status(self, *, device: str = "", model: str = "", message: str = "", device_kind: str = "") -> None:
        self._check_open()
        self._inner.status(message=str(message)[:200])  # device and model lines belong to the engine


def _small_copy(preview: Image.Image) -> Image.Image:
    """The preview as the window may have it: its own copy, RGB(A), at most PREVIEW_MAX_SIDE on its longer side."""
    if preview.mode not in ("RGB", "RGBA"):
        preview = preview.convert("RGB")
    if max(preview.size) > PREVIEW_MAX_SIDE:
        scale = PREVIEW_MAX_SIDE / max(preview.size)
        size = (max(1, round(preview.width * scale)), max(1, round(preview.height * scale)))
        return preview.resize(size, Image.Resampling.BILINEAR)
    return preview.copy()


def run_guarded(produce: Callable[[], Iterable[Any]], context: JobContext, guarded: GuardedContext, who: str,
                grace: float | None = None, check: Callable[[Any], T] = lambda item: item) -> Iterator[T]:
    """Items from ``produce()`` (plugin code), computed on the plugin's own thread, each through ``check`` there
    too (a picture loaded lazily from a broken file fails there, as the plugin's failure, not the engine's).

    Exceptions become PluginFailed naming ``who``; a cancel passes through as JobCancelledError, and so does the
    first item handed over after a cancel (a plugin that keeps yielding and never looks at the cancel is stopped
    there); ignoring a cancel for longer than ``grace`` seconds without handing anything over becomes PluginHung.
    """
    grace = CANCEL_GRACE_SECONDS if grace is None else grace
    results: queue.Queue[tuple[str, Any]] = queue.Queue()
    resume = threading.Semaphore(0)  # the plugin waits until its last item is taken, like a generator would

    def body() -> None:
        try:
            for item in produce():
                results.put(("item", check(item)))  # while the plugin waits at its yield: nothing changes the item
                while not resume.acquire(timeout=_POLL):
                    if guarded._closed.is_set():
                        return
                if guarded._closed.is_set():  # its job ended meanwhile: no more items are wanted
                    return
            results.put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the engine thread, which decides
            results.put(("error", exc))

    threading.Thread(target=body, name=f"plugin: {who.removeprefix('The plugin ')}", daemon=True).start()
    try:
        yield from _taken(results, resume, context, guarded, who, grace)
    finally:
        guarded.close()  # however the reading ends (a failure, the reader stopping): what the plugin says is dropped


def _taken(results: queue.Queue[tuple[str, Any]], resume: threading.Semaphore, context: JobContext,
           guarded: GuardedContext, who: str, grace: float) -> Iterator[Any]:
    cancelled_at: float | None = None
    while True:
        try:
            kind, value = results.get(timeout=_POLL)
        except queue.Empty:
            if context.is_cancelled():
                cancelled_at = cancelled_at or time.monotonic()
                if time.monotonic() - cancelled_at > grace:
                    guarded.close()
                    raise PluginHung(f"{who} did not stop within {grace:g} s of being cancelled; "
                                     "Studio stopped waiting for it.") from None
            continue
        if kind == "item":
            if context.is_cancelled():  # it went on making pictures after a cancel: a yield is where it stops
                guarded.close()  # its thread ends at the yield (no item is taken again), whatever it meant to do
                raise JobCancelledError()
            try:
                yield value
            except BaseException:  # the reader stopped (a failed check, a closed job): the plugin may not go on
                guarded.close()
                raise
            finally:
                resume.release()
        elif kind == "done":
            return
        elif isinstance(value, JobCancelledError):
            raise value
        elif isinstance(value, InvalidRequest):
            raise PluginRefusedInput(str(value)) from value
        elif isinstance(value, StudioError):
            named = who.removeprefix("The plugin ") in str(value)  # load errors already name the plugin
            raise PluginFailed(str(value) if named else f"{who}: {value}") from value
        else:
            text = str(value).strip().splitlines()[0] if str(value).strip() else ""
            detail = f"{type(value).__name__}: {text}" if text else type(value).__name__
            raise PluginFailed(f"{who} failed ({detail}).") from value
