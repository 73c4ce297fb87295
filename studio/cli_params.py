"""Command-line flags from a plugin's declared parameters, and ``--post`` chain steps.

The generator or post-processor is picked on the same command line (``--generator ID``,
``--method ID``), so its flags are added after a first look at argv; ``--help`` then lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from studio.core.errors import InvalidRequest
from studio.core.parameters import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    ImageParam,
    IntParam,
    Param,
    SeedParam,
    TextParam,
    check_names,
)
from studio.core.requests import PostStep
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Registry

POST_STRENGTH = "strength"  # --post ID:strength=S, taken by every step: Studio's blend with the picture before it

PREFIX = "param__"
KIND_WORDS = {GENERATOR: "generator", POSTPROCESSOR: "post-processor"}  # as sentences name them


def option_value(argv: Sequence[str], option: str) -> str | None:
    """The value given to ``option`` in argv (``--opt V`` or ``--opt=V``), without parsing the rest."""
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def add_param_flags(parser: argparse.ArgumentParser, title: str, params: Sequence[Param],
                    builtin: bool = False) -> None:
    about = "Options left out take their defaults." if builtin else \
        "Declared by the plugin; options left out take its defaults."
    group = parser.add_argument_group(f"{title} options", about)
    for param in params:
        text = param.help or param.title
        kwargs: dict[str, Any] = {"dest": PREFIX + param.name, "default": argparse.SUPPRESS,
                                  "metavar": param.name.upper()}
        if isinstance(param, BoolParam):
            del kwargs["metavar"]
            group.add_argument(param.flag, action=argparse.BooleanOptionalAction,
                               help=_literal(f"{text} (default: {'yes' if param.default else 'no'})"), **kwargs)
            continue
        if isinstance(param, ChoiceParam):
            kwargs["choices"] = param.choices
            kwargs["metavar"] = "{" + ",".join(param.choices) + "}"
            text += f" (default: {param.default_value})"
        elif isinstance(param, IntParam | FloatParam):
            text += f" ({param.min:g} to {param.max:g}, default {param.default:g})"
        elif isinstance(param, SeedParam):
            text += " (default: random)" if param.default < 0 else f" (default {param.default}; -1: random)"
        elif isinstance(param, ImageParam):
            kwargs["metavar"] = "IMAGE"
            text += " (a picture file)"
        elif isinstance(param, TextParam) and param.default:
            text += f" (default: {param.default!r})"
        group.add_argument(param.flag, help=_literal(text), **kwargs)


def _literal(text: str) -> str:
    """Help text as written: argparse reads %-placeholders in it (a plugin's "50% more" crashed --help)."""
    return text.replace("%", "%%")


def collect_params(args: argparse.Namespace) -> dict[str, Any]:
    """The plugin parameters given on the command line, as text (the plugin's schema checks them)."""
    return {k[len(PREFIX):]: v for k, v in vars(args).items() if k.startswith(PREFIX)}


def parse_post_step(text: str) -> PostStep:
    """``ID`` or ``ID:name=value,...`` into a PostStep (values checked later, by the processor's schema);
    ``strength=S`` blends the step with the picture before it."""
    processor, _, rest = text.partition(":")
    processor = processor.strip()
    if not processor:
        raise InvalidRequest(f"--post {text!r} names no post-processor; write ID or ID:name=value,name=value.")
    params: dict[str, Any] = {}
    strength = 1.0
    for part in filter(None, (p.strip() for p in rest.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise InvalidRequest(f"--post {text!r}: {part!r} is not name=value.")
        name = name.strip().replace("-", "_")
        if name == POST_STRENGTH:  # Studio's blend around the step, not one of the processor's parameters
            try:
                strength = float(value)
            except ValueError:
                raise InvalidRequest(f"--post {text!r}: strength must be a number from 0 to 1.") from None
        else:
            params[name] = value.strip()
    return PostStep(processor, params, strength)


def check_contributions(kind: str, names: Sequence[str], registry: Registry, option: str) -> None:
    """Each generator or post-processor (``kind``) named is installed and enabled; bad input otherwise, said before
    the engine starts with the ones there are: by id, as ``option`` and ``studio plugins list`` name them, with
    the title the window shows. The registry is read from manifests: no plugin code (nor torch) is imported."""
    for name in names:
        if not registry.has(kind, name):
            there = ", ".join(f"{c.id} for {c.title}" for c in registry.contributions(kind))
            raise InvalidRequest(f"No {KIND_WORDS[kind]} called {name!r} is installed and enabled; {option} takes "
                                 f"{'one of: ' + there if there else 'none now'}.{registry.missing_hint}")


def check_inputs_given(args: argparse.Namespace, registry: Registry) -> None:
    """A picture a generator or post-processor needs, and the model Diffusion Restyle redraws with, given: said before
    the engine starts, in the command line's words. The form's sentences name its fields ("Colour Transfer: Style
    picture needs a picture.", "pick one in the model list"), and the step's came only once the job ran."""
    if args.command == "postprocess":
        _check_needed(registry, POSTPROCESSOR, args.method, collect_params(args), f"--method {args.method}",
                      lambda param, what: f"give {param.flag} {what}")
        return
    plugin_generator = bool(args.generator) and args.generator != "diffusers"
    if plugin_generator:
        _check_needed(registry, GENERATOR, args.generator, collect_params(args), f"--generator {args.generator}",
                      lambda param, what: f"give {param.flag} {what}")
    for step in (parse_post_step(text) for text in args.post):
        if registry.has(POSTPROCESSOR, step.processor):  # else said by check_contributions
            contribution = registry.get(POSTPROCESSOR, step.processor)
            check_names(contribution.parameters, step.params, contribution.title, also=(POST_STRENGTH,))
        # A chain step without a model of its own takes the generation's (--model, which Studio's generator needs).
        _check_needed(registry, POSTPROCESSOR, step.processor, step.params, f"--post {step.processor}",
                      lambda param, what, id=step.processor: f"write --post {id}:{param.name}={what}",
                      lends_model=not plugin_generator)


def _check_needed(registry: Registry, kind: str, id: str, values: Mapping[str, Any], named: str,
                  give: Callable[[Param, str], str], lends_model: bool = False) -> None:
    """``named``: how the command line names the contribution; ``give(param, what)``: how it gives a parameter;
    ``lends_model``: whether the generation has a model for a step without one."""
    if not registry.has(kind, id):
        return  # said by check_contributions, with the ones there are
    for param in registry.get(kind, id).parameters:
        if isinstance(param, ImageParam) and not param.optional and values.get(param.name) is None:
            raise InvalidRequest(f"{named} needs its {_lowered(param.title)}: {give(param, 'FILE')}, a picture file.")
        if param.name == "model" and not lends_model and not str(values.get("model") or "").strip() and \
                registry.runs_generator(kind, id):
            raise InvalidRequest(f"{named} needs a Stable Diffusion model to redraw the picture with: "
                                 f"{give(param, 'NAME')}, a model folder or file, or a name from studio models list.")


def _lowered(title: str) -> str:
    """A label inside a sentence: "Style picture" as "style picture", an acronym ("VAE file") as it is."""
    return title if title[:2].isupper() else title[:1].lower() + title[1:]
