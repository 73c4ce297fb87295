"""``studio generate``: one request through the job service, with a terminal progress bar."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from studio.cli_control import control_guides
from studio.cli_params import check_post_processors, collect_params, parse_post_step
from studio.cli_plugins import open_host
from studio.core.annotators import DOWNLOAD_COMMAND
from studio.core.control import ControlGuide, extend_guide
from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, ModelError, StudioError, and_list
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
from studio.core.images import SAVE_FORMATS, open_image, save_image
from studio.core.hires import DEFAULT_STRENGTH as DEFAULT_HIRES_STRENGTH
from studio.core.hires import BUILT_IN_UPSCALERS, LANCZOS, HiresFix
from studio.core.inpaint import InpaintOptions, extend_canvas
from studio.core.mask import mask_from_image
from studio.core.model_library import KIND_FOLDERS, LibraryItem, scan_library
from studio.core.model_kinds import CONTEXT_FAMILY
from studio.core.models import check_model_folder, checkpoint_kind, find_weights, resolve_model
from studio.core.paths import studio_paths
from studio.core.requests import (
    MAX_INPAINT_SIDE,
    MAX_SIZE,
    MIN_SIZE,
    GenerationRequest,
    LoraChoice,
    PostProcessRequest,
    prepare_request,
)
from studio.core.settings import Settings, load_settings
from studio.plugin_host.host import PluginHost
from studio.plugin_host.registry import builtin_registry
from studio.services.history_store import HistoryStore
from studio.services.jobs import JobService
from studio.services.outputs import OutputStore

if TYPE_CHECKING:
    from tqdm import tqdm

    from studio.engine.control_nets import ControlSource

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130
CANCEL_WAIT = 10.0  # seconds a cancelled job has to stop (within a step) and hand over the pictures it finished


def parse_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        return (int(width), int(height)) if sep else (int(width), int(width))
    except ValueError:
        raise InvalidRequest(f"The size {text!r} is not WIDTHxHEIGHT, e.g. 512x768.") from None


def output_paths(output: Path, count: int) -> list[Path]:
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i + 1}{output.suffix}") for i in range(count)]


def parse_outpaint(text: str) -> tuple[int, int, int, int]:
    """LEFT,TOP,RIGHT,BOTTOM in pixels: at least one above 0, none below."""
    parts = text.replace(" ", "").split(",")
    example = "e.g. 0,0,128,0 to extend 128 pixels to the right"
    try:
        if len(parts) != 4:
            raise ValueError
        left, top, right, bottom = (int(p) for p in parts)
    except ValueError:
        raise InvalidRequest(
            f"--outpaint {text!r} is not four whole numbers LEFT,TOP,RIGHT,BOTTOM; {example}.") from None
    if min(left, top, right, bottom) < 0:
        raise InvalidRequest(f"--outpaint {text!r} has a negative amount; give the pixels to add, {example}.")
    if left + top + right + bottom == 0:
        raise InvalidRequest(f"--outpaint {text!r} extends nothing; give at least one side in pixels, {example}.")
    return left, top, right, bottom


def parse_lora(text: str) -> LoraChoice:
    """``NAME`` or ``NAME:WEIGHT``. A path may hold colons (C:\\...): only a number after the last one is a weight."""
    name, sep, tail = text.rpartition(":")
    if not sep or "/" in tail or "\\" in tail:
        return LoraChoice(text.strip())
    example = "write NAME:WEIGHT, e.g. detail:0.8"
    try:
        weight = float(tail)
    except ValueError:
        raise InvalidRequest(f"--lora {text!r} has the weight {tail!r}, which is not a number; {example}.") from None
    if not name.strip():
        raise InvalidRequest(f"--lora {text!r} has no name; {example}.")
    return LoraChoice(name.strip(), weight)


def read_mask(path: Path, picture: Image.Image, picture_name: str) -> Image.Image:
    """The mask file as an "L" image of the picture's size: white = regenerate (alpha, where it has some)."""
    image = open_image(path)
    if image.size != picture.size:
        raise InvalidRequest(
            f"The mask {path.name} is {image.width}x{image.height} but the picture {picture_name} is "
            f"{picture.width}x{picture.height}; they must be the same size.")
    return Image.fromarray(mask_from_image(image), "L")


