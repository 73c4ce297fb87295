"""Talking to the Hugging Face hub: which address, the model_index.json listing, and its failures as sentences."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from studio.core.errors import InvalidRequest, JobCancelledError, ModelError, StudioError
from studio.services.hub_files import MODEL_INDEX

DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT = 20.0
LIBRARY = "studio"


class HubUnavailable(ModelError):
    """The hub cannot be used (unreachable, or hub downloads switched off). Its sentence names no way of importing a
    file the person already has: the command line and the window each add their own (a command, a button)."""


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


def model_listing(repo_id: str, revision: str | None, endpoint: str, token: str | None
                  ) -> tuple[str, list[tuple[str, int]]]:
    """The commit sha the repo was listed at and its files with their sizes. An address that answers with something
    else (a login portal's HTML page, another service's JSON) is a ModelError saying so: it was a JSONDecodeError's
    or a TypeError's traceback."""
    api = HfApi(endpoint=endpoint, token=token, library_name=LIBRARY)
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=TIMEOUT)
        listing = [(s.rfilename, s.size or 0) for s in info.siblings or ()]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # no JSON, or JSON of another shape
        raise _not_a_hub(repo_id, endpoint) from exc
    if not all(isinstance(path, str) and isinstance(size, int) and size >= 0 for path, size in listing) \
            or not isinstance(info.sha, str | None):
        raise _not_a_hub(repo_id, endpoint)
    if not info.sha:
        raise ModelError(f"The hub did not say which commit of {repo_id} it listed, so Studio cannot pin it.")
    return info.sha, listing


def _not_a_hub(repo_id: str, endpoint: str) -> ModelError:
    return ModelError(f"The address {endpoint} did not answer like a Hugging Face model hub when asked for "
                      f"{repo_id} (a login page, or a mistyped mirror?); check the address, or sign in to the "
                      "network in a browser first.")


def model_index_components(repo_id: str, sha: str, endpoint: str, token: str | None) -> set[str]:
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


@contextmanager
def hub_errors(repo_id: str, endpoint: str, path: str | None = None, *, revision: str | None = None
               ) -> Iterator[None]:
    """huggingface_hub and HTTP failures as one sentence each; a cut partial file stays for the next call.
    ``revision``: the one asked for, which a mirror's bare 404 may be about as well as the repo."""
    what = f"{repo_id}/{path}" if path else repo_id
    no_repo = f"The hub has no model repository {repo_id} (or it is private or gated; log in with a token)."
    # A bare 404 (no X-Error-Code) cannot tell a missing repo from a missing revision: it said the repo was missing.
    unknown = no_repo if revision is None else \
        f"The hub has no model repository {repo_id}, or no revision {revision} in it (or it is private or gated; " \
        "log in with a token)."
    try:
        yield
    except (StudioError, JobCancelledError):
        raise
    except OfflineModeIsEnabled as exc:
        raise HubUnavailable(f"Hub downloads are switched off (HF_HUB_OFFLINE is set), so Studio cannot fetch "
                             f"{repo_id}; unset it to download.") from exc
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
            raise ModelError(unknown if path is None else
                             f"The model hub at {endpoint} has no {what} (HTTP 404); check the mirror, or plan the "
                             "download again.") from exc
        if status in (401, 403):
            raise ModelError(f"The model hub at {endpoint} refused access to {what} (HTTP {status}); it may be "
                             "private or gated: log in with a token that has access.") from exc
        raise ModelError(f"The model hub at {endpoint} answered HTTP {status} for {what}; try again later.") from exc
    except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.UnsupportedProtocol) as exc:
        if path is None:
            raise HubUnavailable(f"Could not reach the model hub at {endpoint}; Studio may be offline.") from exc
        raise _broke(what, exc) from exc  # it answered the listing: the hub went away mid-download
    except (httpx2.HTTPError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise ModelError(f"Could not write {what} into the models folder: {exc.strerror}.") from exc
        raise _broke(what, exc) from exc


def _broke(what: str, exc: Exception) -> ModelError:
    """What came is kept: the next call resumes it."""
    reason = re.sub(r"^\[Errno -?\d+\] ", "", (str(exc).splitlines() or [""])[0]).rstrip(".") or type(exc).__name__
    return ModelError(f"The connection to the model hub broke while fetching {what} ({reason}), so the download "
                      "stopped; run the download again to resume where it stopped.")


def quiet_hub_log() -> None:
    """huggingface_hub's own log lines ("Trying to resume download...", five times over, when a connection drops)
    go to Studio's log file only (its logger propagates there), not to the terminal, where Studio says what
    happened in a sentence."""
    hub_log = logging.getLogger("huggingface_hub")
    for handler in list(hub_log.handlers):
        if type(handler) is logging.StreamHandler:  # the library's own, on stderr
            hub_log.removeHandler(handler)
