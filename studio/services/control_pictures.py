"""Keeping a job's control pictures: each ControlNet guide's picture is saved in the outputs' sources folder before
the engine runs, and the guide then names that copy, so the picture's recipe and its history entry point at a file
that stays (the person's own file may move, or the picture was drawn in the window and has no file at all). The
picture parameters of plugin generators and chain steps are kept the same way (``keep_parameter_pictures``), named
``-picture.png`` (``-control.png`` before, still read)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image

from studio.core.control import guide_label
from studio.core.errors import StudioError
from studio.core import images
from studio.core.images import pixel_digest
from studio.core.parameters import SOURCE_KEY, ImageParam
from studio.core.requests import GenerationRequest
from studio.engine.worker import describe_exception
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Registry
from studio.services.outputs import OutputStore, is_kept_control

log = logging.getLogger(__name__)


def keep_control_pictures(request: GenerationRequest, outputs: OutputStore | None,
                          note: Callable[[str], None]) -> GenerationRequest:
    """The request with each guide's ``image_path`` set to its kept copy: one file per distinct picture (two guides
    reading one photo share it, and so do the day's jobs that read it: ``OutputStore.save_control``). A guide that
    names a copy kept before (a rerun, Load parameters) keeps naming it. The entries that use a kept copy share it,
    and it stays while any of them does. A picture that cannot be kept only costs a note, never the job: its guide
    keeps the path it had (the file given on the command line)."""
    if not request.controls or outputs is None:
        return request
    kept: dict[str, str | None] = {}
    guides = []
    for number, guide in enumerate(request.controls, 1):
        if guide.image is None or (is_kept_control(guide.image_path) and Path(guide.image_path).is_file()):
            guides.append(guide)  # nothing to keep (prepare_request refuses it), or kept already
            continue
        key = pixel_digest(guide.image)
        if key not in kept:
            try:
                kept[key] = str(outputs.save_control(guide.image))
            except Exception as exc:  # noqa: BLE001 - keeping the picture is a nicety, never fatal
                log.warning("Could not keep the control picture of a job", exc_info=True)
                label = guide_label(number, len(request.controls), capital=False)
                note(f"The control picture of {label} could not be kept for the history: {describe_exception(exc)}")
                kept[key] = None
        path = kept[key]
        guides.append(guide if path is None else replace(guide, image_path=path))
    return replace(request, controls=tuple(guides))



def keep_parameter_pictures(request: GenerationRequest, registry: Registry, outputs: OutputStore | None,
                            note: Callable[[str], None]) -> GenerationRequest:
    """The request with each picture parameter of its plugin generator and of its chain's steps kept as a control
    picture is, named for what it is (``OutputStore.save_parameter_picture``: one file per distinct picture, ending
    ``-picture.png``): the value becomes the picture, marked with its kept copy (``SOURCE_KEY``), so the history
    records that copy and a rerun or Load parameters finds it though the person's file moved or the picture came
    from the canvas. A value naming a copy kept before stays (``-control.png``, as older Studios named it, too). A
    picture that cannot be kept only costs a note, never the job: the history notes it as before. Reads the
    person's files: run it on the engine thread."""
    if outputs is None:
        return request
    kept: dict[str, str | None] = {}
    params = request.params
    if params and request.generator != "diffusers":
        params = _kept_values(registry, GENERATOR, request.generator, params, outputs, kept, note)
    steps = tuple(step if not step.params else replace(step, params=_kept_values(
        registry, POSTPROCESSOR, step.processor, step.params, outputs, kept, note)) for step in request.post)
    return replace(request, params=params, post=steps)


def _kept_values(registry: Registry, kind: str, contribution_id: str, values: dict[str, Any], outputs: OutputStore,
                 kept: dict[str, str | None], note: Callable[[str], None]) -> dict[str, Any]:
    try:
        contribution = registry.get(kind, contribution_id)
    except StudioError:  # the job says it is gone
        return values
    values = dict(values)
    for param in contribution.parameters:
        value = values.get(param.name)
        if not isinstance(param, ImageParam) or not isinstance(value, str | Image.Image):
            continue
        source = value if isinstance(value, str) else value.info.get(SOURCE_KEY)
        if isinstance(source, str) and is_kept_control(source) and Path(source).is_file():
            continue  # kept before (a rerun, Load parameters): still named
        key = None
        try:
            picture = images.open_image(Path(value)) if isinstance(value, str) else value
            key = pixel_digest(picture)
            if key not in kept:
                kept[key] = str(outputs.save_parameter_picture(picture))
        except Exception as exc:  # noqa: BLE001 - keeping the picture is a nicety, never fatal
            log.warning("Could not keep the picture of %s for the history", param.name, exc_info=True)
            note(f"{contribution.title}: {param.title}: the picture could not be kept for the history: "
                 f"{describe_exception(exc)}")
            if key is not None:  # the same picture again is not tried (and said) twice
                kept[key] = None
            continue
        if (path := kept[key]) is None:
            continue
        if picture is value:  # the person's (the canvas's): its info is not Studio's to mark
            picture = picture.copy()
        picture.info[SOURCE_KEY] = path
        values[param.name] = picture
    return values
