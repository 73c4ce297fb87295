"""The request ``studio generate`` asks for, built from its arguments and checked before the engine starts: the
pictures read, the model, LoRAs, VAE, ControlNets and upscaler found as the engine will find them, and what does
not fit said as bad input, with the names there are (the engine would say it only once started)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.cli_addon_files import check_controlnets_fit, check_loras_fit, check_vae_fits, find_files, hires_upscaler
from studio.cli_control import control_guides
from studio.cli_denoising import check_denoising_steps
from studio.cli_device import check_device
from studio.cli_option_values import parse_lora, parse_outpaint, parse_size, read_mask
from studio.cli_params import collect_params, parse_post_step
from studio.core.annotators import DOWNLOAD_COMMAND
from studio.core.control import extend_guide
from studio.core.errors import InvalidRequest
from studio.core.hires import HiresFix
from studio.core.images import open_image
from studio.core.inpaint import InpaintOptions, extend_canvas
from studio.core.models import check_model_folder, resolve_model
from studio.core.prompt_loras import tag_choices, take_lora_tags
from studio.core.request_checks import check_loras
from studio.core.requests import (
    MAX_INPAINT_SIDE, MAX_SIZE, MIN_SIZE, GenerationRequest, PreparedRequest, prepare_request,
)
from studio.core.settings import Settings
from studio.engine.single_file import check_single_file


def prepare_generation(args: argparse.Namespace, settings: Settings, notes: list[str]) -> PreparedRequest:
    """The request built and checked: a value out of range said first, then steps x strength that run no step in
    words that say which came from the settings (check_denoising_steps)."""
    return prepare_request(build_request(args, settings, notes), from_settings=settings_fields(args),
                           check_denoising=lambda request: check_denoising_steps(args, request))


def build_request(args: argparse.Namespace, settings: Settings, notes: list[str] | None = None) -> GenerationRequest:
    notes = [] if notes is None else notes
    inpainting = args.mask is not None or args.outpaint is not None
    if inpainting and args.init_image is None:
        option = "--mask" if args.mask is not None else "--outpaint"
        raise InvalidRequest(f"{option} needs --init-image, the picture to paint into.")
    _check_inpaint_options(args, inpainting)
    if args.strength is not None and args.init_image is None:  # it would be ignored: a new picture starts from noise
        hires = " (the hires fix's second pass takes --hires-strength)" if args.hires is not None else ""
        raise InvalidRequest(f"--strength needs --init-image: it says how much of that picture may change{hires}.")
    extend = parse_outpaint(args.outpaint) if args.outpaint is not None else None
    init_image = open_image(args.init_image) if args.init_image else None
    mask = read_mask(args.mask, init_image, args.init_image.name, None if extend else "regenerate") \
        if args.mask is not None else None
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
        width, height = settings.generation.width, settings.generation.height
    given = {"masked_only": args.masked_only, "padding": args.padding, "fill": args.fill, "feather": args.feather}
    options = replace(settings_inpaint_options(settings),
                      **{name: value for name, value in given.items() if value is not None})
    if inpainting and not options.masked_only and max(init_image.size) > MAX_SIZE:  # the window: "masked area only"
        size = f"{init_image.width}x{init_image.height}"
        what = f"would be {size} after outpainting" if extend else f"{args.init_image.name} is {size}"
        instead = "leave it out" if args.masked_only is False else "give --masked-only"  # else the settings' choice
        raise InvalidRequest(f"The picture {what}, too large to inpaint with --whole-picture (at most {MAX_SIZE} "
                             f"pixels a side); {instead} to work on the masked area only.")
    generator = args.generator or "diffusers"
    if generator != "diffusers":
        _refuse_what_a_plugin_does_not_use(args, generator)
    # The prompt's <lora:…> tags are found as --lora names are; prepare_request takes them out of the prompt.
    # (Checked here: a tag naming a chosen LoRA is one LoRA, which prepare_request says.)
    loras = (*check_loras(tuple(parse_lora(text) for text in args.lora)), *tag_choices(args.prompt))
    hires = _hires(args, settings)
    if generator == "diffusers":
        if not args.model:
            raise InvalidRequest("--model is needed: a checkpoint file or diffusers folder, or the name of a model "
                                 f"in the library (studio models list; models folder {settings.models_dir}).")
        model = str(resolve_model(args.model, settings.models_dir, settings.extra_model_paths))
        check_model_folder(Path(model))  # headers only: not a model, or a damaged one, is bad input (before torch)
        loras, vae, controls, sources = find_files(loras, args.vae or "", control_guides(args, generator), settings)
        check_controlnets_fit(sources, Path(model))
        # As the job will have them: a tag naming a chosen LoRA is that one (a bad tag is said here, before torch).
        check_loras_fit(take_lora_tags(args.prompt, _negative(args, settings), loras)[1], Path(model), settings)
        check_vae_fits(vae, Path(model), settings)
        check_single_file(Path(model), settings.models_dir)  # one of another size than its configs: the same
        if hires is not None and init_image is None:  # one that applies (a note leaves out the others)
            hires = replace(hires, upscaler=hires_upscaler(
                hires.upscaler, settings, "" if args.hires_upscaler is not None else " (the settings' hires upscaler)"))
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
    request = GenerationRequest(
        model=model, prompt=args.prompt, negative_prompt=_negative(args, settings),
        width=width, height=height, seed=args.seed, batch_count=args.batch_count, init_image=init_image,
        **_sampling(args, settings),
        strength=settings.generation.strength if args.strength is None else args.strength,
        mask=mask, inpaint=options, generator=generator, params=collect_params(args),
        post=tuple(parse_post_step(text) for text in args.post), loras=loras, vae=vae,
        memory=args.memory or settings.memory, speed=args.speed or settings.speed, hires=hires,
        controls=controls,
    )
    check_device(args.device)  # last: it loads torch, and what is wrong with the rest is said without it
    return request


# What each inpainting option says, for the sentence that refuses it where nothing is inpainted.
_INPAINT_OPTIONS = {
    "--masked-only": "it works on the masked area only, at the model's own size",
    "--whole-picture": "it inpaints the masked area with the whole picture as the model's canvas",
    "--padding": "it is how much of the picture around the masked area the model sees",
    "--fill": "it says what the masked area starts from",
    "--feather": "it softens the mask's edge where the new pixels meet the kept ones",
}


def _refuse_what_a_plugin_does_not_use(args: argparse.Namespace, generator: str) -> None:
    """Studio's own generator's options given with a plugin's generator, refused as --model is: it takes the
    prompts, seed, size, batch count and its own options (cli_plugin_help.PLUGIN_GENERATOR_OPTIONS, what its --help
    lists), so a --steps 30 would make nothing other than without it."""
    if args.model is not None:  # two things that would make the picture, as --init-image is refused
        raise InvalidRequest(f"The generator {generator!r} makes its pictures without a model; leave out --model "
                             "(a model is for Studio's own generator, diffusers).")
    given = [option for option, value in (
        ("--steps", args.steps), ("--cfg", args.cfg), ("--scheduler", args.scheduler), ("--lora", args.lora or None),
        ("--vae", args.vae or None), ("--hires", args.hires), ("--hires-steps", args.hires_steps),
        ("--hires-strength", args.hires_strength), ("--hires-upscaler", args.hires_upscaler),
        ("--speed", args.speed), ("--memory", args.memory)) if value is not None]
    if given:
        them = "them" if len(given) > 1 else "it"
        raise InvalidRequest(f"The generator {generator!r} does not use {', '.join(given)}; leave {them} out "
                             f"({'they are' if len(given) > 1 else 'it is'} for Studio's own generator, diffusers; "
                             f"`studio generate --generator {generator} --help` lists the options it uses).")


def _check_inpaint_options(args: argparse.Namespace, inpainting: bool) -> None:
    """An inpainting option is bad input where nothing is inpainted (no --mask, no --outpaint), as --strength is
    without --init-image: it was ignored, and the job ran as image to image, or made a new picture."""
    given = [option for option, value in (
        ("--masked-only" if args.masked_only else "--whole-picture", args.masked_only), ("--padding", args.padding),
        ("--fill", args.fill), ("--feather", args.feather)) if value is not None]
    if given and not inpainting:
        option = given[0]
        raise InvalidRequest(f"{option} needs --mask or --outpaint (with --init-image): {_INPAINT_OPTIONS[option]}.")
    if args.padding is not None and args.masked_only is False:
        raise InvalidRequest("--padding applies to the masked area only, not --whole-picture: with that the model "
                             "sees the whole picture.")


def _sampling(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """The steps, CFG scale and scheduler given, else the settings' (what the window starts with)."""
    defaults = settings.generation
    return {"steps": defaults.steps if args.steps is None else args.steps,
            "cfg_scale": defaults.cfg_scale if args.cfg is None else args.cfg,
            "scheduler": defaults.scheduler if args.scheduler is None else args.scheduler}


