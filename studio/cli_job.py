"""Following one job of the ``studio`` command on the terminal: submit it to the job service, show its progress,
write each picture where ``-o`` asked as it comes, say its end, and turn a Ctrl+C into the job's cancel."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.cli_exit import EXIT_CANCELLED, EXIT_FAILED
from studio.cli_notes import say_note
from studio.cli_outputs import keep_somewhere_else
from studio.core.environment import GeneratorEnvironment
from studio.core.errors import StudioError, and_list, os_reason
from studio.core.events import (
    EngineStatus,
    GeneratedImage,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobFinished,
    JobOutput,
    JobProgress,
    StepRate,
    format_rate,
    format_seconds,
)
from studio.core.images import save_image
from studio.core.requests import GenerationRequest, PostProcessRequest
from studio.plugin_host.host import PluginHost
from studio.plugin_host.registry import POSTPROCESSOR, Registry, builtin_registry
from studio.services.history_store import HistoryStore
from studio.services.jobs import JobService
from studio.services.outputs import OutputStore

if TYPE_CHECKING:
    from tqdm import tqdm

CPU_DTYPE_ENV = "STUDIO_CPU_DTYPE"  # studio.engine.cpu_precision.ENV, which imports torch

# After why the outputs folder could not keep a picture (the window's sentence points to Save Canvas As…).
UNSAVED = "The -o file is its only copy."
CANCELLING = "Cancelling (Ctrl+C again to stop at once)"
CANCEL_WAIT = 10.0  # seconds a cancelled job has to stop (within a step) and hand over the pictures it finished


@dataclass
class JobOutcome:
    """What became of the command's job, kept outside its event loop (which a Ctrl+C ends)."""

    asked: int = 1  # pictures asked for
    code: int | None = None  # the exit status, once the job's end was said
    written: list[Path] = field(default_factory=list)  # the pictures written where -o asked, in order
    finished: int = 0  # the pictures the job handed over (one -o could not take is kept in the outputs folder)

    def cancelled(self) -> str:
        """The sentence for a cancelled job, as the window's status line says it: how many of the pictures it
        finished were kept, and where they were written."""
        where = f": {and_list([str(path) for path in self.written])}." if self.written else "."
        if self.asked > 1:
            if not self.finished:
                return f"cancelled; none of the {self.asked} pictures was kept."
            return f"cancelled; {self.finished} of {self.asked} pictures {'was' if self.finished == 1 else 'were'} " \
                   f"kept{where}"
        return f"cancelled; the picture was kept{where}" if self.finished else "cancelled."

    def ended(self, how: str) -> str:
        """The sentence for a job that ``how`` (failed) after writing some pictures: which, and where."""
        after = f"{how} after {len(self.written)} of {self.asked} pictures" if self.asked > 1 else how
        return f"{after}; wrote {and_list([str(path) for path in self.written])}."


def run_job(request: GenerationRequest | PostProcessRequest, env: GeneratorEnvironment, outputs: list[Path],
            **options: Any) -> int:  # noqa: ANN401 - _generate's keyword arguments
    """``_generate`` on an event loop of its own; its exit status. A first Ctrl+C cancels the job, which stops
    within a step and hands over the pictures it finished (written to ``outputs``); a second one, or a job that
    does not stop in time, ends the command at once (exit 130 either way). Pressed once the job has ended, while
    the engine shuts down, it changes nothing: the pictures were written and said, so the job's own status
    stands."""
    outcome = JobOutcome(asked=request.batch_count)
    try:
        return asyncio.run(_generate(request, env, outputs, outcome=outcome, **options))
    except KeyboardInterrupt:
        if outcome.code is not None:
            return outcome.code
        print(f"studio: {outcome.cancelled()}", file=sys.stderr)
        return EXIT_CANCELLED


