"""Where a hub download lives on disk: its folder in the models folder, the partial files and the state kept beside
them under ``<target>/.cache/studio-download/`` (what is finished), and what of it is there already."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from studio.core.annotators import HUB_FOLDERS
from studio.core.errors import InvalidRequest, ModelError
from studio.core.model_library import KIND_FOLDERS, read_source
from studio.services.hub_files import unsafe_path

WORK_DIR = ".cache/studio-download"  # partial files + state.json (finished files); removed once all are in
STAGING = ".downloads"  # in the models folder, out of the library's sight: downloads until they are filed by kind


def target_folder(models_dir: Path, repo_id: str) -> tuple[Path, bool]:
    """Where the files go, and whether the model is filed by kind once they are all in. An earlier download of this
    repo (finished, in its kind's folder or where older Studios put it, or stopped half-way) is completed in place, and
    a model a feature finds in its own place goes there; anything else is fetched out of the library's sight, into
    ``<models>/.downloads/owner--name/name``, and filed as an import is once complete."""
    owner, name = repo_id.split("/")
    root = models_dir.expanduser().resolve()
    known = HUB_FOLDERS.get(repo_id)  # a model a feature finds in its own place (the depth model in annotators/)
    if known:
        folder = root / known
        owners = _owners(folder)
        if owners and repo_id not in owners:
            raise InvalidRequest(f"{folder} holds another download; move it away to download {repo_id}.")
        # Its own place is its own: files put there by hand (no download's record) are completed, not moved away.
        return _inside(folder, root), False
    kind_folders = [root / sub for sub in dict.fromkeys(KIND_FOLDERS.values()) if sub]
    for folder in (place / label for place in (root, *kind_folders) for label in (name, f"{owner}--{name}")):
        if folder.is_dir() and repo_id in _owners(folder):
            return _inside(folder, root), False
    return _inside(root / STAGING / f"{owner}--{name}" / name, root), True


def _owners(folder: Path) -> list[str]:
    """The repos a folder holds a download of, finished or in progress."""
    return [str(data.get("repo_id")) for data in (read_source(folder), read_json(folder / WORK_DIR / "state.json"))
            if data]


def _inside(folder: Path, root: Path) -> Path:
    if not folder.resolve().is_relative_to(root) or folder.resolve() == root:
        raise InvalidRequest(f"{folder} points outside the models folder {root}; Studio will not download into it.")
    return folder


def file_destination(target: Path, path: str) -> Path:
    try:
        root, dest = target.resolve(), (target / path).resolve()  # resolve(): a symlinked sub-folder can't lead out
    except (RuntimeError, OSError):  # RuntimeError: a symlink loop
        raise ModelError(f"The file path {path!r} in {target} goes through a symbolic link that leads back to "
                         "itself (a link loop); fix or delete that link and download again.") from None
    if unsafe_path(path) or not dest.is_relative_to(root) or dest == root:
        raise ModelError(f"The file path {path!r} would land outside {target}, so Studio refused to download it.")
    return dest


def files_on_disk(target: Path, repo_id: str, revision: str, files: Sequence[tuple[str, int]]) -> tuple[int, set[str]]:
    """Bytes already there (finished files + partial ones) and the finished files, for this revision."""
    listed: set[str] = set()
    for data in (read_source(target), read_json(target / WORK_DIR / "state.json")):
        if data and data.get("repo_id") == repo_id and data.get("revision") == revision:
            listed.update(p for p in data.get("files", data.get("finished", [])) if isinstance(p, str))
    done, finished = 0, set()
    for path, size in files:
        dest = target / path
        partial = partial_file(target / WORK_DIR, revision, path)
        if path in listed and dest.is_file() and dest.stat().st_size == size:
            done += size
            finished.add(path)
        elif partial.is_file():
            done += min(partial.stat().st_size, size)
    return done, finished


def remove_empty(folder: Path, stop: Path) -> None:
    """``folder`` and the folders above it up to ``stop`` (not included), each while it is empty."""
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): what is above it holds something too
            return
        folder = folder.parent


def partial_file(work: Path, revision: str, path: str) -> Path:
    return work / f"{hashlib.sha1(f'{revision}/{path}'.encode()).hexdigest()[:24]}.incomplete"


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")  # temp file + rename: a crash never leaves half a file
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)
