"""The window hearing the engine: each job's events move its row in the queue panel, the status bar and the
Cancel actions along, and its pictures go to the canvas (result_arrival); Cancel and the queue's Remove ask the
job service.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from studio.core.events import (
    EngineStatus,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobQueued,
    JobStarted,
    format_seconds,
)
from studio.core.held_memory import MemoryFreed
from studio.core.requests import GenerationRequest, PostProcessRequest
from studio.services.jobs import EventStream
from studio.ui.result_arrival import GENERATED
from studio.ui.result_landing import source_of

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

log = logging.getLogger(__name__)


def cancel_sentence(event: JobCancelled, request: GenerationRequest | PostProcessRequest | None) -> str:
    """What a cancel left: "Cancelled: 2 of 4 pictures kept. Saved to <folder>." (a batch's finished pictures
    stay, saved and in the gallery), after the cancel's own sentence when it has one ("Cancelled during Blur: …")."""
    count = request.batch_count if request is not None else 0
    kept = len(event.outputs)
    if count > 1:
        tally = f"{kept} of {count} pictures kept" if kept else f"none of the {count} pictures was kept"
    elif kept:
        tally = "the picture was kept" if kept == 1 else f"{kept} pictures kept"
    else:
        return event.message or "Cancelled."
    said = f"{event.message} {tally[0].upper()}{tally[1:]}." if event.message else f"Cancelled: {tally}."
    saved = next((output.path for output in reversed(event.outputs) if output.path), None)
    return f"{said} Saved to {saved.parent}." if saved else said


