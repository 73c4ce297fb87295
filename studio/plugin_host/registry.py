"""Lazy registry: contributions are named by "module:attr" and imported only on first use.

Studio's own generators register here exactly like a plugin's will.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import StudioError

GENERATOR = "generator"
POSTPROCESSOR = "postprocessor"


@dataclass(frozen=True)
class Contribution:
    kind: str  # GENERATOR or POSTPROCESSOR
    id: str
    title: str
    target: str  # "package.module:attr"
    plugin_id: str = "studio"
    plugin_version: str = ""


class Registry:
    def __init__(self) -> None:
        self._contributions: dict[tuple[str, str], Contribution] = {}
        self._instances: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def add(self, contribution: Contribution) -> None:
        key = (contribution.kind, contribution.id)
        if key in self._contributions:
            raise StudioError(f"Two {contribution.kind}s are called {contribution.id!r}; the second was ignored.")
        self._contributions[key] = contribution

    def contributions(self, kind: str) -> list[Contribution]:
        return [c for (k, _), c in self._contributions.items() if k == kind]

    def get(self, kind: str, id: str) -> Contribution:
        try:
            return self._contributions[(kind, id)]
        except KeyError:
            raise StudioError(f"No {kind} called {id!r} is installed.") from None

    def instance(self, kind: str, id: str, env: GeneratorEnvironment) -> Any:
        """The one live object for a contribution, imported and created on first use."""
        key = (kind, id)
        with self._lock:
            if key not in self._instances:
                self._instances[key] = _load(self.get(kind, id))(env)
            return self._instances[key]


def _load(contribution: Contribution) -> Any:
    module_name, _, attr = contribution.target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise StudioError(
            f"The {contribution.kind} {contribution.title!r} from {contribution.plugin_id} could not be loaded: {exc}."
        ) from exc


def builtin_registry() -> Registry:
    registry = Registry()
    registry.add(Contribution(GENERATOR, "diffusers", "Stable Diffusion (diffusers)",
                              "studio.engine.diffusion:DiffusersGenerator"))
    return registry