def settings_inpaint_options(settings: Settings) -> InpaintOptions:
    """The inpainting options the window starts with (the settings' generation defaults)."""
    defaults = settings.generation
    return InpaintOptions(defaults.inpaint_masked_only, defaults.inpaint_padding, defaults.inpaint_fill,
                          defaults.inpaint_feather)


def _negative(args: argparse.Namespace, settings: Settings) -> str:
    """The negative prompt given (an empty one too), else the one the window starts with."""
    return settings.generation.negative_prompt if args.negative is None else args.negative


def settings_fields(args: argparse.Namespace) -> frozenset[str]:
    """The request fields ``studio generate`` takes from the settings' generation defaults, the person having typed
    none: prepare_request says a refusal of one came from there, and where to change it. (The steps and strength
    are said so by check_denoising_steps (prepare_generation), the upscaler where it is looked for: hires_upscaler.)"""
    fields = {"negative_prompt"} if args.negative is None else set()
    if args.size is None and args.init_image is None:  # else the size given, or the picture's
        fields |= {"width", "height"}
    return frozenset(fields)


def _hires(args: argparse.Namespace, settings: Settings) -> HiresFix | None:
    """With --hires: its steps, strength and upscaler given, else the settings' (the window's hires fix panel)."""
    options = (("--hires-steps", args.hires_steps), ("--hires-strength", args.hires_strength),
               ("--hires-upscaler", args.hires_upscaler))
    if args.hires is None:
        for option, value in options:
            if value is not None:
                raise InvalidRequest(f"{option} needs --hires SCALE, the hires fix it belongs to.")
        return None
    defaults = settings.generation
    return HiresFix(args.hires, defaults.hires_steps if args.hires_steps is None else args.hires_steps,
                    defaults.hires_strength if args.hires_strength is None else args.hires_strength,
                    defaults.hires_upscaler if args.hires_upscaler is None else args.hires_upscaler)


def _check_picture_size(picture: Image.Image, name: str, advice: str) -> None:
    """An image-to-image job's size comes from its picture: say so when it is one Studio cannot work at
    (inpainting works on a region of any picture)."""
    if not all(MIN_SIZE <= side <= MAX_SIZE for side in picture.size):
        raise InvalidRequest(f"The picture {name} is {picture.width}x{picture.height}, and Studio works at "
                             f"{MIN_SIZE} to {MAX_SIZE} pixels a side; {advice}.")