async def _generate(request: GenerationRequest | PostProcessRequest, env: GeneratorEnvironment, outputs: list[Path],
                    output_store: OutputStore | None = None, history: HistoryStore | None = None,
                    plugins: PluginHost | None = None, other_text: dict[str, str] | None = None,
                    outcome: JobOutcome | None = None, overwrite: bool = False, recorded_precision: str = "") -> int:
    """Run one request; each image goes to outputs[i] (and, with output_store, to the outputs folder
    first, where the history rows point). ``other_text``: other tools' PNG text to carry over. ``outcome``
    follows what was written, and gets the exit status once the job's end is said, before the engine shuts
    down. ``overwrite``: an output file that exists may be replaced (the command checked which may, before the
    job); without it, one that appeared while the job ran is left as it is. ``recorded_precision``: a rerun's, as its
    history entry recorded it; a job that ran in another one says so."""
    registry = plugins.registry if plugins else builtin_registry()
    service = JobService(None if plugins else registry, env, outputs=output_store, warm_up=False,
                         history=history, plugins=plugins, unsaved=UNSAVED, previews=False)  # nothing shows them
    service.start()
    bar = progress_bar(getattr(request, "steps", 1) * request.batch_count)
    bar.set_description("Starting the engine")
    outcome = JobOutcome(asked=request.batch_count) if outcome is None else outcome
    view = _JobView(request, outputs, bar, other_text, outcome, registry, overwrite, recorded_precision)
    try:
        code = await _follow(service, request, view)
        outcome.code = code
        return code
    finally:
        bar.close()
        service.shutdown()


