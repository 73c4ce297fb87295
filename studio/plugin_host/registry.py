"""Lazy registry: contributions are named by "module:attr" and imported only on first use.

Studio's own generators register here exactly like a plugin's. A plugin's contribution gets its
own data and cache folders and, for plugins installed into Studio's plugins folder, that folder
is put at the END of sys.path on first use, so a plugin can never shadow Studio's own modules.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import StudioError, os_reason
from studio.core.parameters import Param

GENERATOR = "generator"
POSTPROCESSOR = "postprocessor"
BUILTIN_PLUGIN = "studio"
KIND_WORDS = {GENERATOR: "generator", POSTPROCESSOR: "post-processor"}  # the kinds as sentences name them


@dataclass(frozen=True)
class Contribution:
    kind: str  # GENERATOR or POSTPROCESSOR
    id: str
    title: str
    target: str  # "package.module:attr"
    plugin_id: str = BUILTIN_PLUGIN
    plugin_version: str = ""
    plugin_name: str = ""
    parameters: tuple[Param, ...] = ()
    description: str = ""
    import_path: str | None = None  # a folder to append to sys.path before importing target

    @property
    def builtin(self) -> bool:
        return self.plugin_id == BUILTIN_PLUGIN

    @property
    def owner(self) -> str:
        """How the person knows who made it: 'Studio' or the plugin's name."""
        return "Studio" if self.builtin else (self.plugin_name or self.plugin_id)


class Registry:
    def __init__(self) -> None:
        self._contributions: dict[tuple[str, str], Contribution] = {}
        self._instances: dict[tuple[str, str], Any] = {}
        # Kept when a plugin is removed: a filter that failed until its plugin was switched off is still named as
        # the person knows it ("the picture was kept without Boom"), not by its id.
        self._titles: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.missing_hint = ""  # said after "No generator called …" (the host sets it in safe mode)

    def add(self, contribution: Contribution) -> None:
        key = (contribution.kind, contribution.id)
        with self._lock:
            if key in self._contributions:
                owner = self._contributions[key].owner
                raise StudioError(f"Two {KIND_WORDS[contribution.kind]}s are called {contribution.id!r}: {owner} "
                                  f"already owns that id, so the one from {contribution.owner} was not added.")
            self._contributions[key] = contribution
            self._titles[key] = contribution.title

    def remove_plugin(self, plugin_id: str) -> None:
        """Forget every contribution of a plugin, and the modules imported from its folder: a plugin updated (or
        turned off and on) while Studio runs is imported afresh at its next use, so its new version's code runs
        where its new version is recorded. A job running now keeps what it has."""
        with self._lock:
            folders = set()
            for key in [k for k, c in self._contributions.items() if c.plugin_id == plugin_id]:
                folders.add(self._contributions.pop(key).import_path)
                self._instances.pop(key, None)
        _forget_modules_in({folder for folder in folders if folder})

    def live_instances(self) -> list[Any]:
        """The objects created so far (a job running now may be using one)."""
        with self._lock:
            return list(self._instances.values())

    def forget_instances(self) -> None:
        """Drop every live object, so the next use creates it again (with a new environment). A job running
        now keeps the object it has."""
        with self._lock:
            self._instances.clear()

    def contributions(self, kind: str) -> list[Contribution]:
        return [c for (k, _), c in list(self._contributions.items()) if k == kind]

    def has(self, kind: str, id: str) -> bool:
        return (kind, id) in self._contributions

    def get(self, kind: str, id: str) -> Contribution:
        try:
            return self._contributions[(kind, id)]
        except KeyError:
            raise StudioError(f"No {KIND_WORDS.get(kind, kind)} called {id!r} is installed and enabled."
                              f"{self.missing_hint}") from None

    def title(self, kind: str, id: str) -> str:
        """The contribution's name as its menu shows it ("Colour Transfer"), also once its plugin is removed or
        switched off, or its id where none was ever installed."""
        return self._titles.get((kind, id), id)

    def runs_generator(self, kind: str, id: str) -> bool:
        """Whether a contribution of Studio's own runs Studio's diffusers generator itself (Restyle); False for one
        not there (its step then says so when it runs, and the picture is kept)."""
        contribution = self._contributions.get((kind, id))
        return contribution is not None and contribution.builtin and \
            bool(getattr(_load(contribution), "runs_generator", False))

    def instance(self, kind: str, id: str, env: GeneratorEnvironment) -> Any:
        """The one live object for a contribution, imported and created on first use."""
        key = (kind, id)
        contribution = self.get(kind, id)
        with self._lock:
            if key in self._instances:
                return self._instances[key]
        with self._lock:
            others = frozenset(c.import_path for c in self._contributions.values()
                               if c.import_path and c.plugin_id != contribution.plugin_id)
        created = _load(contribution, others)(plugin_environment(env, contribution))  # not under the lock: plugin code
        if contribution.builtin and hasattr(created, "use_registry"):
            created.use_registry(self)  # e.g. restyle runs Studio's own diffusers generator, not a second copy
        with self._lock:
            return self._instances.setdefault(key, created)


def plugin_environment(env: GeneratorEnvironment, contribution: Contribution,
                       note: Callable[[str], None] | None = None) -> GeneratorEnvironment:
    """A plugin gets folders of its own; Studio's built-ins keep Studio's.

    Its data folder must be made (what it keeps there would be lost anywhere else); a cache folder that cannot be
    made is a temporary one instead, for this session, and ``note`` is told so once."""
    if contribution.builtin:
        return env
    data_dir = env.data_dir / "plugin-data" / contribution.plugin_id
    cache_dir = env.cache_dir / "plugin-cache" / contribution.plugin_id
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudioError(f"The plugin {contribution.owner} was not run: its data folder {data_dir} could not be "
                          f"made ({_reason(exc)}).") from None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        cache_dir = _stand_in_cache(contribution, cache_dir, exc, note)
    return replace(env, data_dir=data_dir, cache_dir=cache_dir)