def build_request(args: argparse.Namespace, settings: Settings, notes: list[str] | None = None) -> GenerationRequest:
    notes = [] if notes is None else notes
    inpainting = args.mask is not None or args.outpaint is not None
    if inpainting and args.init_image is None:
        option = "--mask" if args.mask is not None else "--outpaint"
        raise InvalidRequest(f"{option} needs --init-image, the picture to paint into.")
    if args.strength is not None and args.init_image is None:  # it would be ignored: a new picture starts from noise
        hires = " (the hires fix's second pass takes --hires-strength)" if args.hires is not None else ""
        raise InvalidRequest(f"--strength needs --init-image: it says how much of that picture may change{hires}.")
    extend = parse_outpaint(args.outpaint) if args.outpaint is not None else None
    init_image = open_image(args.init_image) if args.init_image else None
    mask = read_mask(args.mask, init_image, args.init_image.name) if args.mask is not None else None
    original_size = init_image.size if init_image is not None else (0, 0)
    if extend is not None:
        new_w, new_h = init_image.width + extend[0] + extend[2], init_image.height + extend[1] + extend[3]
        if max(new_w, new_h) > MAX_INPAINT_SIDE:
            raise InvalidRequest(f"Outpainting by {args.outpaint} would make a {new_w}x{new_h} picture; "
                                 f"Studio inpaints pictures of at most {MAX_INPAINT_SIDE} pixels a side.")
        mask_array = None if mask is None else np.asarray(mask, dtype=np.uint8)
        init_image, mask_array = extend_canvas(init_image, mask_array, *extend)
        mask = Image.fromarray(mask_array, "L")
    if inpainting:
        width, height = init_image.size
        if args.size:
            notes.append(f"--size is ignored when inpainting; the result has the picture's size, {width}x{height}.")
    elif args.size:
        width, height = parse_size(args.size)
    elif init_image is not None:
        width, height = init_image.size
        _check_picture_size(init_image, args.init_image.name, "give --size WxH to work at another size")
    else:
        width, height = 512, 512
    options = InpaintOptions(masked_only=args.masked_only, padding=args.padding, fill=args.fill,
                             feather=args.feather)
    generator = args.generator or "diffusers"
    loras = tuple(parse_lora(text) for text in args.lora)
    hires = _hires(args)
    if generator == "diffusers":
        if not args.model:
            raise InvalidRequest("--model is needed: a checkpoint file or diffusers folder, or the name of a model "
                                 f"in the library (studio models list; models folder {settings.models_dir}).")
        model = str(resolve_model(args.model, settings.models_dir, settings.extra_model_paths))
        check_model_folder(Path(model))  # headers only: not a model, or a damaged one, is bad input (before torch)
        loras, vae, controls, sources = _find_files(loras, args.vae or "", control_guides(args, generator), settings)
        _check_controlnets_fit(sources, Path(model))
        if hires is not None and init_image is None:  # one that applies (a note leaves out the others)
            hires = replace(hires, upscaler=_hires_upscaler(hires.upscaler, settings))
        from studio.engine.depth_maps import check_depth_model  # no torch

        # A missing depth model is said before torch loads, with the command that gets it.
        check_depth_model(settings.models_dir, controls, DOWNLOAD_COMMAND)
    else:
        if init_image is not None:
            raise InvalidRequest(f"The generator {generator!r} does not start from a picture; leave out "
                                 "--init-image, --mask and --outpaint.")
        model, vae, controls = "", args.vae or "", control_guides(args, generator)
    if extend is not None:  # a guide made for the picture is extended with it, so its lines stay on the picture's
        from studio.engine.depth_maps import annotator  # torch only when a depth map is made

        # A depth map is made of the picture before the margins (on the CPU: the engine has not started).
        controls = tuple(extend_guide(guide, original_size, extend, annotator(settings.models_dir))
                         for guide in controls)
    return GenerationRequest(
        model=model, prompt=args.prompt, negative_prompt=args.negative,
        width=width, height=height, steps=args.steps, cfg_scale=args.cfg, seed=args.seed,
        scheduler=args.scheduler, batch_count=args.batch_count, init_image=init_image,
        strength=GenerationRequest.strength if args.strength is None else args.strength,
        mask=mask, inpaint=options, generator=generator, params=collect_params(args),
        post=tuple(parse_post_step(text) for text in args.post), loras=loras, vae=vae,
        memory=args.memory or settings.memory, speed=args.speed or settings.speed, hires=hires,
        controls=controls,
    )


def _hires(args: argparse.Namespace) -> HiresFix | None:
    if args.hires is None:
        for option, value, default in (("--hires-steps", args.hires_steps, 0),
                                       ("--hires-strength", args.hires_strength, DEFAULT_HIRES_STRENGTH),
                                       ("--hires-upscaler", args.hires_upscaler, LANCZOS)):
            if value != default:
                raise InvalidRequest(f"{option} needs --hires SCALE, the hires fix it belongs to.")
        return None
    return HiresFix(args.hires, args.hires_steps, args.hires_strength, args.hires_upscaler)


