"""Where Studio keeps its files. ``STUDIO_HOME`` puts everything under one folder (tests, portable use)."""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "Studio"


@dataclass(frozen=True)
class StudioPaths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.toml"

    @property
    def default_models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def default_outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def plugins_dir(self) -> Path:
        """Plugins installed by Studio, one folder each, and which of them are enabled."""
        return self.data_dir / "plugins"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "studio.log"


def studio_paths() -> StudioPaths:
    home = os.environ.get("STUDIO_HOME")
    if home:
        root = Path(home).expanduser().resolve()
        return StudioPaths(root / "config", root / "data", root / "cache")
    import platformdirs

    return StudioPaths(
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
    )


def studio_home_problem() -> str | None:
    """What keeps ``STUDIO_HOME`` from being Studio's folder, in a sentence, said once before anything uses it (each
    of its files said "…/afile/data/history.db could not be looked at: Not a directory."); None where nothing does."""
    home = os.environ.get("STUDIO_HOME")
    if not home:
        return None
    path = Path(home).expanduser()
    place = _file_in_the_way(path)
    if place is None:
        return None
    if place == path:
        return f"STUDIO_HOME {home} is a file, not a folder; point it at a folder."
    return f"STUDIO_HOME {home} is inside {place}, which is a file, not a folder; point it at a folder."


def config_folder_problem(paths: StudioPaths) -> str | None:
    """Where the config folder (or a folder above it) is a file, that in a sentence: the settings file cannot be
    there, and the system's own words for it are "File exists" or "Not a directory"; else None."""
    place = _file_in_the_way(paths.config_dir)
    return None if place is None else f"{place} is a file, not a folder"


def _file_in_the_way(folder: Path) -> Path | None:
    """The file at ``folder`` or at the nearest folder above it that exists (what ``folder`` is to be made inside),
    or None where that is a folder."""
    for place in (folder, *folder.parents):  # the first that exists
        try:
            if not place.exists():
                continue
            if place.is_dir():
                return None
        except OSError:  # a name the system will not look at: said where it is used
            return None
        return place
    return None


def real_path(path: Path) -> Path:
    """``path.resolve()``; where a symbolic link loop (a → b → a) keeps it from resolving, the absolute path as it
    is (``resolve()`` raises RuntimeError for a loop), so one bad link cannot stop a scan; real_path_or_loop tells."""
    return real_path_or_loop(path)[0]


def real_path_or_loop(path: Path) -> tuple[Path, bool]:
    """``real_path(path)``, and whether a symbolic link loop kept it from resolving. Non-strict ``resolve()`` does
    not raise for a loop on Python 3.13 (3.11 and 3.12 raise RuntimeError), so the loop is told by a strict one."""
    path = path.expanduser()
    resolved, loop = _strict_resolve(path)
    if loop:
        return path.absolute(), True
    if resolved is not None:
        return resolved, False
    try:  # a dangling link or a path not there yet: resolved as far as it goes
        return path.resolve(), False
    except (RuntimeError, OSError):
        return path.absolute(), False


def _strict_resolve(path: Path) -> tuple[Path | None, bool]:
    """``path.resolve(strict=True)`` (None where it fails), and whether a symbolic link loop is why it failed; any
    other failure (nothing there, no permission) is not a loop."""
    try:
        return path.resolve(strict=True), False
    except RuntimeError:  # Python 3.11 and 3.12 on a loop
        return None, True
    except OSError as error:
        return None, error.errno == errno.ELOOP


def files_under(folder: Path) -> list[tuple[Path, int]]:
    """Every file under ``folder`` with its size in bytes, from one listing of each folder (a model folder's checks
    and its size share it): links to files are followed, links to folders are not (as ``Path.rglob``), and what
    cannot be read (a dangling link, a folder without permission) is left out. A folder's own files come before its
    sub-folders' (``rglob``'s order, which the sentences naming files keep)."""
    found: list[tuple[Path, int]] = []
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError:
        return found
    below: list[Path] = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                below.append(folder / entry.name)
            elif entry.is_file():
                found.append((folder / entry.name, entry.stat().st_size))
        except OSError:
            continue
    for sub in below:
        found.extend(files_under(sub))
    return found


def path_inside(folder: str | os.PathLike[str], path: str | os.PathLike[str]) -> str | None:
    """path's place inside folder, as a relative POSIX path ("2026-12-07/sources/a.png"): as the two are written
    (made absolute), else as they really are (links followed); None where it is not inside (or is folder itself)."""
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    for inside, root in ((Path(path), Path(folder)), (Path(os.path.realpath(path)), Path(os.path.realpath(folder)))):
        if inside.is_relative_to(root) and inside != root:
            return inside.relative_to(root).as_posix()
    return None


def is_link_loop(path: Path) -> bool:
    """Whether ``path`` is (or goes through) a loop of symbolic links (a → b → a); a dangling link or a folder
    without permission is not one."""
    return _strict_resolve(path.expanduser())[1]


def link_loop_problem(path: Path) -> str:
    """"PATH is a loop of symbolic links …" as a sentence, where a loop (a → b → a) is why nothing can be read at
    ``path`` (``exists()`` says False, and "no file there" would send people looking for a missing one); "" else."""
    return link_loop_sentence(path) if is_link_loop(path) else ""


def link_loop_sentence(path: Path) -> str:
    """The sentence saying ``path``, known to be a loop of symbolic links, cannot be read."""
    return (f"{path} is a loop of symbolic links (it leads back to itself), so it cannot be read; fix or delete the "
            "link.")


def links_looping(folders: Iterable[Path], name: str, max_depth: int) -> list[Path]:
    """The link loops in ``folders`` (down to ``max_depth`` folders below each, links not followed) named ``name``,
    with or without a suffix."""
    found: list[Path] = []
    for folder in folders:
        for place, dirs, files in os.walk(folder):
            found += [Path(place) / entry for entry in (*dirs, *files)
                      if name in (entry, Path(entry).stem) and is_link_loop(Path(place) / entry)]
            if len(Path(place).parts) - len(folder.parts) >= max_depth:
                dirs.clear()
    return sorted(found)


@functools.cache  # resolved once: the window asks for it per icon (49 times before its first frame, 7-8 ms)
def resources_dir() -> Path:
    """The repository's ``resources/`` folder (icons, style sheet, model configs)."""
    return Path(__file__).resolve().parents[2] / "resources"


def log_to_file(paths: StudioPaths) -> None:
    """Studio's log (with the tracebacks of unexpected errors) goes to ``paths.log_file``, never to the terminal,
    where the window and the command line say what went wrong in a sentence. Without a writable data folder it
    goes nowhere."""
    root = logging.getLogger()
    try:
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(paths.log_file, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