class JobEvents:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.requests: dict[int, GenerationRequest | PostProcessRequest] = {}
        self.task: asyncio.Task | None = None  # taking the engine's events, from start() on
        self._stream: EventStream | None = None

    def start(self) -> None:
        self._stream = self.window.service.subscribe()
        self.task = asyncio.ensure_future(self._consume())

    def stop(self) -> None:
        if self._stream is not None:
            self.window.service.unsubscribe(self._stream)

    async def _consume(self) -> None:
        assert self._stream is not None
        async for event in self._stream:
            if isinstance(event, JobOutput):
                source = source_of(self.requests.get(event.job_id))
                await self.window.results.take_in_ahead(event.output.image, source)
            try:
                self.window.handle_event(event)  # the window's own entry, as tests and benchmarks drive it
            except Exception:  # a bug in one handler must not stop the window hearing the engine
                log.exception("Handling %r failed", event)

    def cancel_current(self) -> None:
        running = self.window.queue_panel.job_ids("running")
        for job_id in running:
            self.window.service.cancel(job_id)
        if running:
            self.window.status.set_message("Cancelling…")

    def remove_job(self, job_id: int) -> None:
        state = self.window.queue_panel.state(job_id)
        if state == "waiting":
            self.window.service.cancel(job_id)
        elif state != "running":  # a running job is stopped with Cancel; its row stays until it has stopped
            self.window.queue_panel.remove_row(job_id)

    def handle(self, event: object) -> None:
        queue, status = self.window.queue_panel, self.window.status
        if isinstance(event, JobQueued):
            self.requests[event.job_id] = event.request
            queue.add_job(event.job_id, event.request)
            for note in event.notes:
                status.set_message(note)
        elif isinstance(event, JobStarted):
            queue.set_running(event.job_id)
            request = self.requests.get(event.job_id)
            status.job_started(request if isinstance(request, GenerationRequest) else None)
            if self.window.autosaver is not None and isinstance(request, GenerationRequest):
                self.window.autosaver.mark_job(True)  # a crash now loses it: the next start says so
            if isinstance(request, GenerationRequest) and request.generator != "diffusers":
                status.show_generator(self.window.service.registry.title("generator", request.generator))
            status.set_message("Working…")
        elif isinstance(event, JobProgress):
            status.job_progress(event)
            queue.set_running(event.job_id, f"Step {event.step}/{event.total}")
        elif isinstance(event, JobPreview):
            request = self.requests.get(event.job_id)
            if request is not None:
                width, height = (request.width, request.height) if isinstance(request, PostProcessRequest) \
                    else request.output_size  # a hires fix's first pass is shown over the final picture's place
                self.window.canvas.show_preview(event.image, width, height, event.box)
        elif isinstance(event, JobOutput):
            request = self.requests.get(event.job_id)
            label = GENERATED
            if isinstance(request, PostProcessRequest):
                label = self._filter_title(request.processor)
            else:
                self.window.history_actions.results_arrived()
                self.window.prompt_panel.remember_seed(event.output.recipe.seed)
            self.window.results.arrive((event.output, label, source_of(request)))
        elif isinstance(event, JobFinished):
            self._job_ended(event.job_id)
            # What went wrong without stopping it (a picture left unsaved, a filter failed) marks its row too.
            queue.set_finished(event.job_id, f"Done in {format_seconds(event.elapsed)}", " ".join(event.warnings))
            saved = next((o.path for o in reversed(event.outputs) if o.path), None)
            where = f" Saved to {saved.parent}." if saved else ""
            finished = (f"{' '.join(event.warnings)} Finished in {format_seconds(event.elapsed)}.{where} "
                        f"{' '.join(event.notes)} {self.window.results.take_held_note()}")
            status.set_message(" ".join(finished.split()), error=bool(event.warnings))
        elif isinstance(event, JobFailed):
            self._job_ended(event.job_id)
            self.window.history_actions.results_arrived()  # failed jobs are in the history too
            queue.set_failed(event.job_id, event.message)
            status.set_message(" ".join([event.message, *event.notes]), error=True)
        elif isinstance(event, JobCancelled):
            self.window.history_actions.results_arrived()
            if event.was_running:
                request = self.requests.get(event.job_id)
                self._job_ended(event.job_id)
                queue.set_cancelled(event.job_id, kept=len(event.outputs))
                # The cancel's sentence ("Cancelled during Blur: …") leads: on a GPU the memory plan's reason is
                # the job's first note, and a long line is cut at the status bar's end.
                said = " ".join([cancel_sentence(event, request), *event.notes, self.window.results.take_held_note()])
                status.set_message(" ".join(said.split()))
            else:
                self.requests.pop(event.job_id, None)
                queue.remove_row(event.job_id)
        elif isinstance(event, EngineStatus):
            self._show_engine_status(event)
        elif isinstance(event, MemoryFreed):
            self.window.memory.show_freed(event)
        self.update_actions()

    def update_actions(self) -> None:
        queue = self.window.queue_panel
        running = bool(queue.job_ids("running"))
        self.window.cancel_action.setEnabled(running)
        self.window.cancel_all_action.setEnabled(running or bool(queue.job_ids("waiting")))

    def _show_engine_status(self, event: EngineStatus) -> None:
        status = self.window.status
        if event.device:
            status.set_device(event.device)
        if event.device_kind:
            self.window.models.gpu_menu.show_device(event.device_kind)  # on the CPU it says so
        if event.model:
            status.set_model(event.model)
            self.window.setWindowTitle(f"{event.model} — Studio")
            if not event.message:  # loaded ahead of any job (the preload), or for the job now running
                working = " Working…" if self.window.queue_panel.job_ids("running") else ""
                status.set_message(f"{event.model} is loaded.{working}")
        if event.message:
            status.set_message(event.message, error=not event.device and not event.model
                               and "fail" in event.message.lower())

    def _job_ended(self, job_id: int) -> None:
        self.requests.pop(job_id, None)
        if self.window.autosaver is not None:
            self.window.autosaver.mark_job(False)
        self.window.canvas.clear_preview()
        self.window.status.job_ended()
        self.window.status.show_generator("")

    def _filter_title(self, processor: str) -> str:
        return f"Filter: {self.window.service.registry.title('postprocessor', processor)}"
