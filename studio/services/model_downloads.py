"""Download models from the Hugging Face hub into the models folder: plan (list the repo, pick the files, see what
is there already), then fetch each file resumably and file the finished model by kind, as an import is.

The hub's address and failures: studio.services.hub_connection; one file's transfer: studio.services.hub_transfer;
the download's folders on disk: studio.services.download_folders; progress and Cancel:
studio.services.download_progress.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout
from studio.core.errors import InvalidRequest, ModelError, os_reason
from studio.core.model_library import SOURCE_FILE, read_source
from studio.core.units import format_size
from studio.services.download_folders import (
    WORK_DIR,
    file_destination,
    files_on_disk,
    read_json,
    remove_empty,
    target_folder,
    write_json,
)
from studio.services.download_progress import DownloadProgress, DownloadTracker
from studio.services.hub_connection import (
    hub_endpoint,
    hub_errors,
    model_index_components,
    model_listing,
    quiet_hub_log,
)
from studio.services.hub_files import MODEL_INDEX, select_files, unsafe_path, weight_key
from studio.services.hub_transfer import fetch_file
from studio.services.download_filing import file_download

DISK_MARGIN = 512 * 1024**2  # left free for the OS and Studio's own outputs
_PART = r"[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")


@dataclass(frozen=True)
class DownloadPlan:
    repo_id: str
    revision: str  # the commit sha the files were listed at; every file is fetched at exactly this commit
    files: tuple[tuple[str, int], ...]  # (path in the repo, size in bytes)
    total_bytes: int
    target: Path  # where the files are fetched to
    already_bytes: int  # on disk already, finished or partial
    file_into: Path | None = None  # the models folder to file the finished download into by kind; None: it stays

    @property
    def destination(self) -> Path:
        """Where the model goes, for a person: the models folder where it is filed by kind, else its folder."""
        return self.file_into or self.target


def plan_download(repo_id: str, models_dir: Path, *, revision: str | None = None, endpoint: str | None = None,
                  token: str | None = None) -> DownloadPlan:
    """List the repo at ``revision`` (default: main), choose the files Studio needs and where they go.

    ``token`` None uses the one huggingface_hub finds (``HF_TOKEN`` or ``hf auth login``)."""
    repo_id, endpoint = repo_id.strip(), hub_endpoint(endpoint)
    quiet_hub_log()
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise InvalidRequest(f"{repo_id!r} is not a hub model id; use the owner/name form, "
                             "for example stabilityai/sd-turbo.")
    with hub_errors(repo_id, endpoint, revision=revision):
        sha, listing = model_listing(repo_id, revision, endpoint, token)
        if bad := next((path for path, _ in listing if unsafe_path(path)), None):
            raise ModelError(f"The hub repository {repo_id} lists an unsafe file path {bad!r}, so Studio "
                             "refused to download it.")
        has_index = any(path == MODEL_INDEX for path, _ in listing)
        components = model_index_components(repo_id, sha, endpoint, token) if has_index else None
    files = tuple(select_files(repo_id, listing, components))
    target, filed = target_folder(Path(models_dir), repo_id)
    already = files_on_disk(target, repo_id, sha, files)[0]
    return DownloadPlan(repo_id, sha, files, sum(size for _, size in files), target, already,
                        Path(models_dir).expanduser().resolve() if filed else None)


def download_model(plan: DownloadPlan, *, progress: Callable[[DownloadProgress], None] | None = None,
                   cancelled: Callable[[], bool] | None = None, endpoint: str | None = None,
                   token: str | None = None, hash_cache: Path | None = None, notes: list[str] | None = None) -> Path:
    """Fetch the plan's files into ``plan.target``, resuming partial ones, and file the model by kind where the plan
    says so (as an import is: a LoRA into loras/, the same model not twice); returns where the model is. What the
    person should know of the filing (the same model was there already, the name taken) goes to ``notes``. A file
    that cannot be written (a full disk, a folder gone) is a ModelError: what is in stays, to resume from."""
    try:
        folder = _download(plan, progress, cancelled, endpoint, token)
        if plan.file_into is None:
            return folder
        place, note = file_download(folder, plan.file_into, plan.repo_id, hash_cache=hash_cache)
    except OSError as exc:
        raise ModelError(f"The download of {plan.repo_id} into {plan.target} stopped: "
                         f"{os_reason(exc)}. Fix that and run it again to resume.") from exc
    remove_empty(plan.target.parent, plan.file_into)  # .downloads/owner--name, and .downloads when it is empty
    if note and notes is not None:
        notes.append(note)
    return place


def _download(plan: DownloadPlan, progress: Callable[[DownloadProgress], None] | None,
              cancelled: Callable[[], bool] | None, endpoint: str | None, token: str | None) -> Path:
    endpoint, target, work = hub_endpoint(endpoint), plan.target, plan.target / WORK_DIR
    quiet_hub_log()
    dests = {path: file_destination(target, path) for path, _ in plan.files}
    already, finished = files_on_disk(target, plan.repo_id, plan.revision, plan.files)
    _check_disk_space(plan, plan.total_bytes - already)
    work.mkdir(parents=True, exist_ok=True)
    # total_bytes: what the Model Library and `studio models list` say of it should it stop half-way
    state = {"repo_id": plan.repo_id, "revision": plan.revision, "total_bytes": plan.total_bytes,
             "finished": sorted(finished)}
    try:
        with FileLock(str(work / "lock"), timeout=0), _tidied_if_nothing_came(plan, work):
            write_json(work / "state.json", state)  # marks the folder as this repo's before any byte lands
            if (read_source(target) or {}).get("revision") not in (None, plan.revision):
                (target / SOURCE_FILE).unlink()  # an update in progress: no longer the finished old revision
            tracker = DownloadTracker(plan, progress, cancelled)
            for path, size in plan.files:
                tracker.start(path, size)
                if path not in finished:
                    with hub_errors(plan.repo_id, endpoint, path):
                        fetch_file(plan, path, dests[path], work, endpoint, token, tracker)
                    finished.add(path)
                    write_json(work / "state.json", {**state, "finished": sorted(finished)})
                tracker.finish(size)
    except Timeout:
        raise InvalidRequest(f"Another download into {target} is already running; wait for it to finish.") from None
    write_json(target / SOURCE_FILE, {
        "source": "hub", "repo_id": plan.repo_id, "revision": plan.revision,
        "files": [path for path, _ in plan.files],
        "variant": "fp16" if any((weight_key(path) or ("", ""))[1] == "fp16" for path, _ in plan.files) else None,
        "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds")})
    shutil.rmtree(work, ignore_errors=True)
    with suppress(OSError):
        (target / ".cache").rmdir()  # only when nothing else keeps files there
    return target


@contextmanager
def _tidied_if_nothing_came(plan: DownloadPlan, work: Path) -> Iterator[None]:
    """A download that stops (a gated repo, a cancel) before a byte of it is kept leaves nothing behind: its empty
    folders went on listing as an empty models/gated/.cache/. What did come stays, to resume from."""
    try:
        yield
    except BaseException:
        state = read_json(work / "state.json") or {}
        if not state.get("finished") and not any(p.stat().st_size for p in work.glob("*.incomplete")):
            shutil.rmtree(work, ignore_errors=True)
            remove_empty(work.parent, plan.file_into or plan.target.parent)
        raise


def _check_disk_space(plan: DownloadPlan, needed: int) -> None:
    folder = plan.target
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if needed > 0 and free < needed + DISK_MARGIN:
        # Sizes as the rest of Studio writes them (15.3 MB was "0.0 GB"), and the reserve the check counts said.
        raise InvalidRequest(f"{plan.repo_id} needs {format_size(needed)} more in {plan.target}, and Studio keeps "
                             f"{format_size(DISK_MARGIN)} free for itself and the system; only {format_size(free)} "
                             "is free there. Make room or choose another models folder.")
