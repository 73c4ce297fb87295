"""The plugins Studio knows about, which are on, and what happened to them this session.

The host reads manifests (never plugin code), keeps the enabled set in ``plugins_dir/state.json``,
puts the contributions of enabled, compatible plugins into the registry, and switches a plugin off
for the rest of the session after repeated failures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core.errors import StudioError
from studio.core.plugin_manifest import check_plugin_id
from studio.plugin_host.discovery import FoundPlugin, discover
from studio.plugin_host.enabled_state import EnabledState
from studio.plugin_host.folder_stamp import folder_stamp
from studio.plugin_host.registry import (
    BUILTIN_PLUGIN,
    KIND_WORDS,
    Contribution,
    Registry,
    builtin_registry,
)

if TYPE_CHECKING:  # dependencies imports packaging, which the window's first frame need not wait for
    from studio.plugin_host.dependencies import PluginDependencies

log = logging.getLogger(__name__)

MAX_FAILURES = 3
MAX_HANGS = 2  # each plugin left running after a cancel keeps a thread (and what it holds) until Studio quits

ENABLED = "enabled"
DISABLED = "disabled"
INCOMPATIBLE = "incompatible"
FAILED = "failed"
SAFE_MODE = "not loaded (safe mode)"


@dataclass(frozen=True)
class PluginRecord:
    """One installed plugin for lists and dialogs: its manifest, its status, and the error if any."""

    found: FoundPlugin
    status: str
    error: str = ""
    failures: int = 0

    @property
    def id(self) -> str:
        return self.found.id

    @property
    def name(self) -> str:
        return self.found.manifest.name if self.found.manifest else self.found.entry_name

    @property
    def version(self) -> str:
        return self.found.manifest.version if self.found.manifest else self.found.dist_version


class PluginHost:
    def __init__(self, plugins_dir: Path, *, safe_mode: bool = False, scan_environment: bool = True,
                 registry: Registry | None = None) -> None:
        self.plugins_dir = plugins_dir
        self.safe_mode = safe_mode
        self.scan_environment = scan_environment
        self.registry = registry if registry is not None else builtin_registry()
        if safe_mode:
            self.registry.missing_hint = " Studio was started in safe mode, which loads no plugin."
        self.records: list[PluginRecord] = []
        self._failures: dict[str, list[str]] = {}
        self._hangs: dict[str, int] = {}  # plugin id -> times it was left running after a cancel, this session
        self._switched_off: dict[str, str] = {}  # plugin id -> why, for this session
        self._lock = threading.Lock()
        # The window refreshes on the UI thread, a failing plugin on the engine thread: one at a time.
        self._refresh_lock = threading.RLock()
        self.on_change: Callable[[], None] | None = None  # told after refresh (on whatever thread refreshed)
        self._state = EnabledState(plugins_dir)
        self._seen: tuple | None = None  # the plugins folder as the last refresh found it (see disk_stamp)
        # Plugins being uninstalled now: switched off first, so a window told of that change must not say "switched
        # off" of what is on its way out.
        self.uninstalling: set[str] = set()

    # -- state -----------------------------------------------------------------------------
    @property
    def state_notice(self) -> str:
        """What became of a damaged state.json, until a plugin is enabled or disabled."""
        return self._state.notice

    @state_notice.setter
    def state_notice(self, notice: str) -> None:
        self._state.notice = notice

    def enabled_ids(self) -> set[str]:
        """The plugins state.json has on. A damaged one is set aside and said (``state_notice``): none is on."""
        return self._state.read()

    def set_enabled(self, plugin_id: str, enabled: bool) -> PluginRecord:
        """Turn a plugin on or off (remembered across sessions); enabling clears this session's failures."""
        record = self.record(plugin_id)
        if enabled:
            if record.found.manifest is None:
                raise StudioError(f"{record.name} cannot be enabled: {record.found.error}")
            if reason := record.found.manifest.incompatibility():
                raise StudioError(reason)
        self._save_enabled(plugin_id, enabled, record)
        if enabled:
            with self._lock:
                self._failures.pop(plugin_id, None)
                self._hangs.pop(plugin_id, None)
                self._switched_off.pop(plugin_id, None)
        self.refresh()
        return self.record(plugin_id)

    def uninstall(self, plugin_id: str, remove_files: Callable[[str], None]) -> PluginRecord:
        """Switch ``plugin_id`` off, then ``remove_files(plugin_id)`` (the installer's uninstall); returns the record
        it had. Off first: a Studio that crashes midway must not find the id on with half its files. A removal
        that fails (a read-only folder, files in use) leaves it as it was: one that was on stays on."""
        record = self.record(plugin_id)
        was_on = plugin_id in self.enabled_ids()
        self.uninstalling.add(plugin_id)
        try:
            if was_on:
                self.set_enabled(plugin_id, False)
            try:
                remove_files(plugin_id)
            except BaseException:
                self.uninstalling.discard(plugin_id)  # before the refresh: it stays, and is not to be told removed
                if was_on:
                    try:
                        self._save_enabled(plugin_id, True, record)
                    except StudioError as exc:  # the removal's own failure is the one to say
                        log.warning("%s stays off: %s", record.name, exc)
                raise
            finally:
                self.refresh()
        finally:
            self.uninstalling.discard(plugin_id)
        return record

    def after_install(self, plugin_id: str, updated: bool) -> bool:
        """Bring the list up to date once ``plugin_id`` was installed; returns whether it is enabled.

        An update keeps its state. A fresh install is off, also where state.json still has the id on (a copy
        removed by hand while enabled): installing is not enabling."""
        if not updated:
            self._save_enabled(plugin_id, False)  # before the refresh: its code is not loaded, not even for a moment
        self.refresh()
        return plugin_id in self.enabled_ids()

    def _save_enabled(self, plugin_id: str, enabled: bool, record: PluginRecord | None = None) -> None:
        """Add the id to state.json's enabled list or take it out (``record``: the plugin, needed to enable)."""
        if not enabled and plugin_id not in self.enabled_ids():
            return  # already off: nothing to write (uninstalling it from a read-only folder says only that)

        def change(ids: set[str]) -> None:
            if not enabled:
                ids.discard(plugin_id)
                return
            assert record is not None
            # refused, and not remembered: it would take the id over silently once its owner is off
            if clash := self._clash(_contributions(record.found), self._owned_by_others(plugin_id, ids)):
                raise StudioError(f"{record.name} cannot be enabled: {clash}; disable that plugin first.")
            self._check_dependencies(record, ids)
            ids.add(plugin_id)

        self._state.change(change)

    def _check_dependencies(self, record: PluginRecord, enabled: set[str]) -> None:
        """Refuse a plugin whose folder's packages the other enabled plugins' reject, or the other way round."""
        if record.found.location is None:
            return  # installed in Studio's environment: its packages are the environment's, which pip matched
        from studio.plugin_host.dependencies import conflict, folder_dependencies

        mine = folder_dependencies(record.id, record.name, record.found.location)
        for other in self.enabled_dependencies(enabled - {record.id}):
            if clash := conflict(mine, other):
                raise StudioError(f"{record.name} cannot be enabled: {clash}; disable {other.label} first.")

    def enabled_dependencies(self, enabled: set[str] | None = None) -> list[PluginDependencies]:
        """What the enabled plugins in Studio's plugins folder carry there and require, for the dependency checks
        of enabling and installing (``enabled``: those ids instead of state.json's)."""
        from studio.plugin_host.dependencies import folder_dependencies

        ids = self.enabled_ids() if enabled is None else enabled
        seen: set[str] = set()
        found: list[PluginDependencies] = []
        for record in self.records:
            if record.id in ids and record.id not in seen and record.found.location is not None:
                seen.add(record.id)  # (a second copy of an id is not the one in use)
                found.append(folder_dependencies(record.id, record.name, record.found.location))
        return found

    def record(self, plugin_id: str) -> PluginRecord:
        check_plugin_id(plugin_id)
        for record in self.records:
            if record.id == plugin_id:
                return record
        raise StudioError(f"No plugin called {plugin_id!r} is installed.")

    def background_threads(self, record: PluginRecord) -> int:
        """How many threads the plugin started (from code in its packages) are still running: switched off or
        removed, they go on until Studio quits."""
        from studio.plugin_host.plugin_threads import threads_running_code_of

        manifest = record.found.manifest
        packages = {spec.target.partition(":")[0].partition(".")[0] for spec in manifest.contributions} \
            if manifest is not None else set()
        return len(threads_running_code_of(packages))

    def taken_ids(self) -> dict[str, str]:
        """Plugin id -> the distribution that owns it, for the installer's id check."""
        taken: dict[str, str] = {}
        for record in self.records:
            taken.setdefault(record.id, record.found.distribution)  # the first copy found is the one in use
        return taken

    def taken_contributions(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(kind, id) -> (plugin id, name) for every generator and post-processor of Studio and of the installed
        plugins, enabled or not, for the installer's check."""
        taken = {(c.kind, c.id): (c.plugin_id, c.owner) for kind in ("generator", "postprocessor")
                 for c in self.registry.contributions(kind) if c.builtin}
        for record in self.records:
            if record.found.manifest is not None:
                for c in _contributions(record.found):
                    taken.setdefault((c.kind, c.id), (c.plugin_id, c.owner))
        return taken

    # -- discovery -------------------------------------------------------------------------
    def refresh(self) -> list[PluginRecord]:
        """Read every manifest again and bring the registry in line with what is enabled."""
        with self._refresh_lock:
            records = self._refresh()
        if self.on_change is not None:
            self.on_change()
        return records

    def refresh_if_changed(self) -> bool:
        """Refresh if the plugins folder or state.json changed since the last refresh: another Studio (``studio
        plugins install``, ``disable``) may have updated, removed or switched a plugin since. Returns whether it
        did; unchanged, it costs a listing of one folder."""
        if self._seen == self.disk_stamp():
            return False
        self.refresh()
        return True

    def disk_stamp(self) -> tuple:
        """What changes whenever a plugin is installed, updated, removed, enabled or disabled: every one of those
        renames something in the plugins folder (a plugin's folder swapped in, state.json written atomically)."""
        # Not the dot entries (the lock, the staging and trash folders); () where there is no plugins folder (yet).
        return folder_stamp(self.plugins_dir, lambda name: not name.startswith(".")) or ()

    def _refresh(self) -> list[PluginRecord]:
        seen = self.disk_stamp()  # before reading: a change made while reading is found at the next look
        found = discover(self.plugins_dir, self.scan_environment)
        enabled = self.enabled_ids()
        records: list[PluginRecord] = []
        owners: dict[str, str] = {BUILTIN_PLUGIN: "Studio"}
        wanted: dict[str, list[Contribution]] = {}
        for plugin in found:
            record = self._judge(plugin, plugin.id in enabled, owners)
            if record.status == ENABLED:
                contributions = _contributions(plugin)
                problem = self._clashes(contributions, wanted)
                if problem:
                    record = PluginRecord(plugin, FAILED, problem)
                else:
                    wanted[plugin.id] = contributions
            owners.setdefault(plugin.id, _place(plugin))
            records.append(record)
        self._sync_registry(wanted)
        self.records = records
        self._seen = seen
        return records

    def _judge(self, plugin: FoundPlugin, enabled: bool, owners: dict[str, str]) -> PluginRecord:
        failures = len(self._failures.get(plugin.id, []))
        if plugin.manifest is None:
            return PluginRecord(plugin, FAILED, plugin.error)
        if plugin.id in owners:
            return PluginRecord(plugin, FAILED, f"The plugin id {plugin.id!r} is already taken by {owners[plugin.id]}; "
                                                f"this copy, {_place(plugin)}, is ignored.")
        if reason := plugin.manifest.incompatibility():
            return PluginRecord(plugin, INCOMPATIBLE, reason)
        if not enabled:
            return PluginRecord(plugin, DISABLED)
        if self.safe_mode:
            return PluginRecord(plugin, SAFE_MODE, "Studio was started in safe mode: no plugin is loaded.")
        if plugin.id in self._switched_off:
            return PluginRecord(plugin, FAILED, self._switched_off[plugin.id], failures)
        last = self._failures.get(plugin.id, [""])[-1]
        return PluginRecord(plugin, ENABLED, last, failures)

    def _clashes(self, contributions: list[Contribution], wanted: dict[str, list[Contribution]]) -> str:
        clash = self._clash(contributions, wanted)
        return f"{clash[:1].upper()}{clash[1:]}; the plugin was not loaded." if clash else ""

    def _clash(self, contributions: list[Contribution], wanted: dict[str, list[Contribution]]) -> str:
        """``its generator id 'x' is already owned by Y`` for the first id Studio or a plugin in ``wanted`` has."""
        taken = {(c.kind, c.id): c.owner for c in self.registry.contributions("generator")
                 + self.registry.contributions("postprocessor") if c.builtin}
        for others in wanted.values():
            taken.update({(c.kind, c.id): c.owner for c in others})
        for c in contributions:
            if (c.kind, c.id) in taken:
                return f"its {KIND_WORDS[c.kind]} id {c.id!r} is already owned by {taken[(c.kind, c.id)]}"
        return ""

    def _owned_by_others(self, plugin_id: str, enabled: set[str]) -> dict[str, list[Contribution]]:
        """The contributions of every other enabled plugin, loaded now or not (switched off for the session,
        safe mode): their ids are theirs while they are enabled."""
        owned: dict[str, list[Contribution]] = {}
        for record in self.records:
            manifest = record.found.manifest
            if (record.id != plugin_id and record.id in enabled and manifest is not None and manifest.compatible
                    and record.id not in owned):  # (a second copy of an id is not the one in use)
                owned[record.id] = _contributions(record.found)
        return owned

    def _sync_registry(self, wanted: dict[str, list[Contribution]]) -> None:
        current: dict[str, set[Contribution]] = {}
        for kind in ("generator", "postprocessor"):
            for c in self.registry.contributions(kind):
                if not c.builtin:
                    current.setdefault(c.plugin_id, set()).add(c)
        for plugin_id, contributions in current.items():
            if set(wanted.get(plugin_id, [])) != contributions:
                self.registry.remove_plugin(plugin_id)
        for plugin_id, contributions in wanted.items():
            if set(contributions) != current.get(plugin_id):
                for c in contributions:
                    self.registry.add(c)

    # -- failures --------------------------------------------------------------------------
    def report_failure(self, plugin_id: str, message: str) -> str:
        """Count one failure; returns a sentence for the person if the plugin was switched off now."""
        with self._lock:
            failures = self._failures.setdefault(plugin_id, [])
            failures.append(message)
            notice = ""
            if len(failures) >= MAX_FAILURES:
                notice = self._switch_off(plugin_id, f"it failed {len(failures)} times", message)
        self.refresh()
        return notice

    def report_hang(self, plugin_id: str, message: str) -> str:
        """Count one time the plugin went on running after the person's cancel. Not a failure (the cancel was the
        person's), but each leaves a thread behind: the second in a session switches the plugin off until restart.
        Returns a sentence for the person if it was switched off now."""
        with self._lock:
            hangs = self._hangs[plugin_id] = self._hangs.get(plugin_id, 0) + 1
            notice = ""
            if hangs >= MAX_HANGS:
                notice = self._switch_off(plugin_id, f"it did not stop after being cancelled {hangs} times", message)
        if notice:
            self.refresh()
        return notice

    def _switch_off(self, plugin_id: str, why: str, message: str) -> str:
        name = next((r.name for r in self.records if r.id == plugin_id), plugin_id)
        notice = (f"The plugin {name} was switched off until Studio restarts because {why}; "
                  "turn it on again in Plugins when it is fixed.")
        self._switched_off[plugin_id] = f"{notice} Last error: {message}"
        return notice


def _place(plugin: FoundPlugin) -> str:
    """Which copy of a plugin this is, by its distribution and where it lies: two copies of one id may share a
    distribution name (one in Studio's plugins folder, one pip-installed by hand)."""
    where = f"in {plugin.location}" if plugin.location is not None else "installed in Studio's Python environment"
    return f"{plugin.distribution} {where}"


def _contributions(plugin: FoundPlugin) -> list[Contribution]:
    manifest = plugin.manifest
    assert manifest is not None
    path = str(plugin.location) if plugin.location is not None else None
    return [Contribution(spec.kind, spec.id, spec.title, spec.target, manifest.id, manifest.version, manifest.name,
                         spec.parameters, spec.description, path) for spec in manifest.contributions]