_stand_in_caches: dict[str, Path] = {}  # plugin id -> its temporary cache folder, removed when Studio ends
_told: set[str] = set()  # the plugins whose stand-in a job has said (once a session is enough)
_stand_in_lock = threading.Lock()


def _stand_in_cache(contribution: Contribution, wanted: Path, error: OSError,
                    note: Callable[[str], None] | None) -> Path:
    with _stand_in_lock:
        made = _stand_in_caches.get(contribution.plugin_id)
        if made is None:
            try:
                # mkdtemp: a new folder only this user can enter, never one someone else prepared
                made = Path(tempfile.mkdtemp(prefix=f"studio-{contribution.plugin_id}-cache-"))
            except OSError as exc:
                raise StudioError(f"The plugin {contribution.owner} was not run: its cache folder {wanted} could not "
                                  f"be made ({_reason(error)}), nor a temporary one ({_reason(exc)}).") from None
            if not _stand_in_caches:
                atexit.register(_remove_stand_in_caches)
            _stand_in_caches[contribution.plugin_id] = made
        tell = note is not None and contribution.plugin_id not in _told
        if tell:
            _told.add(contribution.plugin_id)
    if tell and note is not None:
        note(f"The cache folder {wanted} of the plugin {contribution.owner} could not be made ({_reason(error)}); "
             f"it uses {made} until Studio closes.")
    return made


def _remove_stand_in_caches() -> None:
    for folder in _stand_in_caches.values():
        shutil.rmtree(folder, ignore_errors=True)


def _reason(exc: OSError) -> str:
    return os_reason(exc)


def _load(contribution: Contribution, others: frozenset[str] = frozenset()) -> Any:
    """The contribution's class (or factory), imported from its plugin's folder. ``others``: the folders of the
    other plugins loaded now, whose modules it must not take for its own."""
    from studio.plugin_host.dependencies import (
        loaded_elsewhere,  # (packaging: not before the first frame)
    )

    module_name, _, attr = contribution.target.partition(":")
    if contribution.import_path and (problem := loaded_elsewhere(Path(contribution.import_path))):
        # Not run with a version it rejects: its pictures would be made by code it was never tested with.
        raise StudioError(f"The {KIND_WORDS[contribution.kind]} {contribution.title!r} from {contribution.owner} "
                          f"could not be loaded: {problem}.")
    if contribution.import_path and contribution.import_path not in sys.path:
        sys.path.append(contribution.import_path)
    try:
        module = importlib.import_module(module_name)
        if _foreign(contribution, module) and not _under(module, others):
            # A copy of its package left loaded by no plugin in use (one uninstalled or updated away, a source
            # checkout): it goes, and the plugin's own is imported.
            top = module_name.partition(".")[0]
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                del sys.modules[name]
            importlib.invalidate_caches()
            module = importlib.import_module(module_name)
        found = getattr(module, attr)
    except Exception as exc:  # noqa: BLE001 - any import-time error of a plugin is its own failure
        kind = type(exc).__name__
        raise StudioError(
            f"The {KIND_WORDS[contribution.kind]} {contribution.title!r} from {contribution.owner} could not be loaded "
            f"({kind}: {exc})."
        ) from exc
    if _foreign(contribution, module):
        _refuse_foreign(contribution, module)
    return found


def _forget_modules_in(folders: set[str]) -> None:
    if not folders:
        return
    # By the text of the path (thousands of modules are loaded; no file system call for each): a plugin's modules are
    # imported through its folder's sys.path entry, so their files start with it.
    prefixes = tuple({os.path.join(form, "") for folder in folders
                      for form in (os.path.abspath(folder), os.path.realpath(folder))})
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if isinstance(origin, str) and origin.startswith(prefixes):
            sys.modules.pop(name, None)
    importlib.invalidate_caches()  # the folder's files changed in place: its finder's listing is stale


def _foreign(contribution: Contribution, module: Any) -> bool:
    """Whether ``module`` was loaded from somewhere else than the contribution's own plugin folder."""
    origin = getattr(module, "__file__", None)
    if not contribution.import_path or not origin:
        return False
    return not Path(origin).resolve().is_relative_to(Path(contribution.import_path).resolve())


def _under(module: Any, folders: frozenset[str]) -> bool:
    origin = getattr(module, "__file__", None)
    return bool(origin) and any(Path(origin).resolve().is_relative_to(Path(folder).resolve()) for folder in folders)


def _refuse_foreign(contribution: Contribution, module: Any) -> None:
    """Two plugins that ship a package of one name share one ``sys.modules`` entry: the second would run the first
    one's code while its pictures named the second. Refused with a sentence instead."""
    top = contribution.target.partition(":")[0].partition(".")[0]
    raise StudioError(
        f"The {KIND_WORDS[contribution.kind]} {contribution.title!r} from {contribution.owner} could not be "
        f"loaded: its package {top!r} has the name of one already loaded from {Path(module.__file__).parent}, so it "
        "would run that code instead. Two plugins cannot ship packages of one name; uninstall one of them (or ask its "
        "author to rename "
        "it).")


def builtin_registry() -> Registry:
    """A registry holding Studio's own generators and post-processors."""
    from studio.plugin_host.builtins import BUILTIN_CONTRIBUTIONS

    registry = Registry()
    for contribution in BUILTIN_CONTRIBUTIONS:
        registry.add(contribution)
    return registry
