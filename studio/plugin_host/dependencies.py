"""Plugins' own dependencies: each lives in its plugin's folder, but every plugin runs in Studio's one process.

Python keeps one copy of a module (``sys.modules``), so whichever plugin imports a package first decides the
version every other plugin gets too. Real isolation would need a process per plugin; instead, two plugins whose
folders carry versions of one package that the other's requirements reject are never on together (refused at
install and enable), and a plugin whose dependency was already loaded at a version it rejects is not run.
"""

from __future__ import annotations

import importlib.metadata
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from studio.plugin_host.folder_stamp import FolderStamp, folder_stamp


@dataclass(frozen=True)
class PluginDependencies:
    """What one plugin brings: the distributions in its folder and what they (and the plugin) require."""

    plugin_id: str
    name: str  # the plugin as the person knows it
    carries: Mapping[str, tuple[str, str]]  # canonical name -> (name, version) of each distribution in its folder
    requires: tuple[Requirement, ...]

    @property
    def label(self) -> str:
        """Its name and id ('Tester dep (tp-dep)'): two plugins may share a name, but never an id."""
        return f"{self.name} ({self.plugin_id})" if self.plugin_id and self.plugin_id != self.name else self.name


def requirements(texts: Iterable[str]) -> tuple[Requirement, ...]:
    """The readable requirements that apply here (those only behind an extra or another platform's marker are not)."""
    found: list[Requirement] = []
    for text in texts:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue  # (the installer refuses a plugin with one; a hand-made folder is judged on the rest)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            found.append(req)
    return tuple(found)


def folder_dependencies(plugin_id: str, name: str, folder: Path) -> PluginDependencies:
    """The dependencies of the plugin installed in ``folder`` (a ``pip --target`` folder)."""
    contents = _read_folder(folder)
    return PluginDependencies(plugin_id, name, contents.carries, contents.requires)


@dataclass(frozen=True)
class _FolderContents:
    """What the distributions in one plugin folder say about themselves, read in one pass over their metadata."""

    carries: Mapping[str, tuple[str, str]]  # as PluginDependencies.carries
    requires: tuple[Requirement, ...]
    top_level: Mapping[str, tuple[str, ...]]  # canonical name -> the importable top-level names it installed


def _read_folder(folder: Path, with_top_level: bool = False) -> _FolderContents:
    carries: dict[str, tuple[str, str]] = {}
    required: list[Requirement] = []
    top_level: dict[str, tuple[str, ...]] = {}
    for dist in importlib.metadata.distributions(path=[str(folder)]):
        dist_name = dist.metadata.get("Name")
        if not dist_name:
            continue
        if (key := canonicalize_name(dist_name)) not in carries:
            carries[key] = (dist_name, dist.version)
            if with_top_level:
                top_level[key] = _top_level_names(dist)
        required.extend(requirements(dist.requires or []))
    return _FolderContents(carries, tuple(required), top_level)


def conflict(plugin: PluginDependencies, other: PluginDependencies) -> str:
    """Why ``plugin`` cannot be on beside ``other`` (a clause: "it needs humanize==4.9.0 (…) but …"), or ''.

    Only a package both folders carry can clash: one either lacks is loaded from the other's folder or Studio's own
    environment, which the installer has already matched. Different versions that both sides accept are fine."""
    for key in sorted(plugin.carries.keys() & other.carries.keys()):
        (package, mine), (_, theirs) = plugin.carries[key], other.carries[key]
        for req in plugin.requires:
            if canonicalize_name(req.name) == key and not req.specifier.contains(theirs, prereleases=True):
                return (f"it needs {req.name}{req.specifier} (its folder has {package} {mine}) but the enabled plugin "
                        f"{other.label} carries {package} {theirs}, and plugins share one Python process, which loads "
                        f"only one {package}")
        for req in other.requires:
            if canonicalize_name(req.name) == key and not req.specifier.contains(mine, prereleases=True):
                return (f"it carries {package} {mine} but the enabled plugin {other.label} needs "
                        f"{req.name}{req.specifier} (its folder has {package} {theirs}), and plugins share one Python "
                        f"process, which loads only one {package}")
    return ""


