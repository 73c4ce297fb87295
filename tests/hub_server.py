"""A fake Hugging Face hub on 127.0.0.1 for download tests: the endpoints huggingface_hub 1.x/2.x calls.

- ``GET /api/models/{repo}[/revision/{rev}][?blobs=true]``: id, sha, siblings (sizes, blob ids, LFS info).
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (sha256 for LFS files, the git
  blob id for others), ``Content-Length``; ``Range: bytes=N-`` answers 206 with ``Content-Range``.
- With ``cdn_host`` set, LFS files answer 302 to ``http://{cdn_host}:{port}/cdn/...`` (another origin, like
  the hub's CDN) carrying ``X-Linked-Etag``/``X-Linked-Size``, the way the real hub does.

Errors carry the hub's ``X-Error-Code`` header (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) so
huggingface_hub raises the same exception classes as against the real hub.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit


@contextmanager
def isolated_hub_client(home: Path, monkeypatch: Any) -> Iterator[None]:
    """huggingface_hub with no real home, token or endpoint, 4 KB chunks, and no proxy for 127.0.0.1."""
    from huggingface_hub import close_session, constants

    monkeypatch.setenv("HF_HOME", str(home))
    for name, value in {"HF_HOME": home, "HF_HUB_CACHE": home / "hub", "HF_ASSETS_CACHE": home / "assets",
                        "HF_TOKEN_PATH": home / "token", "HF_STORED_TOKENS_PATH": home / "stored_tokens"}.items():
        monkeypatch.setattr(constants, name, str(value))
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    close_session()  # the shared httpx client re-reads the proxy settings
    try:
        yield
    finally:
        close_session()


LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx")


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    sha: str = "a" * 40
    gated: bool = False  # listing works, file requests answer 403 GatedRepo (as the hub does without access)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # unquoted URL path, without the query
    range: str | None
    authorized: bool


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo]
    cdn_host: str | None = None
    chunk: int = 64 * 1024  # bytes per write when streaming a file
    delay: float = 0.0  # seconds between chunks (to test cancel mid-file)
    cut_after: dict[str, int] = field(default_factory=dict)  # repo path -> body bytes before the first GET is reset
    cut_with_reset: bool = True  # False: the cut connection is closed as by a server that died (FIN, not RST)
    requests: list[Seen] = field(default_factory=list)
    bare_errors: bool = False  # answer errors without X-Error-Code, as a plain mirror or proxy does
    odd_listing: tuple[str, bytes] | None = None  # (content type, body) answered 200 to every listing: not a hub

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the hub first (use it as a context manager)"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def file_gets(self, path: str | None = None) -> list[Seen]:
        """GET requests for file contents (resolve or CDN), optionally for one repo path."""
        return [r for r in self.requests if r.method == "GET" and ("/resolve/" in r.path or r.path.startswith("/cdn/"))
                and (path is None or r.path.endswith("/" + path))]

    def take_cut(self, path: str) -> int | None:
        with self._lock:
            return self.cut_after.pop(path, None)


def lfs_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._route(body=False)

    def do_GET(self) -> None:
        self._route(body=True)

    def _route(self, body: bool) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        self.hub.record(Seen(self.command, path, self.headers.get("Range"), "authorization" in self.headers))
        try:
            if path.startswith("/api/models/"):
                self._model_info(path[len("/api/models/"):], parse_qs(url.query))
            elif path.startswith("/cdn/"):
                repo_id, _, rest = path[len("/cdn/"):].partition("@")
                self._file(repo_id, self.hub.repos[repo_id], rest, body, cdn=True)
            elif "/resolve/" in path:
                repo_id, _, rest = path.strip("/").partition("/resolve/")
                revision, _, file_path = rest.partition("/")
                repo = self._repo(repo_id, revision)
                if repo is not None:
                    self._file(repo_id, repo, file_path, body, cdn=False)
            else:
                self._error(404, "NotFound")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (cancelled): nothing to answer

    def _repo(self, repo_id: str, revision: str) -> FakeRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound")
        elif revision not in ("main", repo.sha):
            self._error(404, "RevisionNotFound")
        else:
            return repo
        return None

    def _model_info(self, rest: str, query: dict[str, list[str]]) -> None:
        if self.hub.odd_listing is not None:  # a login portal's page, another service's JSON
            return self._send(200, *self.hub.odd_listing)
        repo_id, _, revision = rest.partition("/revision/")
        repo = self._repo(repo_id, revision or "main")
        if repo is None:
            return
        blobs = query.get("blobs") == ["true"] or query.get("blobs") == ["True"]
        siblings = []
        for name, data in sorted(repo.files.items()):
            entry: dict[str, Any] = {"rfilename": name}
            if blobs:
                entry.update(size=len(data), blobId=git_blob_id(data))
                if name.endswith(LFS_SUFFIXES):
                    entry["lfs"] = {"size": len(data), "sha256": lfs_sha(data), "pointerSize": 134}
            siblings.append(entry)
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": False,
                         "gated": "manual" if repo.gated else False, "siblings": siblings})

    def _file(self, repo_id: str, repo: FakeRepo, file_path: str, body: bool, cdn: bool) -> None:
        if repo.gated:
            return self._error(403, "GatedRepo")
        data = repo.files.get(file_path)
        if data is None:
            return self._error(404, "EntryNotFound")
        lfs = file_path.endswith(LFS_SUFFIXES)
        etag = lfs_sha(data) if lfs else git_blob_id(data)
        if lfs and not cdn and self.hub.cdn_host:
            port = self.server.server_address[1]
            self.send_response(302)
            self.send_header("Location", f"http://{self.hub.cdn_host}:{port}/cdn/{repo_id}@{file_path}")
            self.send_header("X-Repo-Commit", repo.sha)
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("ETag", f'"{git_blob_id(data)}"')  # the pointer file's, as on the hub
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        start = _range_start(self.headers.get("Range"))
        if start is not None and start >= len(data) > 0:
            return self._error(416, "RangeNotSatisfiable")
        self.send_response(200 if start is None else 206)
        if start is not None:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        start = start or 0
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("ETag", f'"{etag}"')
        self.end_headers()
        if body:
            self._stream(data[start:], None if start else self.hub.take_cut(file_path))
        return None

    def _stream(self, data: bytes, cut: int | None) -> None:
        limit = len(data) if cut is None else min(cut, len(data))
        for offset in range(0, limit, self.hub.chunk):
            self.wfile.write(data[offset:min(offset + self.hub.chunk, limit)])
            self.wfile.flush()
            if self.hub.delay:
                time.sleep(self.hub.delay)
        if cut is not None:
            # Let the client read what was sent, then reset the connection (RST, as a dropped network does).
            time.sleep(0.2)
            if self.hub.cut_with_reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

    def _error(self, status: int, code: str) -> None:
        body = json.dumps({"error": code}).encode()
        self.send_response(status)
        if not self.hub.bare_errors:
            self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(payload).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _range_start(header: str | None) -> int | None:
    if not header or not header.startswith("bytes="):
        return None
    first = header[len("bytes="):].split(",")[0]
    start, _, _ = first.partition("-")
    return int(start) if start.strip() else None
