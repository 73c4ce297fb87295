"""Running generators and post-processors, Studio's own and plugins', on the engine thread.

A plugin's code runs guarded (its own thread, its own failures); Studio's built-ins run inline.
Every plugin failure is counted, and a plugin that keeps failing is switched off for the session.
"""

from __future__ import annotations

import logging
import os
import random
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, JobCancelledError, StudioError
from studio.core.generation import JobContext
from studio import __version__
from studio.core.metadata import Recipe
from studio.core.post_blend import blend_result, check_blend, check_blend_memory, scale_for_blend
from studio.core.parameters import (
    MAX_SEED,
    ImageParam,
    MissingPicture,
    Param,
    SeedParam,
    load_pictures,
    params_for_record,
    validate_params,
)
from studio.core.requests import GenerationRequest, PostProcessRequest, PostStep
from studio.plugin_host.guard import GuardedContext, PluginFailed, PluginHung, run_guarded
from studio.plugin_host.host import PluginHost
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution, Registry, plugin_environment
from studio.services.autosave import RunningPlugin

log = logging.getLogger(__name__)

MAX_OUTPUT_SIDE = 16384


def check_plugin_inputs(registry: Registry, request: GenerationRequest | PostProcessRequest,
                        notes: list[str] | None = None) -> Any:
    """The request with its plugin parameters checked, defaults filled and random seeds fixed (so the recipe
    can remake the picture); InvalidRequest names what is wrong. Post-processors' picture files are only checked
    to exist here (this runs on the window's thread); the engine thread reads them (load_pictures). A plugin
    generator's pictures given as pictures are neither converted nor copied here either (generate does it). A chain
    step whose picture file is gone is left out, said in ``notes``: the generation is not refused for it, as a step
    that fails while it runs leaves the picture as it was (given no ``notes``, it is refused)."""
    if isinstance(request, PostProcessRequest):
        step = _checked_step(registry, PostStep(request.processor, request.params, request.strength))
        return replace(request, params=step.params, mask=check_blend(request.image, request.strength, request.mask))
    if request.generator != "diffusers":
        contribution = _contribution(registry, GENERATOR, request.generator)
        if request.plugin and not contribution.builtin and contribution.plugin_id != request.plugin:
            raise InvalidRequest(f"This was made by the generator {request.generator!r} of the plugin "
                                 f"{request.plugin}, but that id now belongs to {contribution.owner}, which would "
                                 f"make something else; enable {request.plugin} (and disable {contribution.owner}) "
                                 "to make it again.")
        request = replace(request, params=_fix_seeds(contribution, validate_params(
            contribution.parameters, request.params, contribution.title, copies_later=True)))
    elif request.params:
        raise InvalidRequest("Stable Diffusion takes no plugin parameters.")
    steps = []
    for step in request.post:
        try:
            steps.append(_checked_step(registry, _with_model(registry, step, request.model)))
        except MissingPicture as exc:
            if notes is None:
                raise
            notes.append(f"{exc} That step was left out: choose another picture for it in the post-processing "
                         "chain.")
    return replace(request, post=tuple(steps))


def _with_model(registry: Registry, step: PostStep, model: str) -> PostStep:
    """A chain step that runs Studio's generator (Restyle) with no model of its own uses the generation's: its
    form starts empty when added in the chain dialog, and "no model" failed on every picture. Filled in here, the
    recipe records the model it ran with."""
    if not model or str(step.params.get("model", "")).strip() or not registry.runs_generator(POSTPROCESSOR,
                                                                                             step.processor):
        return step
    if not any(p.name == "model" for p in registry.get(POSTPROCESSOR, step.processor).parameters):
        return step
    return replace(step, params={**step.params, "model": model})


def _contribution(registry: Registry, kind: str, id: str) -> Contribution:
    try:
        return registry.get(kind, id)
    except StudioError as exc:
        raise InvalidRequest(str(exc)) from None


def _checked_step(registry: Registry, step: PostStep) -> PostStep:
    contribution = _contribution(registry, POSTPROCESSOR, step.processor)
    if not 0.0 <= step.strength <= 1.0:
        raise InvalidRequest(f"{contribution.title}: the strength must be between 0 and 1, not {step.strength:g}.")
    return PostStep(step.processor, _fix_seeds(contribution, validate_params(
        contribution.parameters, step.params, contribution.title, pictures_later=True)), step.strength)


def _fix_seeds(contribution: Contribution, values: dict[str, Any]) -> dict[str, Any]:
    for param in contribution.parameters:
        if isinstance(param, SeedParam) and values.get(param.name) == -1:
            values[param.name] = random.randint(0, MAX_SEED)
    return values


