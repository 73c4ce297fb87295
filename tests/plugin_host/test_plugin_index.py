"""Plugin indexes: read over HTTP (a local server) or from a file, downloads checked by sha256."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from plugin_wheels import plugin_wheel

from studio.plugin_host.installer import PluginInstaller
from studio.plugin_host.plugin_index import (
    IndexEntry,
    PluginIndexError,
    download,
    fetch_index,
    read_index,
    updates,
)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A local web server on 127.0.0.1 serving an index, two plugin versions and some broken files."""
    root = tmp_path_factory.mktemp("site")
    good = plugin_wheel(root / "files")
    newer = plugin_wheel(root / "files" / "new", version="1.1.0")
    rows = [
        {"name": "test-plugin", "version": "1.0.0", "summary": "Flat colours.",
         "url": "files/" + good.name, "sha256": sha256(good)},
        {"name": "test-plugin", "version": "1.1.0", "summary": "Flat colours, newer.",
         "url": "files/new/" + newer.name, "sha256": sha256(newer)},
        {"name": "test-plugin", "version": "1.0.0", "summary": "Tampered.",
         "url": "files/" + good.name, "sha256": "0" * 64},
        {"name": "other-plugin", "version": "1.0.0", "summary": "Holds test-plugin.",
         "url": "files/" + good.name, "sha256": sha256(good)},
        {"name": "../evil", "version": "1.0", "url": "x.whl", "sha256": "0" * 64},
        {"name": "no-hash", "version": "1.0", "url": "x.whl"},
        {"name": "bad-url", "version": "1.0", "url": "ftp://example.com/x.whl", "sha256": "0" * 64},
        {"name": "local-file", "version": "1.0", "url": "file:///etc/x.whl", "sha256": "0" * 64},
        "not an object",
    ]
    (root / "index.json").write_text(json.dumps(rows))
    (root / "broken.json").write_text("<html>not json</html>")
    (root / "object.json").write_text('{"plugins": []}')
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


@pytest.fixture
def entries(site: tuple[str, Path]) -> list[IndexEntry]:
    return fetch_index(site[0] + "/index.json")


