"""The one module a Studio plugin imports: protocols and value types, nothing else.

The full plugin contract (manifests, parameter schemas, post-processors) grows here; what is
exported now is what Studio's own generator is built on.
"""

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, JobCancelledError, StudioError
from studio.core.generation import Generator, JobContext
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest

API_VERSION = "0.1"

__all__ = [
    "API_VERSION",
    "Generator",
    "GeneratorEnvironment",
    "GenerationRequest",
    "InvalidRequest",
    "JobCancelledError",
    "JobContext",
    "Recipe",
    "StudioError",
]