def _hires_upscaler(name: str, settings: Settings) -> str:
    """The hires fix's upscaler as the engine will find it: a built-in one (any case), a model in the upscalers
    folder (by name or path), or one in the library's linked folders (given then by its path). Bad input
    otherwise, with the names there are, before the engine starts (which would say it only once started)."""
    wanted = name.strip()
    built_in = next((known for known in BUILT_IN_UPSCALERS if known.casefold() == wanted.casefold()), None)
    if built_in is not None or not wanted:  # none at all: prepare_request says so
        return built_in or name
    folder = settings.models_dir / KIND_FOLDERS["upscaler"]
    if find_weights(folder, wanted) is not None:  # the engine's lookup (a pickle is refused, with how to convert it)
        return wanted
    items = [item for item in scan_library(settings.models_dir, settings.extra_model_paths) if item.kind == "upscaler"]
    match = next((item for item in items if wanted.casefold() in (item.name.casefold(), item.path.name.casefold())),
                 None)
    if match is not None and match.problem:  # one the engine would refuse (a pickle, a damaged file)
        raise InvalidRequest(match.problem)
    if match is not None:  # by the name the window records for one in the upscalers folder, else by its path
        return match.name if match.path.parent == folder and not match.linked else str(match.path)
    names = [*BUILT_IN_UPSCALERS, *(item.name for item in items if item.usable)]
    raise InvalidRequest(f"No upscaler called {name!r} is installed; --hires-upscaler takes {', '.join(names)}, "
                         f"or the name of an upscaler model put in {folder}.")


def _check_picture_size(picture: Image.Image, name: str, advice: str) -> None:
    """An image-to-image job's size comes from its picture: say so when it is one Studio cannot work at
    (inpainting works on a region of any picture)."""
    if not all(MIN_SIZE <= side <= MAX_SIZE for side in picture.size):
        raise InvalidRequest(f"The picture {name} is {picture.width}x{picture.height}, and Studio works at "
                             f"{MIN_SIZE} to {MAX_SIZE} pixels a side; {advice}.")


def _find_files(loras: tuple[LoraChoice, ...], vae: str, controls: tuple[ControlGuide, ...], settings: Settings
                ) -> tuple[tuple[LoraChoice, ...], str, tuple[ControlGuide, ...], tuple[ControlSource, ...]]:
    """The LoRAs, VAE and ControlNets as the engine will find them: by name in the models folder, else by name
    in the library's linked folders (an AUTOMATIC1111 ``Lora`` folder, say), given then as paths. Bad input when
    neither has one, before the engine starts (it looks again). With them, the guides' ControlNets as found."""
    from studio.engine.control_nets import find_controlnet  # no torch: names are checked before the engine starts
    from studio.engine.loras import find_lora
    from studio.engine.vae_override import find_vae

    items: list[LibraryItem] | None = None

    def found(name: str, kind: str, find: Callable[[Path, str], object]) -> tuple[str, Any]:
        """The name as recorded, and what ``find`` gave for it (None when found in the library instead)."""
        nonlocal items
        try:
            where = find(settings.models_dir, name)
            path = Path(getattr(where, "path", where))
            # A file given by its path, outside the models folder: recorded whole, so a rerun elsewhere finds it.
            return (name if path.resolve().is_relative_to(settings.models_dir.resolve()) else str(path.resolve()),
                    where)
        except (ModelError, InvalidRequest):  # not in the models folder (find_controlnet says so as bad input)
            if items is None:
                items = scan_library(settings.models_dir, settings.extra_model_paths)
            match = next((i for i in items if i.kind == kind and name in (i.name, i.path.name)), None)
            if match is None:
                raise
            if match.problem:  # one the engine would refuse once the model is loaded (a Control-LoRA, a pickle)
                raise InvalidRequest(match.problem) from None
            return str(match.path), None

    sources: list[ControlSource] = []

    def with_controlnet(guide: ControlGuide) -> ControlGuide:
        name, source = found(guide.model, "controlnet", find_controlnet)
        sources.append(source if source is not None else find_controlnet(settings.models_dir, name))
        return replace(guide, model=name)

    loras = tuple(replace(c, name=found(c.name.strip(), "lora", find_lora)[0]) if c.name.strip() else c
                  for c in loras)
    controls = tuple(with_controlnet(g) if g.model else g for g in controls)
    return loras, found(vae.strip(), "vae", find_vae)[0] if vae.strip() else "", controls, tuple(sources)


