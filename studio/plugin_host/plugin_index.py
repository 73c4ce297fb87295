"""Plugin indexes: a JSON list of ``{name, version, summary, url, sha256}`` at a URL or a file path.

``name`` is the plugin id. A relative ``url`` is read relative to the index. Downloads are streamed,
hashed while they arrive, capped in size, and deleted unless their sha256 matches the index.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from studio.core.errors import StudioError
from studio.core.plugin_manifest import ManifestError, check_plugin_id
from studio.core.temp_files import NAME_MAX, temp_file_beside
from studio.plugin_host.archives import TAR_SUFFIXES, ZIP_SUFFIXES

log = logging.getLogger(__name__)
MAX_INDEX_BYTES = 8 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
CHUNK = 1024 * 1024
SCHEMES = ("http", "https", "file")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._+-]")


class PluginIndexError(StudioError):
    """An index that cannot be read, or a download that does not match it."""


class _BadEntry(Exception):
    """Why one index entry was skipped (a clause, not a sentence)."""


@dataclass(frozen=True)
class IndexEntry:
    name: str  # the plugin id
    version: str
    summary: str
    url: str  # absolute: relative entries are resolved against the index when it is read
    sha256: str  # lowercase hex

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)


def _entry(row: Any, base: str) -> IndexEntry:
    """One checked entry; _BadEntry says what is wrong with it."""
    if not isinstance(row, dict):
        raise _BadEntry("it is not a JSON object")
    for key in ("name", "version", "url", "sha256"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise _BadEntry(f"its {key!r} is missing or not text")
    summary = row.get("summary", "")
    if not isinstance(summary, str):
        raise _BadEntry("its 'summary' is not text")
    try:
        check_plugin_id(row["name"])
        Version(row["version"])
    except ManifestError as exc:
        raise _BadEntry(str(exc).rstrip(".")) from None
    except InvalidVersion:
        raise _BadEntry(f"its version {row['version']!r} is not a version number") from None
    if not _SHA256.match(row["sha256"]):
        raise _BadEntry("its sha256 is not 64 hexadecimal digits")
    url = urllib.parse.urljoin(base, row["url"].strip())
    scheme = urllib.parse.urlsplit(url).scheme
    # A file on this computer only from an index on this computer: a web index may not point at local files.
    if scheme not in SCHEMES or (scheme == "file" and urllib.parse.urlsplit(base).scheme != "file"):
        raise _BadEntry(f"its url {row['url']!r} is not an http(s) address or a file")
    return IndexEntry(row["name"], row["version"], summary.strip()[:500], url, row["sha256"].lower())


def _as_url(location: str) -> str:
    """http(s) and file URLs as given; anything else is a local path."""
    if urllib.parse.urlsplit(location).scheme in SCHEMES:
        return location
    return Path(location).expanduser().resolve().as_uri()


def _open(url: str, timeout: float, what: str) -> Any:
    """urlopen with every failure turned into a sentence naming what and why."""
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "Studio"}),
                                      timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise PluginIndexError(f"{what} {url} could not be read: the server answered HTTP {exc.code} "
                          f"({exc.reason}).") from None
    except urllib.error.URLError as exc:
        reason = exc.reason.strerror if isinstance(exc.reason, OSError) and exc.reason.strerror else exc.reason
        raise PluginIndexError(f"{what} {url} could not be reached: {reason}.") from None
    except (TimeoutError, OSError) as exc:
        raise PluginIndexError(f"{what} {url} could not be reached: {exc.strerror or exc or 'timed out'}.") from None
    except ValueError as exc:  # a malformed address
        raise PluginIndexError(f"{what} {url} is not a valid address: {exc}.") from None


@dataclass(frozen=True)
class PluginIndex:
    entries: list[IndexEntry]
    skipped: list[str]  # a sentence for each entry that could not be read: which one, and why


def fetch_index(url: str, timeout: float = 10) -> list[IndexEntry]:
    """The index's readable entries (read_index also says which were skipped)."""
    return read_index(url, timeout).entries


