"""Checks on a plugin that need no pip: its wheel read straight from the zip, its source project,
and its top-level names against what Python can already import. Nothing is imported or installed."""

from __future__ import annotations

import configparser
import importlib.machinery
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from studio.core.errors import StudioError
from studio.core.plugin_manifest import (
    ENTRY_POINT_GROUP,
    MAX_MANIFEST_BYTES,
    Manifest,
    parse_manifest,
)
from studio.plugin_host.archives import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    member_parts,
    scan_zip,
)

MAX_METADATA_BYTES = 1024 * 1024
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.toml$")  # the manifest file names discovery accepts


class InstallError(StudioError):
    """A plugin that was refused or could not be installed; nothing of it was installed."""


@dataclass(frozen=True)
class WheelInfo:
    distribution: str
    version: str
    requires: tuple[Requirement, ...]
    top_level: tuple[str, ...]  # importable top-level names the wheel installs
    packages: tuple[str, ...]  # those that are regular packages (with __init__.py) or single modules
    entry_name: str
    manifest: Manifest


def read_wheel(wheel: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> WheelInfo:
    """Check a wheel (archive safety, metadata, entry point, manifest) and describe it."""
    infos = scan_zip(wheel, limits)
    try:
        name, version, _, _ = parse_wheel_filename(wheel.name)  # also refuses odd names
    except InvalidWheelFilename:
        raise InstallError(f"The file name {wheel.name} is not a valid wheel name.") from None
    names = [i.filename for i in infos]
    info_dirs = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    if len(info_dirs) != 1:
        raise InstallError(f"The wheel {wheel.name} does not have exactly one .dist-info folder.")
    info_dir = info_dirs.pop()
    with zipfile.ZipFile(wheel) as zf:
        metadata = BytesParser(policy=compat32).parsebytes(_read(zf, f"{info_dir}/METADATA", wheel,
                                                                 MAX_METADATA_BYTES))
        dist, dist_version = str(metadata.get("Name", "")), str(metadata.get("Version", ""))
        if canonicalize_name(dist) != name or not dist_version or _version(dist_version) != version:
            raise InstallError(f"The wheel {wheel.name} has metadata for {dist or 'no name'} {dist_version}, "
                             "which does not match its file name.")
        entry_name, value = _entry_point(zf, info_dir, wheel)
        package, _, file_name = value.partition(":")
        if not _MODULE.match(package.strip()) or not _FILE.match(file_name.strip()):
            raise InstallError(f"The wheel {wheel.name}: the {ENTRY_POINT_GROUP} entry point {entry_name} = {value!r} "
                             "must name \"package:studio-plugin.toml\".")
        manifest_path = package.strip().replace(".", "/") + "/" + file_name.strip()
        source = f"{manifest_path} in {wheel.name}"
        manifest = parse_manifest(_read(zf, manifest_path, wheel, MAX_MANIFEST_BYTES, "manifest"), source)
    if manifest.id != entry_name:
        raise InstallError(f"The wheel {wheel.name} names its plugin {entry_name!r} in its entry point but "
                         f"{manifest.id!r} in its manifest; they must be the same.")
    if _version(manifest.version) != _version(dist_version):
        raise InstallError(f"The wheel {wheel.name} is version {dist_version} but its manifest says "
                           f"{manifest.version}; they must be the same.")
    requires = []
    for text in metadata.get_all("Requires-Dist") or []:
        try:
            requires.append(Requirement(str(text)))
        except InvalidRequirement:
            raise InstallError(f"The wheel {wheel.name} has a requirement Studio cannot read: {text!r}.") from None
    top, packages = _top_level(names, wheel.name)
    return WheelInfo(dist, dist_version, tuple(requires), top, packages, entry_name, manifest)


def _read(zf: zipfile.ZipFile, member: str, wheel: Path, limit: int, what: str = "metadata") -> bytes:
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise InstallError(f"The wheel {wheel.name} has no {what} ({member}).") from None
    if info.file_size > limit:
        raise InstallError(f"The wheel {wheel.name}: {member} is larger than {limit // 1024} KiB.")
    return zf.read(info)


def _entry_point(zf: zipfile.ZipFile, info_dir: str, wheel: Path) -> tuple[str, str]:
    """The one (name, value) of the wheel's studio.plugins entry point."""
    not_plugin = (f"The wheel {wheel.name} is not a Studio plugin: it declares no '{ENTRY_POINT_GROUP}' entry point.")
    try:
        text = zf.read(f"{info_dir}/entry_points.txt").decode("utf-8")
    except KeyError:
        raise InstallError(not_plugin) from None
    except UnicodeDecodeError:
        raise InstallError(f"The wheel {wheel.name} has an entry_points.txt that is not UTF-8 text.") from None
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # entry point names keep their case
    try:
        parser.read_string(text)
    except configparser.Error:
        raise InstallError(f"The wheel {wheel.name} has an entry_points.txt Studio cannot read.") from None
    if not parser.has_section(ENTRY_POINT_GROUP) or not parser.items(ENTRY_POINT_GROUP):
        raise InstallError(not_plugin)
    entries = parser.items(ENTRY_POINT_GROUP)
    if len(entries) > 1:
        raise InstallError(f"The wheel {wheel.name} declares {len(entries)} Studio plugins; a wheel holds one.")
    return entries[0][0].strip(), entries[0][1].strip()


def _top_level(names: list[str], wheel: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Importable top-level names a wheel installs, and which of them are regular packages or modules."""
    top: set[str] = set()
    regular: set[str] = set()
    for name in names:
        parts = list(member_parts(name, wheel))
        if not parts or parts[0].endswith(".dist-info"):
            continue
        if parts[0].endswith(".data"):
            # purelib/platlib land at the top; so does "data" with pip --target.
            if len(parts) < 3 or parts[1] not in ("purelib", "platlib", "data"):
                continue
            parts = parts[2:]
        if parts[0].endswith(".pth"):
            raise InstallError(f"The wheel {wheel} ships a .pth file ({parts[0]}), which runs code whenever Python "
                             "starts; it was refused.")
        stem = parts[0].split(".")[0]
        if not stem.isidentifier():
            continue
        top.add(stem)
        if (len(parts) == 1 and not name.endswith("/")) or parts[1:] == ["__init__.py"]:
            regular.add(stem)
    return tuple(sorted(top)), tuple(sorted(regular))


def check_shadowing(names: Iterable[str], packages: Iterable[str], own_dir: Path, what: str) -> None:
    """Refuse top-level modules that would hide (or be hidden by) one already importable."""
    own = own_dir.resolve()
    regular = set(packages)
    for name in sorted(names):
        if name in sys.stdlib_module_names or name in sys.builtin_module_names:
            raise InstallError(f"{what} ships a top-level module {name!r}, which would shadow Python's own "
                               f"{name!r}; it was refused.")
        try:
            spec = importlib.util.find_spec(name)  # a top-level name: finds, never imports
        except (ImportError, ValueError):
            spec = None if name not in sys.modules else importlib.machinery.ModuleSpec(name, None)
        if spec is None:
            continue
        places = list(spec.submodule_search_locations or []) or [spec.origin or ""]
        if all(p and Path(p).resolve().is_relative_to(own) for p in places):
            continue  # this plugin's own previous version: an update
        if spec.origin in (None, "namespace") and name not in regular:
            continue  # namespace packages merge rather than shadow
        raise InstallError(f"{what} ships a top-level module {name!r}, which would shadow the {name!r} "
                           f"already installed ({places[0] or 'built in'}); it was refused.")


def check_flit_project(project: Path, shown: str) -> None:
    """Only flit_core builds with a static version: they run none of the plugin's code."""
    refusal = (f"The plugin source {shown} is not built with flit_core and a static version: Studio "
               "builds plugins from source only with flit_core (which runs none of the plugin's code); "
               "install a wheel instead.")
    if not (project / "pyproject.toml").is_file():
        if (project / "setup.py").is_file() or (project / "setup.cfg").is_file():
            raise InstallError(refusal)  # a setuptools project: building it would run its setup.py
        raise InstallError(f"The folder {shown} has no pyproject.toml, so it is not a plugin's source.")
    try:
        data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    except OSError as exc:  # its reason only: the file's path is in Studio's staging folder, not the person's
        raise InstallError(f"The pyproject.toml of {shown} could not be read ({exc.strerror or exc}).") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InstallError(f"The pyproject.toml of {shown} could not be read ({exc}).") from None
    system, meta = data.get("build-system", {}), data.get("project", {})
    if not isinstance(system, dict) or not isinstance(meta, dict):
        raise InstallError(refusal)
    # backend-path would let the project ship its own "flit_core"; a dynamic field makes flit import it.
    if (system.get("build-backend") != "flit_core.buildapi" or "backend-path" in system
            or not isinstance(meta.get("version"), str) or meta.get("dynamic")):
        raise InstallError(refusal)


def installed_plugin(folder: Path, plugin_id: str) -> tuple[str, str] | None:
    """(distribution, version) of the plugin installed in folder, if any."""
    if not folder.is_dir():
        return None
    for dist in importlib.metadata.distributions(path=[str(folder)]):
        if any(ep.group == ENTRY_POINT_GROUP and ep.name == plugin_id for ep in dist.entry_points):
            return dist.metadata.get("Name") or folder.name, dist.version
    return None


def visible_elsewhere(name: str, own_dir: Path) -> tuple[str, str] | None:
    """(version, folder) of a distribution this process can already import, outside own_dir."""
    for dist in importlib.metadata.distributions(name=name):
        base = Path(str(dist.locate_file(""))).resolve()
        if not base.is_relative_to(own_dir.resolve()):
            return dist.version, str(base)
    return None


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None
