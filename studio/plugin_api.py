"""The one module a Studio plugin imports: protocols, value types and parameter declarations.

A plugin's generator is a class created as ``Generator(env)`` with a ``generate(request, context)``
method; a post-processor is created as ``PostProcessor(env)`` with ``process(image, params, context)``.
Both are named in the plugin's ``studio-plugin.toml`` and imported only on first use. See
``plugins/README.md`` for the whole contract.
"""

import random
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, JobCancelledError, StudioError
from studio.core.generation import Generator, JobContext, MemoryHolder, PluginContext, PostProcessor
from studio.core.held_memory import CACHED, IN_USE, KEPT, HeldModel
from studio.core.metadata import Recipe
from studio.core.parameters import (
    GENERATE_OPTIONS,
    MAX_SEED,
    POSTPROCESS_OPTIONS,
    BoolParam,
    ChoiceParam,
    FloatParam,
    ImageParam,
    IntParam,
    Param,
    SeedParam,
    TextParam,
    schema_from_table,
    validate_params,
)
from studio.core.requests import GenerationRequest

API_VERSION = "1.1"  # 1.1: checked_params
_KINDS = {"generators": GENERATE_OPTIONS, "postprocessors": POSTPROCESS_OPTIONS}


def checked_params(manifest: str | Path, contribution_id: str, values: Mapping[str, Any] | None = None,
                   seed: int | None = None) -> dict[str, Any]:
    """For a plugin's own tests: the parameter values Studio would hand the generator or post-processor
    ``contribution_id`` declared in the ``studio-plugin.toml`` at ``manifest``, given ``values``.

    The declarations are read and every value checked as Studio does (defaults fill what is missing; a bad value
    raises InvalidRequest naming it), and each ``seed`` parameter left at -1 (random) is given a real seed, as Studio
    does before your code runs: ``seed`` if given (repeatable tests), otherwise a random one."""
    path = Path(manifest)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"The manifest {path} could not be read ({exc}).") from None
    for key, options in _KINDS.items():
        for row in table.get(key, []):
            if isinstance(row, dict) and row.get("id") == contribution_id:
                title = str(row.get("title") or contribution_id)
                schema = schema_from_table(row.get("parameters", []), f"the {key[:-1]} {contribution_id!r}", options)
                params = validate_params(schema, dict(values or {}), title)
                for param in schema:
                    if isinstance(param, SeedParam) and params[param.name] == -1:
                        params[param.name] = param.check(random.randint(0, MAX_SEED) if seed is None else seed, title)
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