def read_index(url: str, timeout: float = 10) -> PluginIndex:
    """The index's entries, and a sentence for each bad one, which is skipped: one broken entry in a community
    index should not hide every other plugin, and a skipped entry can never be installed. Those sentences are
    for the person too: an update check that skipped one cannot say that every plugin is up to date."""
    address = _as_url(url)
    with _open(address, timeout, "The plugin index") as response:
        try:
            data = response.read(MAX_INDEX_BYTES + 1)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise PluginIndexError(f"The plugin index {url} could not be read: {exc or 'timed out'}.") from None
    if len(data) > MAX_INDEX_BYTES:
        raise PluginIndexError(f"The plugin index {url} is larger than {MAX_INDEX_BYTES // CHUNK} MiB; it was refused.")
    try:
        rows = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PluginIndexError(f"The plugin index {url} is not JSON ({exc}).") from None
    if not isinstance(rows, list):
        raise PluginIndexError(f"The plugin index {url} is not a JSON list of plugins.")
    entries, skipped = [], []
    for number, row in enumerate(rows, start=1):
        try:
            entries.append(_entry(row, address))
        except _BadEntry as exc:
            name = row.get("name") if isinstance(row, dict) else None
            which = f"entry {number} ({name[:80]!r})" if isinstance(name, str) and name.strip() else f"entry {number}"
            skipped.append(f"The plugin index {url}: {which} was skipped because {exc}.")
            log.warning("%s", skipped[-1])
    return PluginIndex(entries, skipped)


def _mib(n: int) -> str:
    return f"{n / CHUNK:.3g} MiB" if n >= CHUNK else f"{n} bytes"


def file_name_for(entry: IndexEntry) -> str:
    """A safe local file name from the last part of the entry's URL, keeping the archive suffix."""
    last = urllib.parse.unquote(urllib.parse.urlsplit(entry.url).path.rsplit("/", 1)[-1])
    name = _UNSAFE_CHARS.sub("_", last).lstrip(".")  # ASCII only from here: a character is a byte
    if len(name) > NAME_MAX:  # cut short, a wheel's name no longer parses (nor says it is a wheel)
        raise PluginIndexError(f"The plugin index entry {entry.name} {entry.version} points at a file whose name is "
                               f"{len(name)} characters long, more than the {NAME_MAX} a file name can have; "
                               "nothing was installed.")
    if not name.lower().endswith(ZIP_SUFFIXES + TAR_SUFFIXES):
        raise PluginIndexError(f"The plugin index entry {entry.name} {entry.version} points at {entry.url}, which is "
                          "not a wheel, .zip or .tar.gz file; nothing was installed.")
    return name


def download(entry: IndexEntry, dest_dir: Path, max_bytes: int = MAX_DOWNLOAD_BYTES, timeout: float = 30) -> Path:
    """The entry's file, downloaded into dest_dir and checked against the index's sha256."""
    path = dest_dir / file_name_for(entry)
    fd, temp = temp_file_beside(path)
    os.close(fd)
    part = Path(temp)
    digest = hashlib.sha256()
    size = 0
    try:
        with _open(entry.url, timeout, f"The plugin {entry.name} at") as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            if length and length.isdigit() and int(length) > max_bytes:
                raise PluginIndexError(f"The plugin {entry.name} at {entry.url} is {_mib(int(length))}, more than the "
                                       f"{_mib(max_bytes)} Studio accepts; nothing was installed.")
            for chunk in iter(lambda: response.read(CHUNK), b""):
                size += len(chunk)
                if size > max_bytes:  # headers can lie: count what actually arrives
                    raise PluginIndexError(f"The plugin {entry.name} at {entry.url} is larger than the "
                                           f"{_mib(max_bytes)} Studio accepts; nothing was installed.")
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != entry.sha256:
            raise PluginIndexError(f"The download of {entry.name} {entry.version} from {entry.url} does not match the "
                              f"index (sha256 {digest.hexdigest()}, expected {entry.sha256}); it was deleted and "
                              "nothing was installed.")
        os.replace(part, path)
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or exc or "timed out"
        raise PluginIndexError(f"The plugin {entry.name} could not be downloaded from {entry.url}: {reason}; "
                               "nothing was installed.") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return path


def updates(entries: Iterable[IndexEntry], installed: Mapping[str, str]) -> list[tuple[IndexEntry, str]]:
    """(newest entry, installed version) for each installed plugin that the index has a newer version of."""
    newest: dict[str, IndexEntry] = {}
    for entry in entries:
        if entry.name in installed and (entry.name not in newest
                                        or entry.parsed_version > newest[entry.name].parsed_version):
            newest[entry.name] = entry
    found = []
    for name, entry in sorted(newest.items()):
        try:
            current = Version(installed[name])
        except InvalidVersion:
            continue  # an installed version we cannot compare: never offer a "downgrade" by accident
        if entry.parsed_version > current:
            found.append((entry, installed[name]))
    return found
