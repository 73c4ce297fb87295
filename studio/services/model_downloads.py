"""Download models from the Hugging Face hub into the models folder: pick the files, check space, resume.

Bytes travel through huggingface_hub's own HTTP code (``get_hf_file_metadata`` + ``http_get`` with
``resume_size``), not ``hf_hub_download``: since huggingface_hub 1.x that writes to a per-process temp file
and deletes it on any failure, so a cancelled or cut 5 GB download would start again from zero. Here the
partial file stays under ``<target>/.cache/studio-download/`` and the next call resumes it with an HTTP
Range request. Xet transfers are never used: plain HTTP works against any endpoint (mirrors, the test
server) and is what gives Range resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, cast
from urllib.parse import urlsplit

import httpx2
from filelock import FileLock, Timeout
from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from studio.core.annotators import HUB_FOLDERS
from studio.core.errors import (
    InvalidRequest,
    JobCancelledError,
    ModelError,
    StudioError,
    os_reason,
)
from studio.core.model_library import KIND_FOLDERS, SOURCE_FILE, read_source
from studio.services.hub_files import MODEL_INDEX, select_files, unsafe_path, weight_key
from studio.services.model_imports import file_download

DEFAULT_ENDPOINT = "https://huggingface.co"
WORK_DIR = ".cache/studio-download"  # partial files + state.json (finished files); removed once all are in
STAGING = ".downloads"  # in the models folder, out of the library's sight: downloads until they are filed by kind
DISK_MARGIN = 512 * 1024**2  # left free for the OS and Studio's own outputs
TIMEOUT = 20.0
# huggingface_hub hands over 10 MB at a time: progress and Cancel waited ~15 s between chunks on a slow line.
CHUNK_BYTES = 1024**2
LIBRARY = "studio"
_PART = r"[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


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


@dataclass(frozen=True)
class DownloadProgress:
    repo_id: str
    file: str
    file_done: int
    file_total: int
    done_bytes: int
    total_bytes: int
    files_done: int
    files_total: int


def hub_endpoint(endpoint: str | None = None) -> str:
    """The argument, else ``HF_ENDPOINT``, else huggingface.co; InvalidRequest where it is not an http(s) URL (it was
    tried as one, and "notaurl" was said to be a hub Studio could not reach, as if offline)."""
    given = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip()
    try:
        parts = urlsplit(given)
        web = parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed [IPv6 address, a port that is no number
        web = False
    if not web:
        where = "" if endpoint else " (from HF_ENDPOINT)"
        raise InvalidRequest(f"The hub address {given!r}{where} is not a web address: give one that starts with "
                             f"http:// or https:// and names a host, such as {DEFAULT_ENDPOINT}.")
    return given.rstrip("/")


def plan_download(repo_id: str, models_dir: Path, *, revision: str | None = None, endpoint: str | None = None,
                  token: str | None = None) -> DownloadPlan:
    """List the repo at ``revision`` (default: main), choose the files Studio needs and where they go.

    ``token`` None uses the one huggingface_hub finds (``HF_TOKEN`` or ``hf auth login``)."""
    repo_id, endpoint = repo_id.strip(), hub_endpoint(endpoint)
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise InvalidRequest(f"{repo_id!r} is not a hub model id; use the owner/name form, "
                             "for example stabilityai/sd-turbo.")
    with _hub_errors(repo_id, endpoint):
        api = HfApi(endpoint=endpoint, token=token, library_name=LIBRARY)
        info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=TIMEOUT)
        listing = [(s.rfilename, s.size or 0) for s in info.siblings or ()]
        if bad := next((path for path, _ in listing if unsafe_path(path)), None):
            raise ModelError(f"The hub repository {repo_id} lists an unsafe file path {bad!r}, so Studio "
                             "refused to download it.")
        if not info.sha:
            raise ModelError(f"The hub did not say which commit of {repo_id} it listed, so Studio cannot pin it.")
        has_index = any(path == MODEL_INDEX for path, _ in listing)
        components = _components(repo_id, info.sha, endpoint, token) if has_index else None
    files = tuple(select_files(repo_id, listing, components))
    target, filed = _target_folder(Path(models_dir), repo_id)
    already = _on_disk(target, repo_id, info.sha, files)[0]
    return DownloadPlan(repo_id, info.sha, files, sum(size for _, size in files), target, already,
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
    _remove_empty(plan.target.parent, plan.file_into)  # .downloads/owner--name, and .downloads when it is empty
    if note and notes is not None:
        notes.append(note)
    return place


def _download(plan: DownloadPlan, progress: Callable[[DownloadProgress], None] | None,
              cancelled: Callable[[], bool] | None, endpoint: str | None, token: str | None) -> Path:
    endpoint, target, work = hub_endpoint(endpoint), plan.target, plan.target / WORK_DIR
    dests = {path: _destination(target, path) for path, _ in plan.files}
    already, finished = _on_disk(target, plan.repo_id, plan.revision, plan.files)
    _check_disk_space(plan, plan.total_bytes - already)
    work.mkdir(parents=True, exist_ok=True)
    state = {"repo_id": plan.repo_id, "revision": plan.revision, "finished": sorted(finished)}
    try:
        with FileLock(str(work / "lock"), timeout=0), _tidied_if_nothing_came(plan, work):
            _write_json(work / "state.json", state)  # marks the folder as this repo's before any byte lands
            if (read_source(target) or {}).get("revision") not in (None, plan.revision):
                (target / SOURCE_FILE).unlink()  # an update in progress: no longer the finished old revision
            tracker = _Tracker(plan, progress, cancelled)
            for path, size in plan.files:
                tracker.start(path, size)
                if path not in finished:
                    with _hub_errors(plan.repo_id, endpoint, path):
                        _fetch(plan, path, dests[path], work, endpoint, token, tracker)
                    finished.add(path)
                    _write_json(work / "state.json", {**state, "finished": sorted(finished)})
                tracker.finish(size)
    except Timeout:
        raise InvalidRequest(f"Another download into {target} is already running; wait for it to finish.") from None
    _write_json(target / SOURCE_FILE, {
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
        state = _read_json(work / "state.json") or {}
        if not state.get("finished") and not any(p.stat().st_size for p in work.glob("*.incomplete")):
            shutil.rmtree(work, ignore_errors=True)
            _remove_empty(work.parent, plan.file_into or plan.target.parent)
        raise


def _remove_empty(folder: Path, stop: Path) -> None:
    """``folder`` and the folders above it up to ``stop`` (not included), each while it is empty."""
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): what is above it holds something too
            return
        folder = folder.parent


class _Tracker:
    """huggingface_hub's progress bar (its ``tqdm_class`` hook, updated per chunk) turned into
    DownloadProgress events; cancel is polled on every chunk."""

    def __init__(self, plan: DownloadPlan, report: Callable[[DownloadProgress], None] | None,
                 cancelled: Callable[[], bool] | None) -> None:
        self.plan, self.report, self.cancelled = plan, report, cancelled or (lambda: False)
        self.before = self.files_done = 0  # bytes and count of the files already finished
        self.file, self.file_total, self.file_done = "", 0, 0

    def start(self, path: str, size: int) -> None:
        self._check_cancelled()
        self.file, self.file_total, self.file_done = path, size, 0

    def bar(self, *, initial: int = 0, **_: Any) -> _Tracker:  # what http_get calls as ``tqdm_class(...)``
        self.file_done = initial
        self._emit()
        return self

    def update(self, n: float = 1) -> None:
        self._check_cancelled()  # raised before http_get writes the chunk: the partial file ends on a whole chunk
        self.file_done += int(n)
        self._emit()

    def finish(self, size: int) -> None:
        self.before, self.files_done, self.file_done = self.before + size, self.files_done + 1, 0
        self._emit(file_done=size)

    def _emit(self, file_done: int | None = None) -> None:
        if self.report is not None:
            done = self.file_done if file_done is None else file_done
            self.report(DownloadProgress(self.plan.repo_id, self.file, done, self.file_total,
                                         self.before + self.file_done, self.plan.total_bytes,
                                         self.files_done, len(self.plan.files)))

    def _check_cancelled(self) -> None:
        if self.cancelled():
            raise JobCancelledError(f"The download of {self.plan.repo_id} was cancelled; run it again to resume.")

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _fetch(plan: DownloadPlan, path: str, dest: Path, work: Path, endpoint: str, token: str | None,
           tracker: _Tracker) -> None:
    url = hf_hub_url(plan.repo_id, path, revision=plan.revision, endpoint=endpoint)
    meta = get_hf_file_metadata(url, token=token, timeout=TIMEOUT, library_name=LIBRARY, endpoint=endpoint)
    size = meta.size if meta.size is not None else dict(plan.files)[path]
    headers = build_hf_headers(token=token, library_name=LIBRARY)
    headers["Accept-Encoding"] = "identity"  # byte offsets must be file offsets for Range resume
    if _origin(meta.location) != _origin(url):
        headers.pop("authorization", None)  # a signed CDN url: the token stays on the hub
    partial = _partial(work, plan.revision, path)
    if partial.exists() and partial.stat().st_size > size:
        partial.unlink()
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_BYTES)  # read by http_get per call
    with partial.open("ab") as out:  # append: resume after what an earlier call left
        http_get(meta.location, out, resume_size=out.tell(), headers=headers, expected_size=size,
                 displayed_filename=path, tqdm_class=cast(Any, tracker.bar))
    etag = (meta.etag or "").lower()
    if _SHA256.match(etag) and _sha256(partial) != etag:  # LFS files: the etag is the content's sha256
        partial.unlink()
        raise ModelError(f"{path} from {plan.repo_id} did not match the hub's checksum, so Studio deleted it; "
                         "run the download again.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, dest)


def _components(repo_id: str, sha: str, endpoint: str, token: str | None) -> set[str]:
    """The folders a diffusers ``model_index.json`` names: what the pipeline loads."""
    url = hf_hub_url(repo_id, MODEL_INDEX, revision=sha, endpoint=endpoint)
    response = get_session().get(url, headers=build_hf_headers(token=token, library_name=LIBRARY), timeout=TIMEOUT)
    hf_raise_for_status(response)
    try:
        index = response.json()
    except ValueError:
        index = None
    if not isinstance(index, dict):
        raise ModelError(f"The model_index.json of {repo_id} is not valid JSON, so Studio cannot tell its parts.")
    return {key for key, value in index.items()
            if not key.startswith("_") and isinstance(value, list) and value and value[0] is not None}


def _target_folder(models_dir: Path, repo_id: str) -> tuple[Path, bool]:
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
    return [str(data.get("repo_id")) for data in (read_source(folder), _read_json(folder / WORK_DIR / "state.json"))
            if data]


def _inside(folder: Path, root: Path) -> Path:
    if not folder.resolve().is_relative_to(root) or folder.resolve() == root:
        raise InvalidRequest(f"{folder} points outside the models folder {root}; Studio will not download into it.")
    return folder


def _destination(target: Path, path: str) -> Path:
    try:
        root, dest = target.resolve(), (target / path).resolve()  # resolve(): a symlinked sub-folder can't lead out
    except (RuntimeError, OSError):  # RuntimeError: a symlink loop
        raise ModelError(f"The file path {path!r} in {target} goes through a symbolic link that leads back to "
                         "itself (a link loop); fix or delete that link and download again.") from None
    if unsafe_path(path) or not dest.is_relative_to(root) or dest == root:
        raise ModelError(f"The file path {path!r} would land outside {target}, so Studio refused to download it.")
    return dest


def _on_disk(target: Path, repo_id: str, revision: str, files: Sequence[tuple[str, int]]) -> tuple[int, set[str]]:
    """Bytes already there (finished files + partial ones) and the finished files, for this revision."""
    listed: set[str] = set()
    for data in (read_source(target), _read_json(target / WORK_DIR / "state.json")):
        if data and data.get("repo_id") == repo_id and data.get("revision") == revision:
            listed.update(p for p in data.get("files", data.get("finished", [])) if isinstance(p, str))
    done, finished = 0, set()
    for path, size in files:
        dest = target / path
        partial = _partial(target / WORK_DIR, revision, path)
        if path in listed and dest.is_file() and dest.stat().st_size == size:
            done += size
            finished.add(path)
        elif partial.is_file():
            done += min(partial.stat().st_size, size)
    return done, finished


def _check_disk_space(plan: DownloadPlan, needed: int) -> None:
    folder = plan.target
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if needed > 0 and free < needed + DISK_MARGIN:
        raise InvalidRequest(f"{plan.repo_id} needs about {needed / 1e9:.1f} GB more in {plan.target}, but only "
                             f"{free / 1e9:.1f} GB is free there; make room or choose another models folder.")


@contextmanager
def _hub_errors(repo_id: str, endpoint: str, path: str | None = None) -> Iterator[None]:
    """huggingface_hub and HTTP failures as one sentence each; a cut partial file stays for the next call."""
    what = f"{repo_id}/{path}" if path else repo_id
    no_repo = f"The hub has no model repository {repo_id} (or it is private or gated; log in with a token)."
    try:
        yield
    except (StudioError, JobCancelledError):
        raise
    except OfflineModeIsEnabled as exc:
        raise ModelError(f"Hub downloads are switched off (HF_HUB_OFFLINE is set), so Studio cannot fetch {repo_id}; "
                         "unset it, or import a file you have with `studio models import PATH`.") from exc
    except GatedRepoError as exc:
        raise ModelError(f"{repo_id} is gated on the hub; accept its terms on its page, then log in with a token "
                         "that has access.") from exc
    except RevisionNotFoundError as exc:
        raise ModelError(f"The hub repository {repo_id} has no such revision.") from exc
    except RepositoryNotFoundError as exc:
        raise ModelError(no_repo) from exc
    except EntryNotFoundError as exc:
        raise ModelError(f"The hub no longer has {what}; plan the download again.") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        # A mirror or proxy answers without the hub's error code: say what was asked for and what it answered.
        if status == 404:
            raise ModelError(no_repo if path is None else
                             f"The model hub at {endpoint} has no {what} (HTTP 404); check the mirror, or plan the "
                             "download again.") from exc
        if status in (401, 403):
            raise ModelError(f"The model hub at {endpoint} refused access to {what} (HTTP {status}); it may be "
                             "private or gated: log in with a token that has access.") from exc
        raise ModelError(f"The model hub at {endpoint} answered HTTP {status} for {what}; try again later.") from exc
    except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.UnsupportedProtocol) as exc:
        raise ModelError(f"Could not reach the model hub at {endpoint}; Studio may be offline. Import a file you "
                         "already have with `studio models import PATH`.") from exc
    except (httpx2.HTTPError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise ModelError(f"Could not write {what} into the models folder: {exc.strerror}.") from exc
        reason = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(".")
        raise ModelError(f"The connection to the model hub broke while fetching {what} ({reason}); run the "
                         "download again to resume where it stopped.") from exc


def _partial(work: Path, revision: str, path: str) -> Path:
    return work / f"{hashlib.sha1(f'{revision}/{path}'.encode()).hexdigest()[:24]}.incomplete"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")  # temp file + rename: a crash never leaves half a file
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)
