"""Command-line flags from a plugin's declared parameters, and ``--post`` chain steps.

The generator or post-processor is picked on the same command line (``--generator ID``,
``--method ID``), so its flags are added after a first look at argv; ``--help`` then lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
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
)
from studio.core.requests import PostStep
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Registry

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
        if name == "strength":  # Studio's blend around the step, not one of the processor's parameters
            try:
                strength = float(value)
            except ValueError:
                raise InvalidRequest(f"--post {text!r}: strength must be a number from 0 to 1.") from None
        else:
            params[name] = value.strip()
    return PostStep(processor, params, strength)


def check_post_processors(names: Sequence[str], registry: Registry, option: str) -> None:
    """Each post-processor named is installed and enabled; bad input otherwise (see check_contributions)."""
    check_contributions(POSTPROCESSOR, names, registry, option)


def check_contributions(kind: str, names: Sequence[str], registry: Registry, option: str) -> None:
    """Each generator or post-processor (``kind``) named is installed and enabled; bad input otherwise, said before
    the engine starts with the ones there are: by id, as ``option`` and ``studio plugins list`` name them, with
    the title the window shows. The registry is read from manifests: no plugin code (nor torch) is imported."""
    for name in names:
        if not registry.has(kind, name):
            there = ", ".join(f"{c.id} for {c.title}" for c in registry.contributions(kind))
            raise InvalidRequest(f"No {KIND_WORDS[kind]} called {name!r} is installed and enabled; {option} takes "
                                 f"{'one of: ' + there if there else 'none now'}.{registry.missing_hint}")
