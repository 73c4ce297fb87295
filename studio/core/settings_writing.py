"""Writing the settings file under a lock shared by every Studio: a save that keeps folders another Studio linked
meanwhile, a read-change-write step for commands, and saves from several threads kept in order."""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.paths import StudioPaths, config_folder_problem, studio_paths
from studio.core.settings import LinksOnDisk, Settings, absolute_folder, broken_link_problem, read_settings

SETTINGS_LOCK = ".settings.lock"  # beside settings.toml: held while the file is read, changed and written
SETTINGS_LOCK_TIMEOUT = 30.0  # seconds; each holder holds it for one read and write of a small file


def save_settings(settings: Settings, paths: StudioPaths | None = None) -> None:
    """Write the settings file, under the settings lock. Its linked folders are this Studio's changes (links added
    and removed since these settings were read or last saved) applied to the file as it is now: a folder another
    Studio linked meanwhile is not lost. Settings made in code, not read, are written as they are."""
    paths = paths or studio_paths()
    with _settings_file_locked(paths):
        record = settings._links_on_disk
        _write_settings(settings, paths, _merged_links(settings, paths.settings_file))
        if record is not None:
            record.paths = list(settings.extra_model_paths)


def update_settings(change: Callable[[Settings], bool], paths: StudioPaths | None = None) -> Settings:
    """Change the settings file as one step: read it afresh under the settings lock, apply ``change`` (which says
    whether it changed anything) and write it back. Two commands at once each keep their change: read at their
    start and saved whole, five of six ``studio models link`` run together were lost. Returns the settings as now
    on disk."""
    paths = paths or studio_paths()
    with _settings_file_locked(paths):
        settings = read_settings(paths)
        if change(settings):
            _write_settings(settings, paths, settings.extra_model_paths)
    settings._links_on_disk = LinksOnDisk(list(settings.extra_model_paths))
    return settings


@contextmanager
def _settings_file_locked(paths: StudioPaths) -> Iterator[None]:
    from filelock import (  # here, not at import: the window's first frame does not wait for it
        FileLock,
        Timeout,
    )

    if problem := config_folder_problem(paths):  # mkdir would say only "File exists"
        raise StudioError(f"Settings could not be saved to {paths.settings_file}: {problem}.") from NotADirectoryError(
            problem)
    try:
        paths.config_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(paths.config_dir / SETTINGS_LOCK, timeout=SETTINGS_LOCK_TIMEOUT):
            yield
    except Timeout:
        raise StudioError(f"Settings could not be saved to {paths.settings_file}: another Studio kept it busy for "
                          f"{SETTINGS_LOCK_TIMEOUT:g} s; try again.") from None
    except OSError as exc:
        raise StudioError(f"Settings could not be saved to {paths.settings_file}: {exc.strerror}.") from exc


def _write_settings(settings: Settings, paths: StudioPaths, links: list[Path]) -> None:
    import tomli_w

    from studio.core.images import write_atomically

    data = settings.model_dump(mode="json", exclude_none=True)
    data["extra_model_paths"] = [str(path) for path in links]
    write_atomically(_settings_target(paths.settings_file), tomli_w.dumps(data).encode("utf-8"))


def _settings_target(file: Path) -> Path:
    """Where the settings are written: the file itself, or the file a symbolic link to it names (settings kept with
    dotfiles), replaced there so that the link stays a link; StudioError for a link that leads to no file."""
    if problem := broken_link_problem(file):
        raise StudioError(f"Settings could not be saved: the settings file {file} {problem}, and Studio does not "
                          "replace it; fix the link, or delete it to let Studio write a new file.")
    return file.resolve() if file.is_symlink() else file


def _merged_links(settings: Settings, file: Path) -> list[Path]:
    """The file's linked folders now, less those these settings unlinked and with those they linked since they were
    read or last saved; theirs alone where they were not read from the file, or the file cannot be read now."""
    ours, record = list(settings.extra_model_paths), settings._links_on_disk
    theirs = _links_in_file(file) if record is not None else None
    if record is None or theirs is None:
        return ours
    unlinked = [path for path in record.paths if path not in ours]
    linked = [path for path in ours if path not in record.paths and path not in theirs]
    return [path for path in theirs if path not in unlinked] + linked


def _links_in_file(file: Path) -> list[Path] | None:
    """The linked folders the settings file lists now; None where it cannot be read or they are not a list of
    paths (load_settings says what it makes of such a file; here ours are written)."""
    try:
        links = tomllib.loads(file.read_bytes().decode("utf-8-sig")).get("extra_model_paths", [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(links, list) or not all(isinstance(path, str) and path.strip() for path in links):
        return None
    return [absolute_folder(Path(path)) for path in links]


class OrderedSaves:
    """Settings saved from more than one thread (the window's, a worker's) are written in the order their snapshots
    were taken: an older one that finishes later (a slow disk, an fsync) never overwrites a newer one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = 0
        self._written = 0

    def ticket(self) -> int:
        """Take one when the snapshot is taken (on the window's thread)."""
        with self._lock:
            self._taken += 1
            return self._taken

    def save(self, settings: Settings, ticket: int, paths: StudioPaths | None = None) -> None:
        with self._lock:
            if ticket < self._written:
                return  # a newer snapshot is on disk already
            save_settings(settings, paths)
            self._written = ticket
