"""Autosave and crash recovery for the canvas document.

Each running Studio keeps its autosave in ``<data>/autosave/<session>/`` and holds a lock file
there for as long as it runs (the OS drops the lock when the process dies, even by SIGKILL).
At start, any session folder whose lock can be taken belonged to a Studio that did not exit
cleanly: its document can be restored. While a plugin's code runs, a marker there names it: found beside a
dead Studio's autosave, the next start can say which plugin was running when it stopped; another marks a
generation running, so the next start can say it was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from studio.core.document_io import DOCUMENT_JSON, DocumentSnapshot, SavedDocument, load_document, save_document
from studio.core.errors import StudioError, os_reason
from studio.core.images import save_image
from studio.core.mask import mask_to_image

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 30.0
LOCK_NAME = "session.lock"
# The document as it is now; awaitable where it is taken partly in a worker thread (the window copies its mask there).
SnapshotFn = Callable[[], DocumentSnapshot | None | Awaitable[DocumentSnapshot | None]]
KEPT_NAME = "kept-at-close"  # beside an autosave the person chose to keep when closing Studio, not a crash's
RECOVERED_FOLDER = "Recovered"  # in the outputs folder: older unsaved work found at start
RUNNING_PLUGIN = "running-plugin.json"  # beside the autosave while a plugin's code runs
RUNNING_JOB = "running-job.json"  # beside the autosave while a generation runs


@dataclass(frozen=True)
class RunningPlugin:
    """A plugin's contribution whose code is running (a plugin that kills the process leaves no other trace)."""

    plugin_id: str
    name: str
    version: str
    title: str


