"""One file's transfer from the hub: resumable, and checked against the hub's checksum.

Bytes travel through huggingface_hub's own HTTP code (``get_hf_file_metadata`` + ``http_get`` with
``resume_size``), not ``hf_hub_download``: since huggingface_hub 1.x that writes to a per-process temp file
and deletes it on any failure, so a cancelled or cut 5 GB download would start again from zero. Here the
partial file stays under ``<target>/.cache/studio-download/`` and the next call resumes it with an HTTP
Range request. Xet transfers are never used: plain HTTP works against any endpoint (mirrors, the test
server) and is what gives Range resume.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers

from studio.core.errors import ModelError
from studio.services.download_folders import partial_file
from studio.services.download_progress import DownloadTracker
from studio.services.hub_connection import LIBRARY, TIMEOUT

if TYPE_CHECKING:
    from studio.services.model_downloads import DownloadPlan

# huggingface_hub hands over 10 MB at a time: progress and Cancel waited ~15 s between chunks on a slow line.
CHUNK_BYTES = 1024**2
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def fetch_file(plan: DownloadPlan, path: str, dest: Path, work: Path, endpoint: str, token: str | None,
               tracker: DownloadTracker) -> None:
    """Fetch ``path`` of the plan's repo at its revision into ``dest``, resuming the partial file in ``work``; a file
    whose bytes do not match the hub's sha256 is deleted (a ModelError), so the next call fetches it anew."""
    url = hf_hub_url(plan.repo_id, path, revision=plan.revision, endpoint=endpoint)
    meta = get_hf_file_metadata(url, token=token, timeout=TIMEOUT, library_name=LIBRARY, endpoint=endpoint)
    size = meta.size if meta.size is not None else dict(plan.files)[path]
    headers = build_hf_headers(token=token, library_name=LIBRARY)
    headers["Accept-Encoding"] = "identity"  # byte offsets must be file offsets for Range resume
    if _origin(meta.location) != _origin(url):
        headers.pop("authorization", None)  # a signed CDN url: the token stays on the hub
    partial = partial_file(work, plan.revision, path)
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port
