"""The job queue as the asyncio side sees it: submit, cancel, and ``async for`` over events.

The engine thread emits events; they cross to the loop with ``call_soon_threadsafe`` and are
fanned out to every subscriber's asyncio.Queue. Nothing here touches Qt or torch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import JobCancelledError, StudioError, and_list
from studio.core.metadata import Recipe
from studio.core.events import (
    TERMINAL_EVENTS,
    EngineStatus,
    GeneratedImage,
    JobEvent,
    JobProgress,
    JobQueued,
    JobStarted,
)
from studio.core.held_memory import HeldModel, HeldModelsChanged, MemoryFreed
from studio.core.requests import GenerationRequest, PostProcessRequest, PostStep, prepare_request
from studio.engine import held_memory
from studio.engine.worker import EngineWorker, Job, StatusFn, WorkerContext, describe_exception
from studio.plugin_host.host import PluginHost
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Registry
from studio.services.autosave import RunningPlugin
from studio.services.control_pictures import keep_control_pictures, keep_parameter_pictures
from studio.services.history_recording import HistoryRecorder
from studio.services.history_store import HistoryStore
from studio.services.outputs import OutputStore
from studio.services.plugin_jobs import ContributionRunner, check_plugin_inputs

log = logging.getLogger(__name__)

_CLOSED = object()
_Made = tuple[Image.Image, Recipe]


@dataclass
class JobInfo:
    """The loop-side view of a live (waiting or running) job, for queue lists."""

    id: int
    request: GenerationRequest | PostProcessRequest
    state: str = "queued"  # queued | running
    progress: JobProgress | None = None


class EventStream:
    """One subscriber's events, in order. ``async for event in stream``."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()

    def put(self, event: object) -> None:
        self._queue.put_nowait(event)

    def close(self) -> None:
        self._queue.put_nowait(_CLOSED)

    def __aiter__(self) -> AsyncIterator[object]:
        return self

    async def __anext__(self) -> object:
        event = await self._queue.get()
        if event is _CLOSED:
            raise StopAsyncIteration
        return event


# Said after why the outputs folder could not keep a picture, in the window's words (the command line passes its own:
# there the -o file is the picture's copy).
UNSAVED = "The picture is only on the canvas: keep it with Save Canvas As… in the File menu."


