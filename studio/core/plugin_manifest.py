"""``studio-plugin.toml``: what a plugin is and contributes, read without importing any of its code.

It lives in core because both the plugin host and ``studio.plugin_api.checked_params`` (which plugins use in
their own tests) read manifests, and both must judge a manifest by the same rules."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import InvalidRequest, StudioError
from studio.core.parameters import GENERATE_OPTIONS, POSTPROCESS_OPTIONS, Param, schema_from_table
from studio.core.safe_text import hidden_character

# The plugin API this Studio offers (re-exported by studio.plugin_api); manifests name the range they need.
API_VERSION = "1.1"  # 1.1: checked_params

MANIFEST_NAME = "studio-plugin.toml"
ENTRY_POINT_GROUP = "studio.plugins"
MAX_MANIFEST_BYTES = 256 * 1024
# A plain name: it becomes a folder name, so no dots, slashes or spaces. Used with fullmatch: "$" lets "abc\n" by.
PLUGIN_ID = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?")
CONTRIBUTION_ID = PLUGIN_ID
TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
RESERVED_IDS = frozenset({"studio", "diffusers", "builtin", "core"})
CONTRIBUTION_KINDS = {"generators": "generator", "postprocessors": "postprocessor"}


class ManifestError(StudioError):
    """A manifest that cannot be used, with the sentence that says why."""


@dataclass(frozen=True)
class Permissions:
    network: bool = False  # talks to other machines
    files: bool = False  # reads or writes files outside its own data folder

    def describe(self) -> str:
        wanted = [what for what, on in (("network", self.network), ("files outside its folder", self.files)) if on]
        return ", ".join(wanted) or "none"


@dataclass(frozen=True)
class ContributionSpec:
    kind: str  # "generator" | "postprocessor"
    id: str
    title: str
    target: str  # "package.module:attr", imported on first use
    description: str = ""
    parameters: tuple[Param, ...] = ()


@dataclass(frozen=True)
class Manifest:
    id: str
    name: str
    version: str
    api_version: str  # a PEP 440 specifier set, e.g. ">=1.0,<2"
    author: str = ""
    homepage: str = ""
    description: str = ""
    permissions: Permissions = Permissions()
    contributions: tuple[ContributionSpec, ...] = field(default=())

    @property
    def compatible(self) -> bool:
        from packaging.specifiers import SpecifierSet  # packaging is read when a manifest is, not at Studio's start
        from packaging.version import Version

        return Version(API_VERSION) in SpecifierSet(self.api_version)

    def incompatibility(self) -> str:
        """Why Studio will not load this plugin ('' when it will)."""
        if self.compatible:
            return ""
        return (f"{self.name} {self.version} needs plugin API {self.api_version}, but this Studio offers "
                f"API {API_VERSION}; look for an update of the plugin.")

    def of_kind(self, kind: str) -> list[ContributionSpec]:
        return [c for c in self.contributions if c.kind == kind]


def check_plugin_id(value: object) -> str:
    """The id, if it is a plain name; ManifestError before anything touches the disk otherwise."""
    if not isinstance(value, str) or not PLUGIN_ID.fullmatch(value):
        raise ManifestError(
            f"The plugin id {value!r} is not a plain name: use 1-64 lowercase letters, digits, '-' or '_', "
            "starting and ending with a letter or digit.")
    if value in RESERVED_IDS:
        raise ManifestError(f"The plugin id {value!r} belongs to Studio itself; a plugin must choose another.")
    return value


def read_manifest(path: Path) -> Manifest:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"The plugin manifest {path} is {size} bytes; a manifest is at most 256 KiB.")
        return parse_manifest(path.read_bytes(), str(path))
    except OSError as exc:
        raise ManifestError(f"The plugin manifest {path} could not be read: {exc.strerror or exc}.") from exc


def parse_manifest(data: bytes | str, source: str = MANIFEST_NAME) -> Manifest:
    """A checked Manifest; ManifestError names the file and the first thing wrong with it."""
    if isinstance(data, bytes):
        if len(data) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"The plugin manifest {source} is larger than 256 KiB.")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ManifestError(f"The plugin manifest {source} is not UTF-8 text.") from None
    try:
        table = tomllib.loads(data)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"The plugin manifest {source} is not valid TOML: {exc}.") from None
    try:
        return _manifest(table, source)
    except InvalidRequest as exc:  # a bad parameter declaration
        raise ManifestError(f"The plugin manifest {source} is invalid: {exc}") from None


def _text(table: Mapping[str, Any], key: str, source: str, required: bool = False, limit: int = 2000) -> str:
    """Text shown to the person (in the install confirmation, the plugins list): control and format characters,
    which could disguise what is shown (a terminal escape, a right-to-left override), are refused; a
    description may have line breaks."""
    value = table.get(key, "")
    if not isinstance(value, str):
        raise ManifestError(f"The plugin manifest {source}: {key!r} must be text.")
    hidden = hidden_character(value, allowed="\n" if key == "description" else "")
    if hidden is not None:
        raise ManifestError(f"The plugin manifest {source}: {key!r} contains the control character {hidden}, "
                            "which could disguise what Studio shows; only plain text is allowed"
                            + (" (and line breaks)." if key == "description" else "."))
    if required and not value.strip():
        raise ManifestError(f"The plugin manifest {source} has no {key!r}.")
    if len(value) > limit:
        raise ManifestError(f"The plugin manifest {source}: {key!r} is longer than {limit} characters.")
    return value.strip()


def _manifest(table: dict[str, Any], source: str) -> Manifest:
    # packaging (its version patterns take a while to compile) is read when a manifest is, not at Studio's start.
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    plugin_id = table.get("id")
    if plugin_id is None:
        raise ManifestError(f"The plugin manifest {source} has no 'id'.")
    try:
        check_plugin_id(plugin_id)
    except ManifestError as exc:
        raise ManifestError(f"The plugin manifest {source}: {exc}") from None
    version = _text(table, "version", source, required=True, limit=64)
    try:
        Version(version)
    except InvalidVersion:
        raise ManifestError(f"The plugin manifest {source}: version {version!r} is not a version number.") from None
    api = _text(table, "api_version", source, required=True, limit=100)
    try:
        SpecifierSet(api)
    except InvalidSpecifier:
        raise ManifestError(f"The plugin manifest {source}: api_version {api!r} is not a version range "
                            "such as '>=1.0,<2'.") from None
    permissions = table.get("permissions", {})
    if not isinstance(permissions, dict) or set(permissions) - {"network", "files"} or not all(
            isinstance(v, bool) for v in permissions.values()):
        raise ManifestError(f"The plugin manifest {source}: [permissions] takes only network = true/false "
                            "and files = true/false.")
    contributions: list[ContributionSpec] = []
    for key, kind in CONTRIBUTION_KINDS.items():
        rows = table.get(key, [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ManifestError(f"The plugin manifest {source}: {key} must be a list of [[{key}]] tables.")
        contributions.extend(_contribution(kind, row, source) for row in rows)
    if not contributions:
        raise ManifestError(f"The plugin manifest {source} contributes nothing: add [[generators]] or "
                            "[[postprocessors]].")
    ids = [(c.kind, c.id) for c in contributions]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise ManifestError(f"The plugin manifest {source} declares the {duplicate[0]} {duplicate[1]!r} twice.")
    return Manifest(
        id=plugin_id, name=_text(table, "name", source, limit=100) or plugin_id, version=version, api_version=api,
        author=_text(table, "author", source, limit=200), homepage=_text(table, "homepage", source, limit=500),
        description=_text(table, "description", source), permissions=Permissions(**permissions),
        contributions=tuple(contributions))


def _contribution(kind: str, row: dict[str, Any], source: str) -> ContributionSpec:
    contribution_id = row.get("id")
    if not isinstance(contribution_id, str) or not CONTRIBUTION_ID.fullmatch(contribution_id):
        raise ManifestError(f"The plugin manifest {source}: the {kind} id {contribution_id!r} is not a plain name.")
    target = row.get("target")
    if not isinstance(target, str) or not TARGET.fullmatch(target):
        raise ManifestError(f"The plugin manifest {source}: the {kind} {contribution_id!r} needs target = "
                            "\"package.module:attribute\".")
    title = _text(row, "title", source, limit=100) or contribution_id
    parameters = row.get("parameters", [])
    if not isinstance(parameters, list):
        raise ManifestError(f"The plugin manifest {source}: the parameters of {contribution_id!r} must be "
                            "[[...parameters]] tables.")
    return ContributionSpec(kind, contribution_id, title, target, _text(row, "description", source),
                            schema_from_table(parameters, f"the {kind} {contribution_id!r}",
                                              GENERATE_OPTIONS if kind == "generator" else POSTPROCESS_OPTIONS))