def _check_controlnets_fit(sources: tuple[ControlSource, ...], model: Path) -> None:
    """Each ControlNet is made for the model's family, as the engine checks once the model is loaded (seconds
    later): from the files' headers, where the model's family is known from them."""
    from studio.engine.control_nets import fit_problem  # no torch

    width = _context_width(model)
    name = model.stem if model.is_file() else model.name  # as the engine names the model
    for source in sources:
        if problem := fit_problem(source, width, name):
            raise InvalidRequest(problem)


def _context_width(model: Path) -> int:
    """The model's cross-attention width (its text encoder's: what a ControlNet must be made for), from its
    headers or its UNet's config.json; 0 when they do not tell."""
    if model.is_file():
        family = checkpoint_kind(model).family
        return next((width for width, known in CONTEXT_FAMILY.items() if known == family), 0)
    try:
        width = json.loads((model / "unet" / "config.json").read_text(encoding="utf-8")).get("cross_attention_dim")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return 0
    return width if isinstance(width, int) and not isinstance(width, bool) else 0


def check_output(output: Path) -> None:
    """Refuse, before any work, an output that could not be written once the picture is made."""
    if output.suffix.lower() not in SAVE_FORMATS:
        raise InvalidRequest(f"The output {output.name!r} must end in .png, .jpg or .webp.")
    folder = output.parent.resolve()
    if folder.exists() and not folder.is_dir():
        raise InvalidRequest(f"The output folder {output.parent} is a file, not a folder.")
    if not folder.is_dir():
        raise InvalidRequest(f"The output folder {output.parent} does not exist.")
    if output.is_dir():
        raise InvalidRequest(f"The output {output} is a folder; name a file in it.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidRequest(f"Studio may not write into the output folder {output.parent} (permission denied).")


def run_generate(args: argparse.Namespace) -> int:
    from studio.cli_history import try_open_history

    settings = load_settings()
    check_output(args.output)
    notes: list[str] = []
    prepared = prepare_request(build_request(args, settings, notes))
    plugins = open_host(safe_mode=args.safe_mode)
    check_post_processors([step.processor for step in prepared.request.post], plugins.registry, "--post")
    for note in (*notes, *prepared.notes):
        print(f"note: {note}", file=sys.stderr)
    paths = studio_paths()
    env = GeneratorEnvironment.from_settings(settings, paths, args.device)
    # A real generation: recorded in the history like the window's, its pictures kept in the outputs folder.
    history = try_open_history()
    try:
        return run_job(prepared.request, env, output_paths(args.output, prepared.request.batch_count),
                       output_store=OutputStore(settings.outputs_dir) if history else None, history=history,
                       plugins=plugins)
    finally:
        if history is not None:
            history.close()


@dataclass
class JobOutcome:
    """What became of the command's job, kept outside its event loop (which a Ctrl+C ends)."""

    asked: int = 1  # pictures asked for
    code: int | None = None  # the exit status, once the job's end was said
    written: list[Path] = field(default_factory=list)  # the pictures written where -o asked, in order

    def cancelled(self) -> str:
        """The sentence for a cancelled job: with the pictures it finished, and where they were written."""
        if not self.written:
            return "cancelled."
        after = f"cancelled after {len(self.written)} of {self.asked} pictures" if self.asked > 1 else "cancelled"
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
                    outcome: JobOutcome | None = None) -> int:
    """Run one request; each image goes to outputs[i] (and, with output_store, to the outputs folder
    first, where the history rows point). ``other_text``: other tools' PNG text to carry over. ``outcome``
    follows what was written, and gets the exit status once the job's end is said, before the engine shuts
    down."""
    from tqdm import tqdm

    service = JobService(None if plugins else builtin_registry(), env, outputs=output_store, warm_up=False,
                         history=history, plugins=plugins)
    service.start()
    bar = tqdm(total=getattr(request, "steps", 1) * request.batch_count, unit="step", file=sys.stderr,
               dynamic_ncols=True,
               bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
    bar.set_description("Starting the engine")
    outcome = JobOutcome(asked=request.batch_count) if outcome is None else outcome
    try:
        code = await _follow(service, request, _JobView(request, outputs, bar, other_text, outcome))
        outcome.code = code
        return code
    finally:
        bar.close()
        service.shutdown()


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
                view.bar.set_description("Cancelling (Ctrl+C again to stop at once)")
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
                 other_text: dict[str, str] | None, outcome: JobOutcome) -> None:
        self.request = request
        self.outputs = outputs
        self.bar = bar
        self.other_text = other_text
        self.outcome = outcome
        self.rate = StepRate()  # tqdm's own rate would count the model load as steps
        self.unsaved: dict[int, str] = {}  # index: why the picture could not be written where asked
        self.handled: set[int] = set()

    def show(self, event: object) -> int | None:
        """Show one event; the exit status once the job has ended."""
        bar = self.bar
        if isinstance(event, EngineStatus) and event.message:
            bar.set_description(event.message.rstrip("…."))
        elif isinstance(event, JobProgress):
            bar.total = event.total * event.image_count
            bar.set_description(f"Image {event.image_index + 1}/{event.image_count}")
            bar.n = event.image_index * event.total + event.step
            speed = self.rate.update(event)
            if speed is not None:
                bar.set_postfix_str(format_rate(speed), refresh=False)
            bar.refresh()
        elif isinstance(event, JobOutput):
            self._write(event.index, event.output)
        elif isinstance(event, JobFinished):
            return self._finished(event)
        elif isinstance(event, JobFailed):
            bar.close()
            print(f"studio: {event.message}", file=sys.stderr)
            self._notes(event.notes)
            return EXIT_FAILED
        elif isinstance(event, JobCancelled):
            self._said_saved(event.outputs)
            if event.message:  # "Cancelled during <filter>: ...", said first
                print(f"studio: {event.message}", file=sys.stderr)
            if self.outcome.written or not event.message:
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
        try:
            save_image(output.image, self.outputs[index], output.recipe, other_text=self.other_text)
        except (StudioError, OSError) as exc:  # the folder went away or filled up meanwhile
            self.unsaved[index] = str(exc) if isinstance(exc, StudioError) else exc.strerror or str(exc)
        else:
            self.outcome.written.append(self.outputs[index])

    def _said_saved(self, outputs: tuple[GeneratedImage, ...]) -> None:
        """Each picture the job handed over (any whose own event was missed is written now), said as saved or not
        written."""
        for index, out in enumerate(outputs):
            self._write(index, out)
        self.bar.close()
        for index, (path, out) in enumerate(zip(self.outputs, outputs)):
            if index in self.unsaved:
                kept = f"; it is kept in {out.path}" if out.path else ""
                print(f"studio: {path} could not be written ({self.unsaved[index]}){kept}.", file=sys.stderr)
                continue
            seed = f"seed {out.recipe.seed}, " if out.recipe.seed >= 0 else ""
            print(f"Saved {path} ({seed}{out.image.width}x{out.image.height})")

    def _finished(self, event: JobFinished) -> int:
        self._said_saved(event.outputs)
        for warning in event.warnings:
            print(f"studio: {warning}", file=sys.stderr)
        self._notes(event.notes)
        asked = self.outcome.asked
        if len(event.outputs) < asked:  # a plugin generator that made fewer than asked for
            made = ("made no picture; nothing was written" if not event.outputs else
                    f"made {len(event.outputs)} of the {asked} pictures asked for")
            print(f"studio: the generator {getattr(self.request, 'generator', '')!r} {made}.", file=sys.stderr)
            return EXIT_FAILED
        print(f"Done in {format_seconds(event.elapsed)}.", file=sys.stderr)
        return EXIT_FAILED if self.unsaved else 0

    @staticmethod
    def _notes(notes: tuple[str, ...]) -> None:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)