def test_an_index_is_read_and_bad_entries_are_skipped(site: tuple[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="studio.plugin_host.plugin_index"):
        found = fetch_index(site[0] + "/index.json")
    assert [(e.name, e.version) for e in found] == [("test-plugin", "1.0.0"), ("test-plugin", "1.1.0"),
                                                     ("test-plugin", "1.0.0"), ("other-plugin", "1.0.0")]
    assert found[0].url == f"{site[0]}/files/studio_test_plugin-1.0.0-py3-none-any.whl"  # relative to the index
    assert found[0].summary == "Flat colours."
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 5 and all("was skipped because" in m for m in skipped)
    assert any("not a plain name" in m for m in skipped) and any("'sha256'" in m for m in skipped)


def test_each_skipped_entry_is_said_in_a_sentence_naming_it_and_why(tmp_path: Path) -> None:
    index = tmp_path / "index.json"
    index.write_text(json.dumps([{"name": "fine", "version": "1.0", "url": "f.whl", "sha256": "a" * 64},
                                 {"name": "ink-plugin", "version": "2.0", "url": "i.whl", "sha256": "not-a-hash"},
                                 ["not", "an", "object"]]))
    listing = read_index(str(index))
    assert [e.name for e in listing.entries] == ["fine"]
    assert listing.skipped == [
        f"The plugin index {index}: entry 2 ('ink-plugin') was skipped because its sha256 is not 64 hexadecimal "
        "digits.",
        f"The plugin index {index}: entry 3 was skipped because it is not a JSON object."]


def test_an_index_file_on_disk_works_too(site: tuple[str, Path]) -> None:
    found = fetch_index(str(site[1] / "index.json"))
    assert found[0].url.startswith("file://")
    assert [e.name for e in found][-1] == "local-file"  # a file URL is fine from an index on this computer
    assert found[0].url.endswith("/files/studio_test_plugin-1.0.0-py3-none-any.whl")


def test_a_good_entry_downloads_verifies_and_installs(tmp_path: Path, entries: list[IndexEntry],
                                                      site: tuple[str, Path]) -> None:
    path = download(entries[0], tmp_path)
    assert path.name == "studio_test_plugin-1.0.0-py3-none-any.whl"
    assert sha256(path) == entries[0].sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    plugins = tmp_path / "plugins"
    installer = PluginInstaller(plugins, pip_args=("--no-index",))
    plan = installer.plan(entries[0])
    assert plan.source == f"test-plugin 1.0.0 from {entries[0].url}"
    folder = installer.install(plan)
    assert (folder / "studio_test_plugin-1.0.0.dist-info").is_dir()
    assert list((plugins / ".staging").iterdir()) == []


def test_a_wrong_sha256_is_refused_and_the_file_removed(tmp_path: Path, entries: list[IndexEntry]) -> None:
    tampered = entries[2]
    with pytest.raises(PluginIndexError, match="does not match the index") as err:
        download(tampered, tmp_path)
    assert "nothing was installed" in str(err.value)
    assert list(tmp_path.iterdir()) == []
    plugins = tmp_path / "plugins"
    installer = PluginInstaller(plugins, pip_args=("--no-index",))
    with pytest.raises(PluginIndexError, match="does not match the index"):
        installer.plan(tampered)
    assert list((plugins / ".staging").iterdir()) == []
    with pytest.raises(PluginIndexError, match="the 100 bytes Studio accepts; nothing was installed"):
        download(entries[0], tmp_path, max_bytes=100)
    assert list(tmp_path.iterdir()) == [plugins]


def test_an_entry_whose_file_holds_another_plugin_is_refused(tmp_path: Path, entries: list[IndexEntry]) -> None:
    installer = PluginInstaller(tmp_path / "plugins", pip_args=("--no-index",))
    with pytest.raises(Exception, match="lists other-plugin, but its file holds the plugin test-plugin"):
        installer.plan(entries[3])
    assert list((tmp_path / "plugins" / ".staging").iterdir()) == []


def test_unreachable_and_broken_indexes_are_sentences(site: tuple[str, Path]) -> None:
    with socket.socket() as s:  # a port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = f"http://127.0.0.1:{port}/index.json"
    with pytest.raises(PluginIndexError, match=f"The plugin index {closed} could not be reached: .+\\.$"):
        fetch_index(closed, timeout=5)
    with pytest.raises(PluginIndexError, match=r"index .*/broken.json is not JSON"):
        fetch_index(site[0] + "/broken.json")
    with pytest.raises(PluginIndexError, match="is not a JSON list of plugins"):
        fetch_index(site[0] + "/object.json")
    with pytest.raises(PluginIndexError, match=r"answered HTTP 404 \(File not found\)"):
        fetch_index(site[0] + "/missing.json")
    with pytest.raises(PluginIndexError, match="could not be reached"):
        fetch_index(str(site[1] / "missing.json"))


def test_updates_offers_only_the_newest_newer_version(entries: list[IndexEntry]) -> None:
    found = updates(entries, {"test-plugin": "1.0.0", "not-in-index": "1.0"})
    assert [(e.name, e.version, old) for e, old in found] == [("test-plugin", "1.1.0", "1.0.0")]
    assert updates(entries, {"test-plugin": "1.1.0"}) == []
    assert updates(entries, {"test-plugin": "2.0"}) == []
    assert updates(entries, {"test-plugin": "not a version"}) == []


def test_an_entry_whose_file_holds_another_version_is_refused(tmp_path: Path) -> None:
    """Installed anyway, the index would say "updated to 9.9.9" while 1.0.0 went in, and offer it again forever."""
    wheel = plugin_wheel(tmp_path / "files")
    entry = IndexEntry("test-plugin", "9.9.9", "", wheel.resolve().as_uri(), sha256(wheel))
    installer = PluginInstaller(tmp_path / "plugins", pip_args=("--no-index",))
    with pytest.raises(Exception, match="lists test-plugin 9.9.9, but its file holds version 1.0.0; nothing was inst"):
        installer.plan(entry)
    assert list((tmp_path / "plugins" / ".staging").iterdir()) == []
    same = IndexEntry("test-plugin", "1.0", "", wheel.resolve().as_uri(), sha256(wheel))  # 1.0 is 1.0.0
    plan = installer.plan(same)
    assert plan.version == "1.0.0"
    installer.discard(plan)


def test_a_file_with_a_250_byte_name_downloads_and_its_temp_file_fits(tmp_path: Path) -> None:
    served = tmp_path / "site" / ("studio_long_" + "x" * 215 + "-1.0.0-py3-none-any.whl")
    served.parent.mkdir()
    served.write_bytes(b"wheel bytes")
    assert len(served.name) == 250
    entry = IndexEntry("long-plugin", "1.0.0", "", served.as_uri(), sha256(served))
    dest = tmp_path / "dest"
    dest.mkdir()
    path = download(entry, dest)
    assert path.name == served.name and path.read_bytes() == b"wheel bytes"
    assert [p.name for p in dest.iterdir()] == [served.name]


def test_a_file_name_past_255_bytes_is_refused_in_a_sentence(tmp_path: Path) -> None:
    entry = IndexEntry("long-plugin", "1.0.0", "", "https://example.com/" + "x" * 300 + ".whl", "0" * 64)
    with pytest.raises(PluginIndexError, match="304 characters long, more than the 255 a file name can have; "
                                               "nothing was installed"):
        download(entry, tmp_path)
    assert list(tmp_path.iterdir()) == []
