"""Finding installed plugins and reading their manifests, without importing a line of their code.

Plugins live in two places: Studio's plugins folder (one ``pip --target`` folder per plugin, put
there by the installer) and the Python environment Studio runs in (``pip install`` by hand, or a
developer's editable install). Both declare themselves with an entry point in ``studio.plugins``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.plugin_manifest import ENTRY_POINT_GROUP, Manifest, read_manifest

log = logging.getLogger(__name__)

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.toml$")


@dataclass(frozen=True)
class FoundPlugin:
    """One installed plugin as its files describe it. ``manifest`` is None when it could not be read."""

    entry_name: str
    distribution: str
    dist_version: str
    manifest: Manifest | None
    error: str = ""
    location: Path | None = None  # its folder in Studio's plugins folder; None: installed in the environment

    @property
    def managed(self) -> bool:
        return self.location is not None

    @property
    def id(self) -> str:
        return self.manifest.id if self.manifest else self.entry_name


def discover(plugins_dir: Path, scan_environment: bool = True) -> list[FoundPlugin]:
    """Every plugin in the plugins folder, then every one in the environment, in a stable order."""
    found: list[FoundPlugin] = []
    if plugins_dir.is_dir():
        for folder in sorted(p for p in plugins_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found.extend(_from_distributions(metadata.distributions(path=[str(folder)]), folder))
    if scan_environment:
        found.extend(_from_distributions(metadata.distributions(path=environment_path(plugins_dir)), None))
    return found


def environment_path(plugins_dir: Path) -> list[str]:
    """sys.path without Studio's own plugin folders: a plugin used once has its folder appended to sys.path (the
    registry's ``_load``), and the same copy must not be found a second time as installed in the environment."""
    own = plugins_dir.resolve()
    return [entry for entry in sys.path if not Path(entry or ".").resolve().is_relative_to(own)]


def _from_distributions(dists: Iterable[metadata.Distribution], folder: Path | None) -> list[FoundPlugin]:
    found: list[FoundPlugin] = []
    seen: set[str] = set()  # a distribution seen twice on sys.path counts once
    for dist in dists:
        name = dist.metadata.get("Name") or "?"
        if name in seen:
            continue
        seen.add(name)
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                found.append(_read(ep.name, ep.value, dist, name, folder))
    return found


def _read(entry_name: str, value: str, dist: metadata.Distribution, name: str, folder: Path | None) -> FoundPlugin:
    version = dist.version or ""
    try:
        path = _manifest_path(value, dist, folder)
        manifest = read_manifest(path)
    except StudioError as exc:
        log.warning("Plugin %s (%s): %s", entry_name, name, exc)
        return FoundPlugin(entry_name, name, version, None, str(exc), folder)
    return FoundPlugin(entry_name, name, version, manifest, "", folder)


def _manifest_path(value: str, dist: metadata.Distribution, folder: Path | None) -> Path:
    """Where ``package:file.toml`` points, found by path lookups only (find_spec of a top-level name imports
    nothing)."""
    module, _, filename = (part.strip() for part in value.partition(":"))
    if not _MODULE.match(module) or not _FILE.match(filename):
        raise StudioError(f"The plugin entry point {value!r} must read 'package:studio-plugin.toml'.")
    relative = Path(*module.split("."), filename)
    candidates = [Path(str(dist.locate_file(relative)))]
    if folder is None:  # an editable install keeps its files elsewhere: ask the import system where
        top, *rest = module.split(".")
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(Path(location, *rest, filename))
    for candidate in candidates:
        if candidate.is_file():
            if folder is not None and not candidate.resolve().is_relative_to(folder.resolve()):
                break  # a managed plugin's manifest must be inside its own folder
            return candidate
    raise StudioError(f"The plugin manifest {value!r} of {dist.metadata.get('Name')} was not found.")
