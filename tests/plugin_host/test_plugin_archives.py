"""Safe unpacking: every refusal is a sentence, and nothing is written outside the destination."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from plugin_wheels import tar_with

from studio.core.errors import StudioError
from studio.plugin_host.archives import (
    ArchiveError,
    ArchiveLimits,
    UnsafeArchive,
    archive_kind,
    copy_tree,
    scan_zip,
    unpack,
)

MiB = 1024 * 1024


def make_zip(path: Path, entries: dict[str, bytes], link: tuple[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link[0])
            info.create_system = 3  # Unix, so the mode bits count
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, link[1])
    return path


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 MB of zeros in a zip of about 50 KB."""
    return make_zip(tmp_path_factory.mktemp("bomb") / "bomb.zip", {"zeros.bin": bytes(50 * MiB)})


def refused(archive: Path, tmp_path: Path, match: str, limits: ArchiveLimits | None = None) -> str:
    """Unpack must fail with a sentence naming the archive, leaving tmp_path exactly as it was."""
    before = tree(tmp_path)
    with pytest.raises(UnsafeArchive, match=match) as err:
        unpack(archive, tmp_path / "out", limits or ArchiveLimits())
    assert tree(tmp_path) == before
    message = str(err.value)
    assert archive.name in message and message.endswith(".")
    return message


def test_a_plain_zip_and_tar_unpack_with_their_folders(tmp_path: Path) -> None:
    entries = {"pkg/__init__.py": b"x = 1\n", "pkg/data/a.txt": b"a", "top.txt": b"t"}
    unpack(make_zip(tmp_path / "a.zip", entries), tmp_path / "z")
    assert {k: (tmp_path / "z" / k).read_bytes() for k in entries} == entries
    info = tarfile.TarInfo("proj/run.sh")
    info.mode = 0o755
    unpack(tar_with(tmp_path / "b.tar.gz", [(info, b"#!/bin/sh\n")]), tmp_path / "t")
    assert os.access(tmp_path / "t" / "proj" / "run.sh", os.X_OK)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".unpack")] == []


@pytest.mark.parametrize("name", ["../evil.txt", "pkg/../../evil.txt", "..\\evil.txt"])
def test_zip_slip_is_refused(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "slip.zip", {"ok.txt": b"fine", name: b"evil"})
    assert "outside its folder" in refused(archive, tmp_path, "points outside")
    assert not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize("name", ["/etc/evil.txt", "C:/evil.txt", "c:\\evil.txt"])
def test_absolute_paths_and_drive_letters_are_refused(tmp_path: Path, name: str) -> None:
    refused(make_zip(tmp_path / "abs.zip", {name: b"evil"}), tmp_path, "absolute path")


def test_a_symlink_in_a_zip_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "link.zip", {"a.txt": b"a"}, link=("pkg/passwd", "/etc/passwd"))
    refused(archive, tmp_path, "symbolic link")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        scan_zip(archive)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_links_and_devices_in_a_tar_are_refused(tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("proj/escape")
    info.type = kind
    info.linkname = "../../../../etc/passwd"
    archive = tar_with(tmp_path / "links.tar.gz", [(tarfile.TarInfo("proj/ok.txt"), b"ok"), (info, None)])
    refused(archive, tmp_path, "link|device")


def test_a_zip_bomb_is_refused_from_its_headers_and_when_unpacking(tmp_path: Path, zip_bomb: Path) -> None:
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        scan_zip(zip_bomb)
    before = tree(tmp_path)
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        unpack(zip_bomb, tmp_path / "out")
    assert tree(tmp_path) == before


def test_a_gzip_bomb_in_a_tar_is_refused_while_streaming(tmp_path: Path) -> None:
    info = tarfile.TarInfo("proj/zeros.bin")
    refused(tar_with(tmp_path / "bomb.tar.gz", [(info, bytes(8 * MiB))]), tmp_path, "zip bomb")


def test_size_and_entry_caps_count_real_bytes(tmp_path: Path) -> None:
    small = ArchiveLimits(max_total_bytes=1000, max_entries=3)
    # Small archives that unpack to more than the cap: the zip by its sizes, the tar while streaming.
    refused(make_zip(tmp_path / "big.zip", {"a": b"a" * 600, "b": b"b" * 600}), tmp_path,
            "unpacks to more than 1000 bytes", small)
    refused(make_zip(tmp_path / "many.zip", {str(i): b"x" for i in range(4)}), tmp_path, "4 entries", small)
    members = [(tarfile.TarInfo(f"f{i}"), b"t" * 600) for i in range(2)]
    refused(tar_with(tmp_path / "big.tar.gz", members), tmp_path, "unpacks to more than 1000 bytes", small)
    (tmp_path / "huge.zip").write_bytes(os.urandom(2000))
    refused(tmp_path / "huge.zip", tmp_path, "larger than 1000 bytes", small)


def test_a_repeated_entry_is_refused_not_merged(tmp_path: Path) -> None:
    archive = tmp_path / "twice.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", b"first")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("a.txt", b"second")
    refused(archive, tmp_path, "twice")


def test_damaged_archives_and_unknown_kinds_are_sentences(tmp_path: Path) -> None:
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tar")
    for name in ("bad.zip", "bad.tar.gz"):
        with pytest.raises(ArchiveError, match="damaged"):
            unpack(tmp_path / name, tmp_path / "out")
    with pytest.raises(StudioError, match="not an archive"):
        unpack(tmp_path / "x.rar", tmp_path / "out")
    assert [archive_kind(Path(n)) for n in ("a.WHL", "a.zip", "a.tgz", "a.tar", "a.tar.gz", "a.rar")] == [
        "zip", "zip", "tar", "tar", "tar", None]
    assert not (tmp_path / "out").exists()


def test_copy_tree_skips_build_folders_and_refuses_links(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel in ("pkg/__init__.py", ".git/HEAD", "pkg/__pycache__/x.pyc", ".venv/bin/python", "dist/a.whl"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("x")
    copy_tree(src, tmp_path / "copy")
    assert tree(tmp_path / "copy") == {"pkg", "pkg/__init__.py"}
    (src / "pkg" / "secret").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        copy_tree(src, tmp_path / "copy2")
    assert not (tmp_path / "copy2").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".unpack")] == []


def test_a_tar_with_a_pax_long_name_unpacks(tmp_path: Path) -> None:
    name = "proj/" + "d" * 120 + "/file.txt"
    buf = io.BytesIO(b"long")
    info = tarfile.TarInfo(name)
    info.size = 4
    with tarfile.open(tmp_path / "long.tar", "w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(info, buf)
    unpack(tmp_path / "long.tar", tmp_path / "out")
    assert (tmp_path / "out" / name).read_bytes() == b"long"