def run_postprocess(args: argparse.Namespace) -> int:
    """``studio postprocess IN -o OUT --method ID``: the picture's recipe is kept, extended by the step, and
    other tools' metadata (a ComfyUI workflow) is carried over."""
    from studio.core.image_text import other_tools_text
    from studio.core.images import read_recipe

    settings = load_settings()
    check_output(args.output)
    image = open_image(args.input)
    mask = read_mask(args.mask, image, args.input.name) if args.mask is not None else None
    request = PostProcessRequest(args.method, image, collect_params(args), read_recipe(args.input),
                                 strength=args.strength, mask=mask)
    plugins = open_host(safe_mode=args.safe_mode)
    check_post_processors([args.method], plugins.registry, "--method")
    env = GeneratorEnvironment.from_settings(settings, studio_paths())
    return run_job(request, env, [args.output], plugins=plugins, other_text=other_tools_text(args.input))


def run_convert(args: argparse.Namespace) -> int:
    """``studio convert-weights IN OUT``: the one place a pickle checkpoint is read, and only its tensors."""
    from studio.engine.convert import convert_to_safetensors

    if args.dest.suffix.lower() != ".safetensors":
        print(f"studio: The output {args.dest.name!r} must end in .safetensors.", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        summary = convert_to_safetensors(args.source, args.dest)
    except StudioError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"Wrote {args.dest}: {summary['tensors']} tensors, {summary['bytes'] / 2**20:.1f} MiB.")
    return 0