def progress_bar(total: int) -> tqdm:
    """The job's progress bar on stderr, whose time left comes from the steps' own speed (``steps_per_second``,
    set as the steps come): tqdm's would divide the steps done by all the time since the bar was made, engine start
    and model load included, and a job of 60 quick steps said 50 s left when 2 s were."""
    from tqdm import tqdm  # 0.1 s to import: only once a job runs

    class StepsBar(tqdm):
        steps_per_second = 0.0  # not known yet: the time left shows as "?"

        @property
        def format_dict(self) -> dict[str, Any]:
            values = super().format_dict
            values["rate"] = self.steps_per_second  # what format_meter divides the steps left by
            return values

    return StepsBar(total=total, unit="step", file=sys.stderr, dynamic_ncols=True,
                    bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")


async def _follow(service: JobService, request: GenerationRequest | PostProcessRequest, view: _JobView) -> int:
    """Submit the request and show its events until it ends; its exit status. A Ctrl+C (asyncio.run cancels this
    task) cancels the job, whose events are still followed: the pictures it finished come before its end."""
    stream = service.subscribe()
    try:
        job_id = service.submit(request)
        deadline: float | None = None  # once cancelled: how long the job has to stop
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    event = await anext(stream)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if deadline is not None or task is None:
                    raise
                task.uncancel()
                service.cancel(job_id)
                deadline = asyncio.get_running_loop().time() + CANCEL_WAIT
                view.cancel_asked()
                continue
            except TimeoutError:  # a step (or a model load) that does not look at the cancel: not waited for
                return view.stopped()
            except StopAsyncIteration:
                return EXIT_FAILED
            if not (isinstance(event, JobEvent) and event.job_id != job_id):
                code = view.show(event)
                if code is not None:
                    return code
    finally:
        service.unsubscribe(stream)


class _JobView:
    """One job on the terminal: a progress bar on stderr, each picture written to its output as it comes, and
    the job's end said."""

    def __init__(self, request: GenerationRequest | PostProcessRequest, outputs: list[Path], bar: tqdm,
                 other_text: dict[str, str] | None, outcome: JobOutcome, registry: Registry,
                 overwrite: bool = False, recorded_precision: str = "") -> None:
        self.request = request
        self.outputs = outputs
        self.bar = bar
        self.other_text = other_text
        self.outcome = outcome
        self.registry = registry
        self.overwrite = overwrite
        self.recorded_precision = recorded_precision
        self.rate = StepRate()  # tqdm's own rate would count the model load as steps
        self.unsaved: dict[int, str] = {}  # index: why the picture could not be written where asked
        self.elsewhere: dict[int, Path | None] = {}  # index: where a picture kept nowhere else went (None: lost)
        self.handled: set[int] = set()
        self.cancelling = False  # after a Ctrl+C: the label stays "Cancelling…" (a model load still says its stage)

    def cancel_asked(self) -> None:
        self.cancelling = True
        self.bar.set_description(CANCELLING)

    def show(self, event: object) -> int | None:
        """Show one event; the exit status once the job has ended."""
        bar = self.bar
        if isinstance(event, EngineStatus) and event.message:
            if not self.cancelling:
                bar.set_description(event.message.rstrip("…."))
        elif isinstance(event, JobProgress):
            bar.total = event.total * event.image_count
            if not self.cancelling:
                bar.set_description(f"Image {event.image_index + 1}/{event.image_count}")
            bar.n = event.image_index * event.total + event.step
            speed = self.rate.update(event)
            if speed is not None:  # a picture's first step has none yet: the last picture's stands
                bar.set_postfix_str(format_rate(speed), refresh=False)
                bar.steps_per_second = speed
            bar.refresh()
        elif isinstance(event, JobOutput):
            self._write(event.index, event.output)
        elif isinstance(event, JobFinished):
            return self._finished(event)
        elif isinstance(event, JobFailed):
            self._said_saved(event.outputs)  # a batch that failed part-way keeps the pictures it finished
            print(f"studio: {event.message}", file=sys.stderr)
            if self.outcome.written:
                print(f"studio: {self.outcome.ended('failed')}", file=sys.stderr)
            self._notes(event.notes)
            return EXIT_FAILED
        elif isinstance(event, JobCancelled):
            self._said_saved(event.outputs)
            if event.message:  # "Cancelled during <filter>: ...", said first
                print(f"studio: {event.message}", file=sys.stderr)
            if self.outcome.finished or not event.message:
                print(f"studio: {self.outcome.cancelled()}", file=sys.stderr)
            self._notes(event.notes)
            return EXIT_CANCELLED
        return None

    def stopped(self) -> int:
        """The job did not stop within CANCEL_WAIT of the Ctrl+C: what it finished is said, without its end."""
        self.bar.close()
        print(f"studio: {self.outcome.cancelled()}", file=sys.stderr)
        return EXIT_CANCELLED

    def _write(self, index: int, output: GeneratedImage) -> None:
        if index >= len(self.outputs) or index in self.handled:  # never more than asked for (the service caps a
            return  # plugin's), and each once
        self.handled.add(index)
        self.outcome.finished += 1
        try:
            save_image(output.image, self.outputs[index], output.recipe, exclusive=not self.overwrite,
                       other_text=self.other_text)
        except FileExistsError:  # checked free before the job: something else wrote there meanwhile
            self.unsaved[index] = "a file of that name appeared while the job ran, and was left as it is"
        except (StudioError, OSError) as exc:  # the folder went away or filled up meanwhile
            self.unsaved[index] = str(exc) if isinstance(exc, StudioError) else os_reason(exc)
        else:
            self.outcome.written.append(self.outputs[index])
            return
        if output.path is None:  # nor kept in the outputs folder: the picture would be lost
            self.elsewhere[index] = keep_somewhere_else(output.image, output.recipe, self.outputs[index],
                                                        self.other_text)

    def _said_saved(self, outputs: tuple[GeneratedImage, ...]) -> None:
        """Each picture the job handed over (any whose own event was missed is written now), said as saved or not
        written."""
        for index, out in enumerate(outputs):
            self._write(index, out)
        self.bar.close()
        for index, (path, out) in enumerate(zip(self.outputs, outputs)):
            if index in self.unsaved:
                elsewhere = self.elsewhere.get(index)
                kept = (f"; it is kept in {out.path}" if out.path else f"; it is kept in {elsewhere} instead"
                        if elsewhere else "; it could not be kept anywhere else either: the picture is lost")
                print(f"studio: {path} could not be written ({self.unsaved[index]}){kept}.", file=sys.stderr)
                continue
            seed = f"seed {out.recipe.seed}, " if out.recipe.seed >= 0 else ""
            print(f"Saved {path} ({seed}{out.image.width}x{out.image.height})")

    def _finished(self, event: JobFinished) -> int:
        self._said_saved(event.outputs)
        self._notes(event.warnings)  # what went wrong without stopping the job (a filter failed): first
        self._notes(event.notes)
        self._notes(precision_notes(self.request, event.outputs, self.recorded_precision))
        asked = self.outcome.asked
        if len(event.outputs) < asked:  # a plugin generator that made fewer than asked for
            made = ("made no picture; nothing was written" if not event.outputs else
                    f"made {len(event.outputs)} of the {asked} pictures asked for")
            print(f"studio: the generator {getattr(self.request, 'generator', '')!r} {made}.", file=sys.stderr)
            return EXIT_FAILED
        if not self._lost():  # "Done" after a picture was lost would read as all well
            print(f"Done in {format_seconds(event.elapsed)}.", file=sys.stderr)
        left_out = self._steps_left_out(event.outputs)
        for steps, paths in left_out.items():
            titles = and_list([self.registry.title(POSTPROCESSOR, step) for step in steps])
            which = "that post-processing step" if len(steps) == 1 else "those post-processing steps"
            print(f"studio: {and_list(paths)} {'was' if len(paths) == 1 else 'were'} written without {titles}: "
                  f"{which} did not run.", file=sys.stderr)
        return EXIT_FAILED if self.unsaved or left_out else 0

    def _lost(self) -> bool:
        return None in self.elsewhere.values()

    def _steps_left_out(self, outputs: tuple[GeneratedImage, ...]) -> dict[tuple[str, ...], list[str]]:
        """The post-processing steps asked for that a written picture went without (one failed, and the chain
        stopped there), with the pictures that did: the recipe records each step that ran, in order."""
        asked = [step.processor for step in getattr(self.request, "post", ())]
        left_out: dict[tuple[str, ...], list[str]] = {}
        for index, out in enumerate(outputs):
            steps = tuple(asked[len(out.recipe.post):])
            if steps and index < len(self.outputs) and index not in self.unsaved:
                left_out.setdefault(steps, []).append(str(self.outputs[index]))
        return left_out

    def _notes(self, notes: tuple[str, ...]) -> None:
        for note in notes:
            if self.elsewhere:  # the -o file is not the only copy of each: the lines above said where each went
                note = note.removesuffix(f" {UNSAVED}")
            say_note(note)


def precision_notes(request: GenerationRequest | PostProcessRequest, outputs: tuple[GeneratedImage, ...],
                    recorded: str = "") -> tuple[str, ...]:
    """What the pictures' precision means for the person: bfloat16 (only ever the CPU's fast path) differs from
    other tools' float32 pictures by a grey level or so; a rerun in another precision than its entry recorded.
    Only Studio's own generator runs diffusion in a precision: a post-processing job carries its input picture's
    recipe, and a plugin's generator its own, so neither has anything to say here."""
    if not isinstance(request, GenerationRequest) or request.generator != "diffusers":
        return ()
    ran = next((out.recipe.precision for out in outputs if out.recipe.precision), "")
    notes = []
    if ran == "bfloat16":
        if os.environ.get(CPU_DTYPE_ENV, "").strip().lower() in ("bfloat16", "bf16"):
            notes.append(f"Ran in bfloat16 on the CPU, as {CPU_DTYPE_ENV} says; {CPU_DTYPE_ENV}=float32 runs float32 "
                         "for pictures that match other tools'.")
        elif getattr(request, "precision", "") == "bfloat16":  # a rerun, in its entry's precision whatever Speed says
            notes.append(f"Ran in bfloat16 on the CPU, as its history entry did; {CPU_DTYPE_ENV}=float32 runs float32 "
                         "for pictures that match other tools'.")
        else:
            notes.append(f"Ran in bfloat16 on the CPU (Speed: {getattr(request, 'speed', 'fast')}); `--speed eager` "
                         "runs float32 for pictures that match other tools'.")
    if recorded and ran and ran != recorded:
        notes.append(f"This run computed in {ran}, the recorded one in {recorded}, so its pictures may differ from "
                     "the recorded ones by a grey level or so.")
    return tuple(notes)
