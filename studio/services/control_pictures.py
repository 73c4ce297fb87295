"""Keeping a job's control pictures: each ControlNet guide's picture is saved in the outputs' sources folder before
the engine runs, and the guide then names that copy, so the picture's recipe and its history entry point at a file
that stays (the person's own file may move, or the picture was drawn in the window and has no file at all)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from studio.core.control import guide_label
from studio.core.images import pixel_digest
from studio.core.requests import GenerationRequest
from studio.engine.worker import describe_exception
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