def loaded_elsewhere(folder: Path) -> str:
    """Why the plugin in ``folder`` must not run now, or '': a package its folder carries was already imported
    from somewhere else (another plugin's folder) at a version the plugin's requirements reject.

    Asked each time a plugin's contribution is created, so what it reads from the distributions' metadata is kept
    until the folder it came from changes (see _signature)."""
    own = _cached_folder(folder)
    root = folder.resolve()
    for key, (package, _) in sorted(own.carries.items()):
        required = [r for r in own.requires if canonicalize_name(r.name) == key]
        if not required:
            continue  # the plugin's own distribution: nothing requires it
        for module_name in own.top_level.get(key, ()):
            origin = getattr(sys.modules.get(module_name), "__file__", None)
            if not isinstance(origin, str) or Path(origin).resolve().is_relative_to(root):
                continue
            found = _version_at(package, Path(origin))
            if found is None:
                continue  # a copy without metadata: nothing to judge it by
            version, place = found
            for req in required:
                if not req.specifier.contains(version, prereleases=True):
                    return (f"it needs {req.name}{req.specifier}, but {package} {version} was already loaded from "
                            f"{place} (another plugin's), and plugins share one Python process, which loads only one "
                            f"{package}; disable the other plugin and restart Studio")
    return ""


_cache_lock = threading.Lock()  # plugins are loaded from the engine thread and the window's
_folders: dict[Path, tuple[FolderStamp, _FolderContents]] = {}
_versions: dict[tuple[str, Path], tuple[FolderStamp, str | None]] = {}


def _signature(folder: Path) -> FolderStamp | None:
    """What changes when a distribution in ``folder`` is installed, removed or replaced by another version: the
    folder's stamp over its metadata folders (which carry the versions). None when it cannot be read, which is
    never kept."""
    return folder_stamp(folder, lambda name: name.endswith((".dist-info", ".egg-info")))


def _cached_folder(folder: Path) -> _FolderContents:
    signature = _signature(folder)
    with _cache_lock:
        kept = _folders.get(folder)
    if kept is not None and signature is not None and kept[0] == signature:
        return kept[1]
    contents = _read_folder(folder, with_top_level=True)
    if signature is not None:
        with _cache_lock:
            _folders[folder] = (signature, contents)
    return contents


def _top_level_names(dist: importlib.metadata.Distribution) -> tuple[str, ...]:
    """The importable top-level names the distribution ``dist`` installed."""
    names: set[str] = set()
    for file in dist.files or []:
        first = file.parts[0] if file.parts else ""
        if first.endswith((".dist-info", ".data")) or first in ("..", "bin", "__pycache__"):
            continue
        stem = first.split(".")[0]
        if stem.isidentifier():
            names.add(stem)
    return tuple(sorted(names))


def _version_at(package: str, origin: Path) -> tuple[str, str] | None:
    """(version, folder) of ``package`` as installed in the sys.path folder ``origin`` was imported from."""
    entries = [Path(entry).resolve() for entry in sys.path if entry]
    for entry in sorted((e for e in entries if origin.resolve().is_relative_to(e)), key=lambda e: -len(e.parts)):
        signature = _signature(entry)
        with _cache_lock:
            kept = _versions.get((package, entry))
        if kept is not None and signature is not None and kept[0] == signature:
            version = kept[1]
        else:
            version = _installed_version(package, entry)
            if signature is not None:
                with _cache_lock:
                    _versions[(package, entry)] = (signature, version)
        if version is not None:
            return (version, str(entry)) if version else None
    return None


def _installed_version(package: str, entry: Path) -> str | None:
    """The version of ``package`` installed in ``entry``; '' for one whose version is not a version number, None
    for none there."""
    for dist in importlib.metadata.distributions(name=package, path=[str(entry)]):
        try:
            Version(dist.version)
        except InvalidVersion:
            return ""
        return dist.version
    return None
