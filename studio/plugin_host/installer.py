"""Installing plugins safely: nothing of a plugin runs, and nothing of Studio's own can be replaced.

``plan`` stages the source (a wheel, a source archive or folder, or an index entry), reads the
manifest straight from the wheel, and asks pip, in a dry run against Studio's own environment with
every package Studio depends on pinned, what else it would install. ``install`` then installs
exactly that into ``plugins_dir/<id>`` with ``pip --target`` and swaps it into place.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from studio.core.errors import os_reason
from studio.core.plugin_manifest import check_plugin_id
from studio.plugin_host.archives import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    archive_kind,
    copy_tree,
    unpack,
)
from studio.plugin_host.dependencies import PluginDependencies, conflict, requirements
from studio.plugin_host.install_plan import InstallPlan
from studio.plugin_host.pip_runs import PIP_TIMEOUT, protected_packages, run_pip
from studio.plugin_host.plugin_index import IndexEntry, download
from studio.plugin_host.wheels import (
    InstallError,
    WheelInfo,
    check_flit_project,
    check_shadowing,
    installed_plugin,
    read_wheel,
    visible_elsewhere,
)

STALE_STAGING = 24 * 3600  # a staging folder this old was left by a crash
# Held while an update has the old version in the trash and may have to put it back: another Studio starting
# meanwhile must not tidy it away.
SWAP_LOCK = ".swap.lock"
SWAP_LOCK_TIMEOUT = 60.0  # seconds; each holder holds it for a few renames (or a listing of the trash)


class PluginInstaller:
    def __init__(self, plugins_dir: Path, python: str = sys.executable, protected: Mapping[str, str] | None = None,
                 pip_args: Sequence[str] = (), *, limits: ArchiveLimits = DEFAULT_LIMITS,
                 timeout: float = PIP_TIMEOUT) -> None:
        self.plugins_dir = Path(os.path.abspath(plugins_dir))  # pip runs in another working folder
        self.python = python
        self.protected = {canonicalize_name(k): v for k, v in
                          (protected_packages() if protected is None else protected).items()}
        self.pip_args = tuple(pip_args)
        self.limits = limits
        self.timeout = timeout
        self._staging_root = self.plugins_dir / ".staging"
        self._trash = self.plugins_dir / ".trash"
        self._tidy()

    # --- plan ---------------------------------------------------------------------------------------

    def plan(self, source: str | Path | IndexEntry, taken_ids: Mapping[str, str] | None = None,
             taken_contributions: Mapping[tuple[str, str], tuple[str, str]] | None = None,
             enabled_plugins: Sequence[PluginDependencies] = ()) -> InstallPlan:
        """Check a plugin and work out what installing it means; nothing is installed.

        An IndexEntry is downloaded into the staging folder and checked against its sha256 first.
        ``taken_ids`` maps plugin ids already in use to their distribution ("studio": built in);
        ``taken_contributions`` (kind, id) -> (plugin id, name) of the generators and post-processors Studio and
        the installed plugins have (a plugin's own, as an update, may be kept); ``enabled_plugins`` what the
        enabled plugins carry in their folders, which this one's dependencies must agree with."""
        with self._writing(f"install {source.name if isinstance(source, IndexEntry) else Path(source).name}"):
            return self._plan(source, taken_ids, taken_contributions, enabled_plugins)

    def _plan(self, source: str | Path | IndexEntry, taken_ids: Mapping[str, str] | None,
              taken_contributions: Mapping[tuple[str, str], tuple[str, str]] | None,
              enabled_plugins: Sequence[PluginDependencies]) -> InstallPlan:
        self._staging_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self._staging_root))
        try:
            for sub in ("in", "dist", "tmp"):
                (staging / sub).mkdir()
            if isinstance(source, IndexEntry):
                label = f"{source.name} {source.version} from {source.url}"
                path = download(source, staging / "in", max_bytes=self.limits.max_total_bytes)
            else:
                label, path = str(source), Path(source).expanduser()
            wheel = self._stage(path, staging)
            info = read_wheel(wheel, self.limits)
            if isinstance(source, IndexEntry) and info.manifest.id != source.name:
                raise InstallError(f"The plugin index lists {source.name}, but its file holds the plugin "
                                   f"{info.manifest.id}; nothing was installed.")
            if isinstance(source, IndexEntry) and Version(info.version) != source.parsed_version:
                # Installed anyway, the index would offer the same "update" forever and name the wrong version.
                raise InstallError(f"The plugin index lists {source.name} {source.version}, but its file holds "
                                   f"version {info.version}; nothing was installed.")
            replaces = self._check(info, dict(taken_ids or {}))
            for spec in info.manifest.contributions:
                plugin_id, owner = (taken_contributions or {}).get((spec.kind, spec.id), (info.manifest.id, ""))
                if plugin_id != info.manifest.id:
                    raise InstallError(f"The plugin {info.manifest.name}'s {spec.kind} id {spec.id!r} is already "
                                       f"owned by {owner}; it was refused.")
            deps, deps_require = self._resolve(info, wheel, staging)
            mine = PluginDependencies(info.manifest.id, info.manifest.name,
                                      {canonicalize_name(n): (n, v) for n, v in deps},
                                      requirements(map(str, info.requires)) + deps_require)
            for other in enabled_plugins:
                if other.plugin_id != info.manifest.id and (clash := conflict(mine, other)):
                    raise InstallError(f"The plugin {info.manifest.name} {info.version} was refused: {clash}; "
                                       f"disable {other.label} first.")
            return InstallPlan(label, wheel, info.manifest, info.distribution, info.version, deps, replaces, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _stage(self, path: Path, staging: Path) -> Path:
        """The plugin as a wheel inside staging: copied, or built from its source."""
        if not path.exists():
            raise InstallError(f"The file or folder {path} does not exist.")
        if path.is_dir():
            return self._build(copy_tree(path, staging / "src", self.limits), staging, path.name)
        kind = archive_kind(path)
        if kind == "zip" and path.name.lower().endswith(".whl"):
            wheel = staging / "dist" / path.name
            shutil.copyfile(path, wheel)
            return wheel
        if kind is None:
            raise InstallError(f"The file {path.name} is not something Studio installs plugins from: give a wheel "
                               "(.whl), a source archive (.zip, .tar.gz) or a folder.")
        unpacked = unpack(path, staging / "src", self.limits)
        roots = [unpacked] + sorted(p for p in unpacked.iterdir() if p.is_dir())
        # (a setuptools source is refused by the build, as it is from a folder)
        projects = ([p for p in roots if (p / "pyproject.toml").is_file()]
                    or [p for p in roots if (p / "setup.py").is_file() or (p / "setup.cfg").is_file()])
        if not projects or (projects[0] != unpacked and len(projects) > 1):
            raise InstallError(f"The archive {path.name} has no single pyproject.toml at its top or one folder "
                               "down, so it is not a plugin's source.")
        return self._build(projects[0], staging, path.name)

    def _build(self, project: Path, staging: Path, shown: str) -> Path:
        check_flit_project(project, shown)
        self._pip(["wheel", "--no-deps", "--no-build-isolation", "-w", str(staging / "dist"), str(project)],
                  staging, f"build the plugin from {shown}")
        wheels = sorted((staging / "dist").glob("*.whl"))
        if len(wheels) != 1:
            raise InstallError(f"Building the plugin from {shown} did not make exactly one wheel.")
        return wheels[0]

    def _check(self, info: WheelInfo, taken: dict[str, str]) -> str | None:
        """Refusals that need no pip; returns the version this would replace, if any."""
        m, dist = info.manifest, info.distribution
        if not m.compatible:
            raise InstallError(m.incompatibility())
        installed = installed_plugin(self.plugins_dir / m.id, m.id)
        if installed is not None:
            taken.setdefault(m.id, installed[0])
        owner = taken.get(m.id)
        if owner is not None and canonicalize_name(owner) != canonicalize_name(dist):
            owner = "Studio itself" if canonicalize_name(owner) == "studio" else owner
            raise InstallError(f"The plugin id {m.id} is already taken by {owner}.")
        if canonicalize_name(dist) in self.protected:
            raise InstallError(f"The plugin {dist} has the name of one of Studio's own packages; it was refused.")
        check_shadowing(info.top_level, info.packages, self.plugins_dir / m.id, f"The plugin {dist} {info.version}")
        for req in info.requires:
            if req.url:
                raise InstallError(f"The plugin {dist} requires {req.name} from a direct address ({req.url}); "
                                   "Studio installs dependencies only from a package index, so it was refused.")
            name = canonicalize_name(req.name)
            running = self.protected.get(name)
            if (running is not None and (req.marker is None or req.marker.evaluate({"extra": ""}))
                    and not req.specifier.contains(running, prereleases=True)):
                raise InstallError(f"The plugin {dist} {info.version} needs {req}, which would replace Studio's own "
                                   f"{req.name} {running}; it was refused.")
        return installed[1] if installed is not None else None

    def _resolve(self, info: WheelInfo, wheel: Path, staging: Path
                 ) -> tuple[tuple[tuple[str, str], ...], tuple[Requirement, ...]]:
        """Ask pip, in a dry run against Studio's environment, what else it would install: (name, version) of
        each, and what they require."""
        constraints = staging / "constraints.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(self.protected.items())))
        report = staging / "report.json"
        self._pip(["install", "--dry-run", "--report", str(report), "-c", str(constraints), "--only-binary=:all:",
                   *self.pip_args, str(wheel)], staging, f"work out what {info.distribution} needs", info)
        try:
            items = json.loads(report.read_text())["install"]
        except (OSError, ValueError, KeyError, TypeError):
            raise InstallError(f"pip gave no readable answer about what {info.distribution} needs; "
                               "nothing was installed.") from None
        deps: list[tuple[str, str]] = []
        required: list[Requirement] = []
        own_dir = self.plugins_dir / info.manifest.id
        for item in items:
            meta, where = item.get("metadata", {}), item.get("download_info", {})
            name, version = str(meta.get("name", "?")), str(meta.get("version", "?"))
            key = canonicalize_name(name)
            if key == canonicalize_name(info.distribution):
                continue
            if key in self.protected:
                raise InstallError(f"Installing {info.distribution} would replace Studio's own {name} "
                                   f"{self.protected[key]} with {version}; it was refused.")
            if item.get("is_direct") or "vcs_info" in where or "dir_info" in where:
                raise InstallError(f"The plugin {info.distribution} needs {name} from a direct address "
                                   f"({where.get('url', '?')}); it was refused.")
            clash = visible_elsewhere(key, own_dir)
            if clash is not None and clash[0] != version:
                raise InstallError(f"The plugin {info.distribution} needs {name} {version}, but {name} {clash[0]} is "
                                   f"already installed in {clash[1]} and Python can load only one; it was refused.")
            deps.append((name, version))
            required.extend(requirements(str(r) for r in meta.get("requires_dist") or []))
        return tuple(sorted(deps)), tuple(required)

    # --- install / remove ---------------------------------------------------------------------------

    def install(self, plan: InstallPlan) -> Path:
        """Install a plan into plugins_dir/<id>; returns that folder. Its staging folder is then removed
        (on failure it is kept, minus the half-made target, so the plan can be retried or discarded)."""
        with self._writing(f"install {plan.distribution}"):
            return self._install(plan)

    def _install(self, plan: InstallPlan) -> Path:
        target = plan.staging / "target"
        shutil.rmtree(target, ignore_errors=True)
        pins = [f"{name}=={version}" for name, version in plan.dependencies]
        self._pip(["install", "--target", str(target), "--no-deps", "--only-binary=:all:", "-c",
                   str(plan.staging / "constraints.txt"), *self.pip_args, str(plan.wheel), *pins],
                  plan.staging, f"install {plan.distribution}")
        top = [p for p in target.iterdir() if p.name not in ("bin", "__pycache__") and not p.name.endswith(
            (".dist-info", ".egg-info"))]
        if any(p.suffix == ".pth" for p in top):
            raise InstallError(f"Installing {plan.distribution} would add a .pth file, which runs code whenever "
                               "Python starts; it was refused.")
        names = {p.name.split(".")[0] for p in top if p.name.split(".")[0].isidentifier()}
        packages = {p.name for p in top if (p / "__init__.py").is_file()} | {
            p.name.split(".")[0] for p in top if p.is_file()}
        check_shadowing(names, packages, self.plugins_dir / plan.manifest.id, f"Installing {plan.distribution}")
        dest = self._swap_in(target, plan.manifest.id)
        shutil.rmtree(plan.staging, ignore_errors=True)
        return dest

    def _swap_in(self, target: Path, plugin_id: str) -> Path:
        """Move target to plugins_dir/<id>. An old version is moved aside first, put back if the move
        fails, and deleted only once the new one is in: an update never leaves half a plugin."""
        dest = self.plugins_dir / check_plugin_id(plugin_id)
        try:
            with FileLock(self.plugins_dir / SWAP_LOCK, timeout=SWAP_LOCK_TIMEOUT):
                old = self._to_trash(dest) if dest.exists() else None
                try:
                    os.rename(target, dest)
                except OSError as exc:
                    if old is not None:
                        os.rename(old, dest)
                    raise InstallError(f"The plugin {plugin_id} could not be put in place: "
                                       f"{exc.strerror or exc}.") from None
        except Timeout:
            raise InstallError(f"The plugin {plugin_id} could not be put in place: another Studio kept "
                               f"{self.plugins_dir} busy for {SWAP_LOCK_TIMEOUT:g} s; try again.") from None
        if old is not None:  # (no longer needed: another Studio may tidy it away as well)
            shutil.rmtree(old, ignore_errors=True)
        return dest

    def discard(self, plan: InstallPlan) -> None:
        """Forget a plan that will not be installed: its staging folder is removed."""
        if plan.staging.parent == self._staging_root:
            shutil.rmtree(plan.staging, ignore_errors=True)

    def uninstall(self, plugin_id: str) -> None:
        dest = self.plugins_dir / check_plugin_id(plugin_id)
        if not dest.is_dir():
            raise InstallError(f"No plugin {plugin_id} is installed in {self.plugins_dir}.")
        with self._writing(f"remove {plugin_id}"):
            shutil.rmtree(self._to_trash(dest), ignore_errors=True)

    def _to_trash(self, folder: Path) -> Path:
        # A rename is atomic: the plugin is either fully there or fully gone, never half-deleted.
        self._trash.mkdir(parents=True, exist_ok=True)
        place = Path(tempfile.mkdtemp(prefix=f"{folder.name}-", dir=self._trash))
        os.replace(folder, place)
        return place

    def _tidy(self) -> None:
        """Remove what an earlier crash left: the trash, and staging folders older than a day."""
        # OSError: a folder that cannot be read, or one another Studio tidied meanwhile; Timeout (an OSError too):
        # another Studio is swapping a plugin in, and may still put its old version back: tidied next time.
        with suppress(OSError):
            if self._trash.is_dir():
                # What is in the trash while no update swaps is left over (an update starting later sets its old
                # version aside under a new name). Not waited for: a start would wait.
                with FileLock(self.plugins_dir / SWAP_LOCK, timeout=0):
                    leftovers = list(self._trash.iterdir())
                for left in leftovers:
                    shutil.rmtree(left, ignore_errors=True)
        with suppress(OSError):
            for left in self._staging_root.iterdir() if self._staging_root.is_dir() else ():
                if time.time() - left.stat().st_mtime > STALE_STAGING:
                    shutil.rmtree(left, ignore_errors=True)

    @contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        """A file system error (a read-only or full plugins folder, a source that cannot be read) as one sentence:
        'Could not install x.whl: /…/plugins is read-only.'"""
        try:
            yield
        except OSError as exc:
            reason = os_reason(exc)
            name = exc.filename if isinstance(exc.filename, str) else None
            if name is not None and not (Path(name).is_relative_to(self.plugins_dir)
                                         or self.plugins_dir.is_relative_to(name)):
                problem = f"{name}: {reason}"  # not the plugins folder: the source, say
            elif exc.errno == errno.EROFS:
                problem = f"{self.plugins_dir} is read-only"
            else:
                problem = f"{self.plugins_dir} could not be written to ({reason})"
            raise InstallError(f"Could not {doing}: {problem}.") from None

    def _pip(self, args: list[str], staging: Path, doing: str, info: WheelInfo | None = None) -> None:
        run_pip(self.python, args, staging, doing, timeout=self.timeout, protected=self.protected, info=info)
