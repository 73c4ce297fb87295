"""A job that would run no denoising step, refused in words that say where its steps and strength came from: a
value the person never typed (the settings' generation defaults) is said as the settings', with where to change it
(studio.core.requests says the same for the window, where every value is on screen)."""

from __future__ import annotations

import argparse

from studio.core.errors import InvalidRequest
from studio.core.requests import FROM_SETTINGS, GenerationRequest


def steps_said(count: int) -> str:
    return f"{count} step{'s' * (count != 1)}"


# A rerun's values are all its history entry's: none typed (rerun takes no --steps or --strength).
RECORDED = argparse.Namespace(steps=None, strength=None, hires_steps=None, hires_strength=None)


def check_denoising_steps(args: argparse.Namespace, request: GenerationRequest, recorded_in: str = "") -> None:
    """diffusers runs int(steps x strength) steps of an img2img or inpainting job, and of the hires fix's second
    pass: where that is none and a value came from the settings, one sentence that says so (prepare_request says
    it where the person typed both). ``recorded_in`` ("history entry 3"; with ``RECORDED`` as ``args``): the values
    are that entry's, which ``studio history rerun`` cannot change; the sentence says so.

    prepare_request calls it with the request checked: every value in range, and the hires fix left out where it
    does not apply (a plugin's generator, a picture to start from)."""
    if request.generator != "diffusers":
        return  # a plugin's generator runs its own steps
    if request.init_image is not None:
        _check(request.steps, request.strength, args.steps is None, args.strength is None,
               "no denoising step would run", "--steps", "--strength", recorded_in)
    hires = request.hires
    if hires is not None:
        # Hires steps 0 are as many as the first pass's.
        steps_given = args.hires_steps is not None if hires.steps else args.steps is not None
        _check(hires.steps_for(request.steps), hires.strength, not steps_given, args.hires_strength is None,
               "the hires fix's second pass would run no step", "--hires-steps", "--hires-strength", recorded_in)


def _check(steps: int, strength: float, steps_from_settings: bool, strength_from_settings: bool, what: str,
           steps_option: str, strength_option: str, recorded_in: str = "") -> None:
    if int(steps * strength) >= 1 or not (steps_from_settings or strength_from_settings):
        return
    if recorded_in:
        raise InvalidRequest(f"With {steps_said(steps)} and a strength of {strength:g} {what} (as {recorded_in} "
                             f"recorded them), so it cannot be run again; studio generate with more {steps_option} "
                             f"or a higher {strength_option} makes it anew.")
    if steps_from_settings and strength_from_settings:
        source, give = f"{steps_said(steps)} and strength {strength:g} {FROM_SETTINGS}", \
            f"{steps_option}/{strength_option}"
    elif steps_from_settings:
        source, give = f"{steps_said(steps)} {FROM_SETTINGS}", f"more {steps_option} or a higher {strength_option}"
    else:
        source, give = f"strength {strength:g} {FROM_SETTINGS}", f"a higher {strength_option} or more {steps_option}"
    raise InvalidRequest(f"With {steps_said(steps)} and a strength of {strength:g} {what} ({source}); give {give} "
                         f"or change the defaults in Settings.")
