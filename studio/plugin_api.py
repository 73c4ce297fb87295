"""The one module a Studio plugin imports: protocols, value types and parameter declarations.

A plugin's generator is a class created as ``Generator(env)`` with a ``generate(request, context)``
method; a post-processor is created as ``PostProcessor(env)`` with ``process(image, params, context)``.
Both are named in the plugin's ``studio-plugin.toml`` and imported only on first use. See
``plugins/README.md`` for the whole contract.
"""

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, JobCancelledError, StudioError
from studio.core.generation import Generator, JobContext, MemoryHolder, PluginContext, PostProcessor
from studio.core.held_memory import CACHED, IN_USE, KEPT, HeldModel
from studio.core.metadata import Recipe
from studio.core.parameters import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    ImageParam,
    IntParam,
    Param,
    SeedParam,
    TextParam,
)
from studio.core.requests import GenerationRequest

API_VERSION = "1.0"

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
]
