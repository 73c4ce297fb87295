"""Hub downloads that stopped half-way (a cancel, a crash, a lost connection): what of them is on disk, to list beside
the library, resume (by downloading the same repository again) or delete."""

from __future__ import annotations

import logging
import shutil
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout
from studio.core.errors import InvalidRequest, os_reason
from studio.core.units import format_size
from studio.services.download_folders import STAGING, WORK_DIR, read_json, remove_empty
from studio.services.hub_files import unsafe_path

ASIDE = ".removing"  # in the staging area: a deleted download's folder, moved here to be deleted out of its lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnfinishedDownload:
    repo_id: str
    folder: Path  # <models>/.downloads/owner--name: everything the download left, deleted as one
    done_bytes: int  # finished files and partial ones
    total_bytes: int | None  # None: a download started by a Studio that did not record it

    @property
    def progress(self) -> str:
        """"438 KB of 765 KB downloaded", or "438 KB downloaded" where the total is not known."""
        total = f" of {format_size(self.total_bytes)}" if self.total_bytes else ""
        return f"{format_size(self.done_bytes)}{total} downloaded"


def unfinished_downloads(models_dir: Path) -> list[UnfinishedDownload]:
    """The downloads in the models folder's staging area that have not finished, by repository id. (A finished one
    leaves it; one that completes a model already in the library is that model's, and listed with it.) One running
    now (in this window, another or the command line) is left out: it is not stopped, and is no one's to remove.
    Only reads: what a Remove left half-deleted is the window's to finish (``delete_leftovers``), not a listing's."""
    staging = models_dir.expanduser() / STAGING
    found = []
    for state_file in sorted(staging.glob(f"*/*/{WORK_DIR}/state.json")):
        state = read_json(state_file)
        if not state or not isinstance(state.get("repo_id"), str):
            continue
        work = state_file.parent
        if _running(work):
            continue
        target = work.parent.parent
        finished = [p for p in state.get("finished", []) if isinstance(p, str) and not unsafe_path(p)]
        done = sum(_size(target / p) for p in finished) + sum(_size(part) for part in work.glob("*.incomplete"))
        total = state.get("total_bytes")
        found.append(UnfinishedDownload(state["repo_id"], target.parent, done,
                                        total if isinstance(total, int) and total > 0 else None))
    return sorted(found, key=lambda download: download.repo_id.lower())


def delete_unfinished(download: UnfinishedDownload, models_dir: Path) -> None:
    """Delete what a stopped download left (its partial and finished files); InvalidRequest while it is running."""
    staging = models_dir.expanduser().resolve() / STAGING
    folder = download.folder.resolve()
    if folder.parent != staging:  # only ever a folder of the staging area, whatever the list was given
        raise InvalidRequest(f"{download.folder} is not an unfinished download in {staging}; Studio will not "
                             "delete it.")
    delete_leftovers(staging)  # an earlier Remove's, stopped half-way: this one is asked for, so is that
    aside = staging / ASIDE / f"{folder.name}-{uuid.uuid4().hex[:8]}"
    with ExitStack() as held:
        try:
            for lock in folder.glob(f"*/{WORK_DIR}/lock"):  # a download running into it holds its lock
                held.enter_context(FileLock(str(lock), timeout=0))
        except Timeout:
            raise InvalidRequest(f"{download.repo_id} is downloading now; cancel it before deleting it.") from None
        # Moved aside under the lock, deleted out of it: a download of the repo started meanwhile (Resume in another
        # window) is not refused for as long as gigabytes take to delete, nor has its new files deleted under it.
        try:
            aside.parent.mkdir(exist_ok=True)
            folder.rename(aside)
        except FileNotFoundError:
            pass  # deleted already (another window, by hand): what was asked is done
        except OSError as exc:
            raise InvalidRequest(f"Could not delete the unfinished download {folder}: {os_reason(exc)}.") from exc
    try:
        shutil.rmtree(aside)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise InvalidRequest(f"Could not delete the unfinished download of {download.repo_id}, moved to {aside} "
                             f"to be deleted: {os_reason(exc)}. Delete that folder by hand.") from exc
    remove_empty(aside.parent, staging.parent)


def delete_leftovers(staging: Path) -> None:
    """Delete the folders that Removes moved aside to delete and left (Studio stopped while it deleted, or the
    delete failed): nothing lists them, and they hold gigabytes. The window does, where those Removes are made: as
    it lists the downloads, and at the next Remove; ``studio models list`` only reads. Only ever this staging area's
    own ASIDE folder, whose folders no download uses (one moved there meanwhile is being deleted anyway). What
    cannot be deleted is logged and tried again the next time. May take a while: run it off the UI thread."""
    aside = staging / ASIDE
    try:
        leftovers = [path for path in aside.iterdir() if path.is_dir() and not path.is_symlink()]
    except OSError:  # none (the usual case), or not readable
        return
    for leftover in leftovers:
        try:
            shutil.rmtree(leftover)
        except FileNotFoundError:
            pass  # deleted meanwhile (the Remove that moved it there, in another window)
        except OSError as exc:
            log.warning("Could not delete %s, left by removing an unfinished download: %s", leftover, os_reason(exc))
    remove_empty(aside, staging.parent)


def _running(work: Path) -> bool:
    """Whether a download is fetching into ``work`` now, in any Studio process: it holds the lock there."""
    lock = work / "lock"
    if not lock.exists():  # not taken (and not created) by a download yet
        return False
    try:
        with FileLock(str(lock), timeout=0):
            return False
    except Timeout:
        return True
    except OSError:  # a lock file that cannot be opened (a read-only folder): nothing can be downloading into it
        return False


def _size(path: Path) -> int:
    """Its size; 0 when it is not there (a running download renames its parts as it goes)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0