def autosave_interval() -> float:
    """Seconds between autosaves (``STUDIO_AUTOSAVE_SECONDS`` shortens it for tests)."""
    try:
        return max(0.2, float(os.environ.get("STUDIO_AUTOSAVE_SECONDS", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


class Autosaver:
    def __init__(self, root: Path, snapshot: SnapshotFn, interval: float | None = None,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.folder = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.folder.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock  # here, not at import: the window's first frame does not wait for it

        self._lock = FileLock(self.folder / LOCK_NAME)
        self._lock.acquire(timeout=0)
        self._snapshot = snapshot
        self._interval = interval if interval is not None else autosave_interval()
        self._saved_revision: int | None = None
        self._task: asyncio.Task | None = None
        self._saving = asyncio.Lock()
        # A write in its thread and close() take turns: the folder is removed after any write, never written again.
        self._writing = threading.Lock()
        # The markers' own turn with close(): a marker is set on the window's thread as a job starts and ends, and
        # must not wait for a whole canvas being encoded and written under _writing.
        self._marking = threading.Lock()
        self._closed = False
        self.last_error: str | None = None
        self._on_failure = on_failure  # told once when saving starts failing (a full or lost disk), not every time

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.save_now()

    async def save_now(self) -> bool:
        """Save if the document changed since the last save; True when something was written.

        The snapshot is taken once it is this call's turn: results that come faster than a picture is written (a
        4096x4096 one took 1.3 s) are saved as the latest state once, not each in turn, holding a copy each."""
        async with self._saving:
            snapshot = self._snapshot()
            if inspect.isawaitable(snapshot):
                snapshot = await snapshot
            if snapshot is None or snapshot.revision == self._saved_revision or self._closed:
                return False
            try:
                if not await asyncio.to_thread(self._write, snapshot):
                    return False  # closed meanwhile: a clean exit leaves nothing to recover
            except (OSError, StudioError) as exc:
                first = self.last_error is None
                self.last_error = f"Autosave to {self.folder} failed: {exc}"
                log.warning(self.last_error)
                if first and self._on_failure is not None:
                    reason = os_reason(exc) if isinstance(exc, OSError) else str(exc).rstrip(".")  # no "[Errno 27]"
                    self._on_failure(f"Autosave failed ({reason}); until it works again, save your work yourself.")
                return False
            self._saved_revision = snapshot.revision
            self.last_error = None
            return True

    def _write(self, snapshot: DocumentSnapshot) -> bool:
        with self._writing:
            if self._closed:
                return False
            save_document(snapshot, self.folder)
            return True

    def mark_plugin(self, running: RunningPlugin | None) -> None:
        """Name the plugin whose code runs now (None: none does). Called on the engine thread around each plugin job:
        a marker left in a dead Studio's folder names the plugin that was running when it stopped."""
        self._mark(RUNNING_PLUGIN, None if running is None else json.dumps(asdict(running)), "the running plugin")

    def mark_job(self, running: bool) -> None:
        """Whether a generation runs now (set as it starts, cleared as it ends): a marker left in a dead Studio's
        folder says a job was lost with it, which the restored canvas and prompt do not show."""
        self._mark(RUNNING_JOB, "{}" if running else None, "the running generation")

    def _mark(self, name: str, text: str | None, what: str) -> None:
        path = self.folder / name
        with self._marking:
            if self._closed:
                return
            try:
                if text is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_text(text, encoding="utf-8")
            except OSError as exc:  # the job runs all the same; only a crash would go unexplained
                log.warning("Could not mark %s in %s: %s", what, self.folder, exc)

    def close(self, keep: bool = False) -> None:
        """A clean exit: stop saving, release the lock, and remove this session's autosave (after a write still
        under way, which would otherwise make the folder again: the next start would offer to recover it).

        ``keep``: the person closed with unsaved work and chose to keep it: the autosave stays, marked, and the
        next start offers it back."""
        with self._writing, self._marking:
            self._closed = True
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(OSError):  # closed cleanly: nothing crashed
            (self.folder / RUNNING_PLUGIN).unlink(missing_ok=True)
            (self.folder / RUNNING_JOB).unlink(missing_ok=True)
        if keep and (self.folder / DOCUMENT_JSON).exists():
            try:
                (self.folder / KEPT_NAME).touch()
            except OSError as exc:  # offered back all the same, as after a crash
                log.warning("Could not mark %s as kept: %s", self.folder, exc)
            self._lock.release()
            return
        self._lock.release()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class DamagedAutosave:
    """An autosave that could not be read, and where its files are now."""

    folder: Path
    moved: bool  # set aside (else it is still in the autosave folder: it could not be moved)


def take_running_plugins(root: Path) -> list[RunningPlugin]:
    """The plugins that were running when earlier Studios stopped without closing, each marker removed as it is read
    (said once). Call before ``scan_autosaves``: it removes a session folder that holds no document."""
    found: list[RunningPlugin] = []
    for marker, text in _take_markers(root, RUNNING_PLUGIN):
        try:
            found.append(RunningPlugin(**json.loads(text)))
        except (ValueError, TypeError) as exc:
            log.warning("Skipping the unreadable running-plugin marker %s: %s", marker, exc)
    return found


def take_running_jobs(root: Path) -> int:
    """How many earlier Studios stopped without closing while a generation ran, each marker removed as it is read
    (said once). Call before ``scan_autosaves``, as take_running_plugins."""
    return len(_take_markers(root, RUNNING_JOB))


def _take_markers(root: Path, name: str) -> list[tuple[Path, str]]:
    """The markers called ``name`` in dead Studios' folders (not a running one's), and their text (unreadable: ""),
    each removed as it is read."""
    found: list[tuple[Path, str]] = []
    if not root.is_dir():
        return found
    from filelock import FileLock, Timeout  # here, not at import: the window's first frame does not wait for it

    for marker in root.glob(f"*/{name}"):
        lock = FileLock(marker.parent / LOCK_NAME)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # a running Studio's job
        except OSError as exc:  # the lock file cannot be made (a read-only data folder): the next folder may do
            log.warning("Could not lock %s to read its marker: %s", marker.parent, exc)
            continue
        try:
            found.append((marker, marker.read_text(encoding="utf-8")))
        except OSError as exc:
            log.warning("Could not read the marker %s: %s", marker, exc)
            found.append((marker, ""))
        finally:
            try:
                marker.unlink(missing_ok=True)
            except OSError as exc:  # it is said again at the next start; the restore question still comes now
                log.warning("Could not remove the marker %s: %s", marker, exc)
            finally:
                lock.release()
    return found


def find_recoverable(root: Path) -> list[SavedDocument]:
    """Documents left by Studios that did not exit cleanly, newest first (unreadable ones skipped, left as they are)."""
    return scan_autosaves(root)[0]


def scan_autosaves(root: Path, damaged_into: Path | None = None) -> tuple[list[SavedDocument], list[DamagedAutosave]]:
    """Documents left by Studios that did not exit cleanly, newest first, and the autosaves that could not be read.
    With ``damaged_into``, each of those is moved there as ``damaged-<its folder's name>``: it was skipped with a
    log line at every start, forever, and the person never heard of it."""
    found: list[SavedDocument] = []
    damaged: list[DamagedAutosave] = []
    if not root.is_dir():
        return found, damaged
    from filelock import FileLock, Timeout  # here, not at import: the window's first frame does not wait for it

    for folder in root.iterdir():
        if not folder.is_dir():
            continue
        lock = FileLock(folder / LOCK_NAME)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # a running Studio's own autosave
        try:
            if (folder / DOCUMENT_JSON).exists():
                try:
                    found.append(load_document(folder))
                except StudioError as exc:
                    log.warning("Skipping unreadable autosave %s: %s", folder, exc)
                    if damaged_into is not None:
                        damaged.append(_set_aside(folder, damaged_into))
            else:
                shutil.rmtree(folder, ignore_errors=True)  # a session that never saved anything
        finally:
            lock.release()
    for aside in damaged:
        if aside.moved:  # the lock file came along; it locks nothing there
            (aside.folder / LOCK_NAME).unlink(missing_ok=True)
    return sorted(found, key=lambda d: d.saved_at, reverse=True), damaged


def _set_aside(folder: Path, into: Path) -> DamagedAutosave:
    """Move an unreadable autosave into ``into`` (its lock still held: no other Studio starting takes it meanwhile)."""
    try:
        into.mkdir(parents=True, exist_ok=True)
        dest = next(p for n in range(1000) if not (p := into / f"damaged-{folder.name}{f'-{n}' if n else ''}").exists())
        shutil.move(folder, dest)
    except (OSError, StopIteration) as exc:
        log.warning("Could not move the unreadable autosave %s into %s: %s", folder, into, exc)
        return DamagedAutosave(folder, moved=False)
    return DamagedAutosave(dest, moved=True)


def kept_at_close(saved: SavedDocument) -> bool:
    """Whether this autosave was kept by a person closing Studio (else Studio stopped without closing)."""
    return (saved.folder / KEPT_NAME).exists()


def discard(saved: SavedDocument) -> None:
    shutil.rmtree(saved.folder, ignore_errors=True)


def keep_as_pictures(found: list[SavedDocument], folder: Path) -> list[Path]:
    """Write each autosaved document into ``folder`` as a PNG (its recipe embedded, its mask beside it as
    ``-mask.png``), then let its autosave go; returns the pictures written. One that cannot be written keeps its
    autosave, to be found again at the next start."""
    written = []
    for saved in found:
        stem = "recovered-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(saved.saved_at))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = next(p for n in range(1000) if not (p := folder / f"{stem}{f'-{n}' if n else ''}.png").exists())
            save_image(saved.image, path, saved.recipe)
            if saved.mask.any():
                save_image(mask_to_image(saved.mask), path.with_name(f"{path.stem}-mask.png"))
        except (OSError, StudioError, StopIteration) as exc:
            log.warning("Kept the autosave %s: it could not be written into %s (%s)", saved.folder, folder, exc)
            continue
        written.append(path)
        discard(saved)
    return written