class ContributionRunner:
    """Calls contributions for the job service; ``notify`` tells the person when a plugin is switched off."""

    def __init__(self, registry: Registry, env: GeneratorEnvironment, host: PluginHost | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        self._registry = registry
        self._env = env
        self._host = host
        self._notify = notify
        self._step_pictures = StepPictures()
        # Told which plugin's code runs (None: none now), so that one that kills the process can be named after.
        self.watch: Callable[[RunningPlugin | None], None] | None = None
        self._running: RunningPlugin | None = None  # the marker watch was last given

    def use_environment(self, env: GeneratorEnvironment) -> None:
        self._env = env

    def generate(self, request: GenerationRequest, context: JobContext) -> Iterator[tuple[Image.Image, Recipe]]:
        contribution = self._registry.get(GENERATOR, request.generator)
        if contribution.builtin:
            yield from self._registry.instance(GENERATOR, contribution.id, self._env).generate(request, context)
            return
        # Its picture parameters as it takes them (RGB or RGBA), each its own copy to draw on: made here, on the
        # engine thread, not at submit on the window's. The request's own pictures are the person's.
        pictures = load_pictures(contribution.parameters, request.params, contribution.title)
        # As the picture's recipe notes them (before the plugin may draw on them): a picture by its size, never by
        # the path of the copy the history keeps (the picture's file travels; the history stays on this machine).
        recorded = params_for_record(pictures)
        context.status(message=_running(contribution))  # until its first progress: a plugin may take long

        def produce(guarded: GuardedContext) -> Iterable[Any]:
            own = replace(request, params=pictures, init_image=_own(request.init_image), mask=_own(request.mask))
            return self._registry.instance(GENERATOR, contribution.id, self._env).generate(own, guarded)

        def check(item: Any) -> tuple[Image.Image, Any]:
            image, recipe = item if isinstance(item, tuple) and len(item) == 2 else (item, None)
            return _checked_image(image, contribution, own_copy=True, note=context.note), recipe

        items = self._guarded(contribution, produce, context, check=check)
        with closing(items):  # stopping early stops the plugin too
            for index, (image, recipe) in enumerate(items):
                if index == request.batch_count:  # never more than asked for: a runaway plugin would fill the disk
                    asked = "1 picture" if request.batch_count == 1 else f"{request.batch_count} pictures"
                    context.note(f"The plugin {contribution.owner} made more than the {asked} asked for; Studio "
                                 f"kept the first {request.batch_count} and stopped it.")
                    return
                yield self._plugin_output(contribution, request, recorded, index, image, recipe)

    def runs_generator(self, step: PostStep) -> bool:
        return self._registry.runs_generator(POSTPROCESSOR, step.processor)

    def post_process(self, step: PostStep, image: Image.Image, recipe: Recipe | None, context: JobContext,
                     image_index: int = 0, mask: Image.Image | None = None) -> tuple[Image.Image, Recipe | None]:
        """One step on one picture, blended by the step's strength and kept to the mask; the recipe records it."""
        contribution = self._registry.get(POSTPROCESSOR, step.processor)
        step = replace(step, params=self._step_pictures.values(step, contribution))  # the step's own copies
        if contribution.builtin:
            indexed = GuardedContext(context, self._env.device, self._env.data_dir, image_index)
            result = _checked_image(self._registry.instance(POSTPROCESSOR, contribution.id, self._env).process(
                image, step.params, indexed), contribution, note=context.note)
        else:
            def produce(guarded: GuardedContext) -> Iterable[Any]:
                instance = self._registry.instance(POSTPROCESSOR, contribution.id, self._env)
                # Neither the picture nor the dict is theirs (the recipe records the dict after; its pictures are
                # copies already).
                return [instance.process(image.copy(), dict(step.params), guarded)]

            (result,) = self._guarded(contribution, produce, context, image_index,
                                      check=lambda item: _checked_image(item, contribution, own_copy=True,
                                                                        note=context.note))
        base = image
        if step.strength < 1.0 or mask is not None:
            scaled = result.size != image.size
            check_blend_memory(result.size, scaled)
            if scaled:
                base, mask = scale_for_blend(image, mask, result.size)  # an upscaler: blend at the new size
        result = blend_result(base, result, step.strength, mask)
        if recipe is not None:
            record = {"processor": step.processor, "version": contribution.plugin_version or __version__,
                      "params": params_for_record(step.params), "strength": step.strength, "masked": mask is not None}
            # A recipe's size is the generation's (a hires fix's first pass), as A1111 keeps it through its upscalers:
            # run again, the chain makes the same size again. Only a picture Studio did not make records its own.
            size = {} if recipe.describes_generation else {"width": result.width, "height": result.height}
            recipe = replace(recipe, post=(*recipe.post, record), **size)
        return result, recipe

    def run_post_request(self, request: PostProcessRequest, context: JobContext) -> tuple[Image.Image, Recipe]:
        recipe = request.recipe if isinstance(request.recipe, Recipe) else Recipe.post_only(request.width,
                                                                                            request.height)
        step = PostStep(request.processor, request.params, request.strength)
        context.status(message=_running(self._registry.get(POSTPROCESSOR, request.processor)))
        return self.post_process(step, request.image, recipe, context, mask=request.mask)

    def _guarded(self, contribution: Contribution, produce: Callable[[GuardedContext], Iterable[Any]],
                 context: JobContext, image_index: int | None = None,
                 check: Callable[[Any], Any] = lambda item: item) -> Iterator[Any]:
        """The plugin's items, each through ``check``: what it returns that Studio cannot use is its failure too,
        counted as any other (three switch it off)."""
        env = plugin_environment(self._env, contribution, context.note)
        guarded = GuardedContext(context, self._env.device, env.data_dir, image_index)
        # Each item is checked (a picture loaded, copied) on the plugin's thread: whatever goes wrong is its failure.
        log.info("Running %s (plugin %s %s)", contribution.title, contribution.owner, contribution.plugin_version)
        watch = self.watch
        # Guards nest (a plugin generator's post-step plugin runs between its pictures): the outer plugin is
        # marked again when the inner one is done, not left unmarked for its next picture.
        outer = self._running
        self._running = RunningPlugin(contribution.plugin_id, contribution.owner, contribution.plugin_version,
                                      contribution.title)
        if watch is not None:
            watch(self._running)
        items = run_guarded(lambda: produce(guarded), context, guarded, f"The plugin {contribution.owner}",
                            check=check)
        try:
            with closing(items):  # a failed check stops the plugin too (run_guarded closes its context)
                yield from items
        except JobCancelledError:
            raise
        except PluginHung as exc:
            # It did not stop after the person's cancel: the job ends cancelled, as asked, and the plugin's
            # failure count is left alone (the cancel was the person's); its thread is left behind, though, so a
            # second hang switches it off (PluginHost.report_hang).
            notice = self._failed(contribution, str(exc), hung=True)
            context.note(f"{exc} {notice}".strip())
            raise JobCancelledError() from exc
        except PluginFailed as exc:
            notice = self._failed(contribution, str(exc))
            raise PluginFailed(f"{exc} {notice}".strip()) from exc
        finally:
            self._running = outer
            if watch is not None:
                watch(outer)

    def _failed(self, contribution: Contribution, message: str, hung: bool = False) -> str:
        if self._host is None:
            return ""
        report = self._host.report_hang if hung else self._host.report_failure
        notice = report(contribution.plugin_id, message)
        if notice and self._notify is not None:
            self._notify(notice)
        return notice

    def _plugin_output(self, contribution: Contribution, request: GenerationRequest, recorded: dict[str, Any],
                       index: int, image: Image.Image, recipe: Any) -> tuple[Image.Image, Recipe]:
        if not isinstance(recipe, Recipe):
            recipe = Recipe(prompt=request.prompt, negative_prompt=request.negative_prompt, steps=0, sampler="",
                            cfg_scale=0, seed=request.seed_for(index), width=image.width, height=image.height,
                            model_name=contribution.title)
        recipe = replace(recipe, generator=contribution.id, generator_version=contribution.plugin_version,
                         plugin=contribution.plugin_id,
                         params=recorded, width=image.width, height=image.height)
        return image, recipe


class StepPictures:
    """Each chain step's picture parameters read once for all the pictures of a job: a batch runs each step once a
    picture, and decoding a 4096² style picture again for each took 0.16-0.19 s (a copy: 7 ms). Each call gets copies
    of its own (a plugin may draw on them); the pictures read are kept only while their step (its job's request)
    lives, for the last KEPT_STEPS steps with pictures at most."""

    KEPT_STEPS = 4

    def __init__(self) -> None:
        # id(step) -> (the step, its files' stamp, its values read); the oldest first
        self._kept: OrderedDict[int, tuple[weakref.ref[PostStep], tuple[Any, ...], dict[str, Any]]] = OrderedDict()

    def values(self, step: PostStep, contribution: Contribution) -> dict[str, Any]:
        """The step's parameter values with each picture read, checked and copied."""
        if not any(isinstance(param, ImageParam) for param in contribution.parameters):
            # Nothing to read, so nothing kept: a long chain's other steps would push out the ones with pictures.
            return load_pictures(contribution.parameters, step.params, contribution.title)
        stamp = _files_stamp(contribution.parameters, step.params)  # a file changed since (a rerun of one request)
        kept = self._kept.get(id(step))
        if kept is not None and kept[0]() is step and kept[1] == stamp:
            self._kept.move_to_end(id(step))
            return _own_pictures(kept[2])
        loaded = load_pictures(contribution.parameters, step.params, contribution.title)
        reference = weakref.ref(step)
        self._kept[id(step)] = (reference, stamp, loaded)
        self._kept.move_to_end(id(step))
        while len(self._kept) > self.KEPT_STEPS:
            self._kept.popitem(last=False)
        weakref.finalize(step, self._forget, id(step), reference)  # no strong reference: the step may go
        return _own_pictures(loaded)

    def _forget(self, key: int, reference: weakref.ref[PostStep]) -> None:
        # Run where the step's last reference goes (often the window's thread) while the engine's may evict the key.
        kept = self._kept.get(key)
        if kept is not None and kept[0] is reference:  # not a later step that was given the same id
            self._kept.pop(key, None)


def _files_stamp(schema: Sequence[Param], values: Mapping[str, Any]) -> tuple[Any, ...]:
    """Size and modification time of each picture parameter's file."""
    pictures = {p.name for p in schema if isinstance(p, ImageParam)}
    stamp = []
    for name in sorted(pictures & values.keys()):
        if isinstance(path := values[name], str):
            try:
                status = os.stat(os.path.expanduser(path))
            except (OSError, ValueError):  # gone or unreadable: load_pictures says so
                continue
            stamp.append((name, status.st_size, status.st_mtime_ns))
    return tuple(stamp)


def _running(contribution: Contribution) -> str:
    """The status line while a contribution runs: whose code the job is waiting on, where it is a plugin's (one that
    takes long, or hangs, is not taken for Studio)."""
    whose = "" if contribution.builtin else f" (plugin {contribution.owner})"
    return f"Running {contribution.title}{whose}…"


def _own(image: Image.Image | None) -> Image.Image | None:
    return image.copy() if isinstance(image, Image.Image) else image


def _own_pictures(values: dict[str, Any]) -> dict[str, Any]:
    """The values with every picture copied (keeping its info): a plugin may draw on what it is given."""
    return {name: _own(value) for name, value in values.items()}


def _checked_image(image: Any, contribution: Contribution, own_copy: bool = False,
                   note: Callable[[str], None] | None = None) -> Image.Image:
    """The picture as Studio keeps it (RGB or RGBA), or PluginFailed naming the plugin. ``own_copy``: a plugin's
    picture is copied, since the plugin may go on to change the object it handed over (a reused buffer). A 16-bit,
    32-bit or float picture is scaled to 8 bits, said in ``note``."""
    if not isinstance(image, Image.Image):
        raise PluginFailed(f"The plugin {contribution.owner} returned {type(image).__name__} instead of a picture.")
    if not (0 < image.width <= MAX_OUTPUT_SIDE and 0 < image.height <= MAX_OUTPUT_SIDE):
        raise PluginFailed(f"The plugin {contribution.owner} returned a {image.width}x{image.height} picture, "
                           "which Studio cannot use.")
    if image.mode.startswith("I") or image.mode.startswith("F"):
        kind = "16-bit" if image.mode.startswith("I;16") else "32-bit" if image.mode == "I" else "floating-point"
        if note is not None:
            note(f"The plugin {contribution.owner} returned a {kind} picture; Studio scaled it to 8 bits.")
        return _to_8_bits(image)
    if image.mode not in ("RGB", "RGBA"):
        return image.convert("RGB")  # a new picture
    return image.copy() if own_copy else image


def _to_8_bits(image: Image.Image) -> Image.Image:
    """A 16-bit picture by its range (Pillow's convert clips it: most of it turned white), a 32-bit or float one by
    its own darkest and brightest values (they have no fixed range); as RGB."""
    values = np.asarray(image)
    if image.mode.startswith("I;16"):
        grey = ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)
    else:
        values = values.astype(np.float32)
        finite = np.isfinite(values)
        low, high = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 0.0)
        values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
        if high > low:
            values -= low
            values *= 255.0 / (high - low)
        grey = np.clip(np.rint(values, out=values), 0, 255).astype(np.uint8)  # all one value: kept, within 0-255
    return Image.fromarray(grey, "L").convert("RGB")