class JobService:
    """Owns the engine worker. Create and use it on the asyncio loop's thread."""

    def __init__(self, registry: Registry | None, env: GeneratorEnvironment,
                 outputs: OutputStore | None = None, warm_up: bool = True,
                 history: HistoryStore | None = None, plugins: PluginHost | None = None,
                 unsaved: str = UNSAVED, previews: bool = True) -> None:
        """``previews``: whether anyone shows the jobs' previews; without, the engine makes none (the command line)."""
        if registry is None:
            if plugins is None:
                raise ValueError("JobService needs a registry or a plugin host")
            registry = plugins.registry
        self._registry = registry
        self.plugins = plugins
        self._runner = ContributionRunner(registry, env, plugins,
                                          notify=lambda text: self._emit_threadsafe(EngineStatus(message=text)))
        self._env = env
        self._outputs = outputs
        self._unsaved = unsaved  # what becomes of a picture the outputs folder could not keep, in the caller's words
        self._history = history
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: list[EventStream] = []
        self.jobs: dict[int, JobInfo] = {}
        self._likely: GenerationRequest | None = None  # the job to prepare for once the engine is up
        self._worker = EngineWorker(self._handle, self._emit_threadsafe,
                                    self._warm_up if warm_up else None, preload=self._preload_model,
                                    previews=previews)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine thread; once it is up it prepares for the job named by ``prefer``, if any."""
        self._loop = asyncio.get_running_loop()
        self._worker.start()

    def prefer(self, likely: GenerationRequest | None) -> None:
        """The job the person will likely run first (the panel's model, size and CFG): once the engine is up,
        unless a job comes first, it loads that model and, on a GPU, runs one step of the job so the first
        picture skips the device's first-use costs. None: prepare nothing."""
        self._likely = likely

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Cancel every job, stop the engine thread, then end every event stream."""
        stopped = self._worker.shutdown(timeout)

        def close_streams() -> None:
            streams, self._streams = self._streams, []
            for stream in streams:
                stream.close()

        loop = self._loop
        if loop is not None and loop.is_running():
            # Behind the events already on their way (same FIFO), so subscribers see how jobs ended.
            loop.call_soon_threadsafe(close_streams)
        else:
            close_streams()
        return stopped

    # -- queue -----------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        return self._registry

    @property
    def env(self) -> GeneratorEnvironment:
        return self._env

    def use_models_dir(self, models_dir: Path) -> None:
        """The person picked another models folder: the next job's generators and filters look there (for
        LoRAs, VAEs, upscalers, weights and configs). Loaded models are let go; a running job finishes as is."""
        if self._env.models_dir == models_dir:
            return
        self._env = replace(self._env, models_dir=models_dir)
        self._runner.use_environment(self._env)
        self._registry.forget_instances()

    def use_linked_dirs(self, linked: Sequence[Path]) -> None:
        """Other tools' models folders were linked or unlinked: the next job finds the embeddings in them,
        without letting any loaded model go."""
        self._env = replace(self._env, linked_dirs=tuple(linked))
        self._runner.use_environment(self._env)
        for instance in self._registry.live_instances():
            if hasattr(instance, "use_linked_dirs"):
                instance.use_linked_dirs(self._env.linked_dirs)

    def watch_plugins(self, watch: Callable[[RunningPlugin | None], None] | None) -> None:
        """``watch`` is told, on the engine thread, which plugin's code runs before it runs and, after, the one it
        ran inside (a plugin generator's, for its post-step plugin) or None (the window marks it in its autosave: a
        plugin that kills Studio is named at the next start)."""
        self._runner.watch = watch

    def submit(self, request: GenerationRequest | PostProcessRequest) -> int:
        """Validate and queue a request; InvalidRequest (one sentence) if it cannot run."""
        if isinstance(request, PostProcessRequest):
            return self._worker.submit(check_plugin_inputs(self._registry, request))
        prepared = prepare_request(request)
        notes = list(prepared.notes)
        checked = check_plugin_inputs(self._registry, prepared.request, notes)
        return self._worker.submit(checked, tuple(notes))

    def cancel(self, job_id: int) -> bool:
        return self._worker.cancel(job_id)

    def cancel_all(self) -> None:
        self._worker.cancel_all()

    def waiting(self) -> list[JobInfo]:
        return [j for j in self.jobs.values() if j.state == "queued"]

    def running(self) -> JobInfo | None:
        return next((j for j in self.jobs.values() if j.state == "running"), None)

    def subscribe(self) -> EventStream:
        stream = EventStream()
        self._streams.append(stream)
        return stream

    def unsubscribe(self, stream: EventStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)
            stream.close()

    async def run(self, request: GenerationRequest | PostProcessRequest) -> AsyncIterator[object]:
        """Submit one request and yield its events (and engine status) until it ends."""
        stream = self.subscribe()
        try:
            job_id = self.submit(request)
            async for event in stream:
                if isinstance(event, JobEvent) and event.job_id != job_id:
                    continue
                yield event
                if isinstance(event, TERMINAL_EVENTS):
                    return
        finally:
            self.unsubscribe(stream)

    # -- memory ----------------------------------------------------------------------------
    async def held_models(self) -> tuple[HeldModel, ...]:
        """What the generators and filters hold loaded, asked on the engine thread between jobs (a running job
        ends first; waiting ones wait)."""
        return await asyncio.wrap_future(self._worker.between_jobs(
            lambda: held_memory.held_models(self._registry.live_instances())))

    async def release_memory(self, in_use: bool = False) -> MemoryFreed:
        """Let every kept model and cache go (with ``in_use``, the models in use too: the next job loads its model
        again), between jobs as ``held_models``. The answer also goes to every event stream, in order with the
        jobs' events."""
        return await asyncio.wrap_future(self._worker.between_jobs(lambda: self._release_memory(in_use)))

    def held_models_changed(self) -> None:
        """Tell every event stream that models in memory changed outside the jobs (``HeldModelsChanged``). Safe to
        call from any thread: the window's thumbnails load the depth model in a worker thread."""
        self._emit_threadsafe(HeldModelsChanged())

    def _release_memory(self, in_use: bool) -> MemoryFreed:
        freed = held_memory.release_memory(self._registry.live_instances(), in_use)
        self._emit_threadsafe(freed)
        return freed

    # -- engine thread side ----------------------------------------------------------------
    def _warm_up(self, status: StatusFn) -> None:
        from studio.engine.libraries import open_torch_libraries_off_the_gil  # ctypes: not at start-up

        open_torch_libraries_off_the_gil()  # the generator's module imports torch
        generator = self._registry.instance(GENERATOR, "diffusers", self._env)
        generator.warm_up(status)

    def _preload_model(self, status: StatusFn) -> None:
        if self._likely is not None:
            self._registry.instance(GENERATOR, "diffusers", self._env).preload(self._likely, status)

    def _handle(self, job: Job, context: WorkerContext) -> Iterator[GeneratedImage]:
        """Run one job: each image is saved first, and only then recorded in the history."""
        if isinstance(job.request, PostProcessRequest):  # an edit of the canvas: not saved, not in history
            image, recipe = self._runner.run_post_request(job.request, context)
            yield GeneratedImage(image, recipe, None)
            return
        # Kept before the engine runs: the recipe it writes (relative to the outputs folder, as saved) and the
        # history rows (by their full paths) name the kept copies.
        request = keep_control_pictures(job.request, self._outputs, context.note)
        request = keep_parameter_pictures(request, self._registry, self._outputs, context.note)
        recorder = (HistoryRecorder(self._history, self._outputs, self._registry, request, context)
                    if self._history is not None else None)
        made = 0
        last = time.perf_counter()
        stopped: JobCancelledError | None = None  # cancelled during a step: what is made is still saved
        made_first = False
        try:
            pictures = self._runner.generate(request, context)
            made_first = any(self._runner.runs_generator(step) for step in request.post)
            if made_first:
                pictures = _whole_batch_first(pictures)
            for image, recipe in pictures:
                if stopped is None:
                    image, recipe, stopped = self._post_process(request, image, recipe, context, made)
                if self._outputs is not None:  # what the picture carries, and the canvas or Save Canvas As… after it
                    recipe = self._outputs.shareable(recipe)
                path = self._saved(image, recipe, context)
                if recorder is not None:  # the history may wait for a lock: neither this picture's time nor the job's
                    elapsed = time.perf_counter() - last
                    with context.not_counted():
                        recorder.image(made, recipe, path, elapsed)
                made, last = made + 1, time.perf_counter()
                yield GeneratedImage(image, recipe, path)
                if stopped is not None and not made_first:
                    break  # nothing more is made; pictures made already (a whole batch) are still saved
            if stopped is not None:
                raise stopped
        except JobCancelledError:
            if recorder is not None and made < request.batch_count:  # the pictures not made are said, too
                with context.not_counted():
                    recorder.ended("cancelled", f"The job was cancelled after {made} of {request.batch_count} "
                                   "pictures." if made else "The job was cancelled before it made an image.")
            raise
        except Exception as exc:
            if recorder is not None and made < request.batch_count:  # as a cancel: the pictures not made are said
                reason = describe_exception(exc)
                with context.not_counted():
                    recorder.ended("failed", f"{reason} The job failed after {made} of {request.batch_count} "
                                   "pictures." if made else reason)
            raise

    def _saved(self, image: Image.Image, recipe: Recipe, context: WorkerContext) -> Path | None:
        """The picture in the outputs folder; one that cannot be written there (a full or read-only disk) still
        goes on, unsaved, with a warning: minutes of work are not thrown away for want of a file."""
        if self._outputs is None:
            return None
        try:
            return self._outputs.save(image, recipe)
        except StudioError as exc:
            context.warn(f"{exc} {self._unsaved}")  # a problem, said first: the picture exists nowhere else
            return None

    def _post_process(self, request: GenerationRequest, image: Image.Image, recipe: Recipe, context: WorkerContext,
                      index: int) -> tuple[Image.Image, Recipe, JobCancelledError | None]:
        """The request's post-processing chain; a step that fails or is cancelled leaves the picture as it was
        before it, and the steps after it are not run."""
        for number, step in enumerate(request.post):
            # The status line said the last denoising step ("Step 20/20") all through a filter that takes seconds.
            pictures = f" on picture {index + 1} of {request.batch_count}" if request.batch_count > 1 else ""
            context.status(message=f"{self._step_title(step)}{pictures}…")
            try:
                image, recipe = self._runner.post_process(step, image, recipe, context, index)
            except JobCancelledError:
                # The cancel's own sentence, not a note: the window and the command line say it first, and once.
                return image, recipe, JobCancelledError(
                    f"Cancelled during {self._step_title(step)}: the picture was kept without "
                    f"{and_list([self._step_title(left) for left in request.post[number:]])}.")
            except Exception as exc:  # noqa: BLE001 - the generated picture is kept, never lost to a filter
                context.warn(f"{describe_exception(exc)} The picture was kept without "
                             f"{and_list([self._step_title(left) for left in request.post[number:]])}.")
                break
        return image, recipe, None

    def _step_title(self, step: PostStep) -> str:
        """The filter's name as its menu shows it: its id ("color") read as if the picture lost its colours."""
        return self._registry.title(POSTPROCESSOR, step.processor)

    def _emit_threadsafe(self, event: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._dispatch, event)
        except RuntimeError:  # the loop closed between the check and the call: the app is quitting
            pass

    def _dispatch(self, event: object) -> None:
        if isinstance(event, JobQueued):
            self.jobs[event.job_id] = JobInfo(event.job_id, event.request)
        elif isinstance(event, JobEvent) and event.job_id in self.jobs:
            info = self.jobs[event.job_id]
            if isinstance(event, JobStarted):
                info.state = "running"
            elif isinstance(event, JobProgress):
                info.progress = event
            elif isinstance(event, TERMINAL_EVENTS):
                del self.jobs[event.job_id]  # only live jobs are kept; the event says how it ended
        for stream in list(self._streams):
            stream.put(event)


def _whole_batch_first(pictures: Iterator[_Made]) -> Iterator[_Made]:
    """Every picture of the batch made before the first goes on. A step that runs the generator itself (Restyle)
    would otherwise run between the batch's pictures and undo their job's LoRAs, scheduler and reference. A
    cancel or failure part-way still lets the pictures made before it through, then is raised."""
    made: list[_Made] = []
    try:
        for picture in pictures:
            made.append(picture)
    except BaseException:
        yield from made
        raise
    yield from made
