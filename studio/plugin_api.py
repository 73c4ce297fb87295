"""The one module a Studio plugin imports: protocols, value types and parameter declarations.

A plugin's generator is a class created as ``Generator(env)`` with a ``generate(request, context)``
method; a post-processor is created as ``PostProcessor(env)`` with ``process(image, params, context)``.
Both are named in the plugin's ``studio-plugin.toml`` and imported only on first use. See
``plugins/README.md`` for the whole contract.
"""

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, JobCancelledError, StudioError
from studio.core.generation import Generator, JobContext, MemoryHolder, PluginContext, PostProcessor
from studio.core.held_memory import CACHED, IN_USE, KEPT, HeldModel
from studio.core.metadata import Recipe
from studio.core.parameters import (
    MAX_SEED,
    BoolParam,
    ChoiceParam,
    FloatParam,
    ImageParam,
    IntParam,
    Param,
    SeedParam,
    TextParam,
    validate_params,
)
from studio.core.plugin_manifest import API_VERSION, ManifestError, read_manifest
from studio.core.requests import GenerationRequest

# API_VERSION (what this Studio offers, with what each version added) lives with the manifest reader, which
# checks a plugin's api_version range against it.


def checked_params(manifest: str | Path, contribution_id: str, values: Mapping[str, Any] | None = None,
                   seed: int | None = None) -> dict[str, Any]:
    """For a plugin's own tests: the parameter values Studio would hand the generator or post-processor
    ``contribution_id`` declared in the ``studio-plugin.toml`` at ``manifest``, given ``values``.

    The manifest is read and checked by the same rules Studio applies when it installs or loads the plugin (a
    manifest Studio refuses raises InvalidRequest saying what is wrong with it); every value is checked as Studio
    does (defaults fill what is missing; a bad value raises InvalidRequest naming it), and each ``seed`` parameter
    left at -1 (random) is given a real seed, as Studio does before your code runs: ``seed`` if given (repeatable
    tests), otherwise a random one."""
    path = Path(manifest)
    try:
        declared = read_manifest(path)  # the host's own reader: a manifest Studio refuses is refused here too
    except ManifestError as exc:
        raise InvalidRequest(str(exc)) from None
    for contribution in declared.contributions:
        if contribution.id == contribution_id:
            params = validate_params(contribution.parameters, dict(values or {}), contribution.title)
            for param in contribution.parameters:
                if isinstance(param, SeedParam) and params[param.name] == -1:
                    params[param.name] = param.check(random.randint(0, MAX_SEED) if seed is None else seed,
                                                     contribution.title)
            return params
    raise InvalidRequest(f"The manifest {path} declares no generator or post-processor {contribution_id!r}.")

__all__ = [
    "API_VERSION",
    "BoolParam",
    "CACHED",
    "ChoiceParam",
    "FloatParam",
    "Generator",
    "GenerationRequest",
    "GeneratorEnvironment",
    "HeldModel",
    "IN_USE",
    "ImageParam",
    "IntParam",
    "InvalidRequest",
    "JobCancelledError",
    "JobContext",
    "KEPT",
    "MemoryHolder",
    "Param",
    "PluginContext",
    "PostProcessor",
    "Recipe",
    "SeedParam",
    "StudioError",
    "TextParam",
    "checked_params",
]
