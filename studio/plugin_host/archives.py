"""Safe unpacking of plugin archives (zip, tar) and safe copying of plugin folders.

Every entry name is checked before anything is written, links and device files are refused, and
sizes are counted from the bytes actually written, never from headers. Work happens in a fresh
temporary folder next to the destination, which is renamed into place only when all went well.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from studio.core.errors import StudioError

MiB = 1024 * 1024
CHUNK = MiB
_DRIVE = re.compile(r"^[A-Za-z]:")
ZIP_SUFFIXES = (".zip", ".whl")
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")
SKIPPED_FOLDERS = frozenset({".git", "__pycache__", ".venv", "build", "dist"})


class ArchiveError(StudioError):
    """An archive or folder that cannot be unpacked (damaged, too large, unreadable)."""


class UnsafeArchive(ArchiveError):
    """An archive refused because unpacking it would write outside its folder or exhaust the disk."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 20_000
    max_total_bytes: int = 512 * MiB
    max_ratio: float = 200.0  # uncompressed / compressed, above which an entry looks like a zip bomb
    ratio_floor: int = MiB  # entries smaller than this are never called bombs (tiny files compress well)


DEFAULT_LIMITS = ArchiveLimits()


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"


def archive_kind(path: Path) -> str | None:
    """"zip" or "tar" from the file name, None for anything else."""
    name = path.name.lower()
    if name.endswith(ZIP_SUFFIXES):
        return "zip"
    if name.endswith(TAR_SUFFIXES):
        return "tar"
    return None


def member_parts(name: str, archive: str) -> tuple[str, ...]:
    """The path components of an archive entry; UnsafeArchive if it could land outside the folder."""
    # Backslashes are separators on Windows; treat them so everywhere, so "..\\x" is caught here too.
    posix = name.replace("\\", "/")
    if "\0" in posix:
        raise UnsafeArchive(f"The archive {archive} holds an entry with a NUL character in its name; it was refused.")
    if posix.startswith("/") or _DRIVE.match(posix):
        raise UnsafeArchive(f"The archive {archive} holds an entry with an absolute path ({name!r}); it was refused.")
    parts = tuple(p for p in PurePosixPath(posix).parts if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchive(f"The archive {archive} holds an entry that points outside its folder ({name!r}); "
                            "it was refused.")
    return parts


def _zip_mode_kind(info: zipfile.ZipInfo) -> str:
    """"file", "dir" or what else the Unix mode bits in the entry say it is."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if info.is_dir() or kind == stat.S_IFDIR:
        return "dir"
    if kind in (0, stat.S_IFREG):
        return "file"
    return "symbolic link" if kind == stat.S_IFLNK else "device or special file"


def scan_zip(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS, verify: bool = True) -> list[zipfile.ZipInfo]:
    """Check every entry of a zip (a wheel too) without writing anything; returns the entries.

    With verify, every entry is also decompressed into nothing, counting real bytes and checking CRCs."""
    infos = _open_zip_checked(path, limits)
    if verify:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in infos:
                if info.is_dir():
                    continue
                with _zip_errors(path), zf.open(info) as src:
                    for chunk in iter(lambda: src.read(CHUNK), b""):
                        total += len(chunk)
                        _check_total(total, path, limits)
    return infos


def _open_zip_checked(path: Path, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    if path.stat().st_size > limits.max_total_bytes:
        raise UnsafeArchive(f"The archive {path.name} is larger than {_size(limits.max_total_bytes)}; "
                            "it was refused.")
    with _zip_errors(path), zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise UnsafeArchive(f"The archive {path.name} holds {len(infos)} entries, more than the "
                            f"{limits.max_entries} Studio accepts; it was refused.")
    declared = 0
    for info in infos:
        member_parts(info.filename, path.name)
        kind = _zip_mode_kind(info)
        if kind not in ("file", "dir"):
            raise UnsafeArchive(f"The archive {path.name} holds a {kind} ({info.filename!r}); "
                                "Studio unpacks only plain files and folders, so it was refused.")
        declared += info.file_size
        _check_total(declared, path, limits)
        _check_ratio(info.file_size, info.compress_size, f"{path.name} ({info.filename!r})", limits)
    return infos


def _check_total(total: int, path: Path, limits: ArchiveLimits) -> None:
    if total > limits.max_total_bytes:
        raise UnsafeArchive(f"The archive {path.name} unpacks to more than {_size(limits.max_total_bytes)}; "
                            "it was refused.")


def _check_ratio(size: int, packed: int, what: str, limits: ArchiveLimits) -> None:
    if size > limits.ratio_floor and (packed <= 0 or size / packed > limits.max_ratio):
        raise UnsafeArchive(f"The archive {what} is compressed suspiciously well (like a zip bomb); "
                            "it was refused.")


@contextmanager
def _zip_errors(path: Path) -> Iterator[None]:
    """Turn zipfile's and the OS's failures into a sentence naming the archive."""
    try:
        yield
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, zlib.error) as exc:
        raise ArchiveError(f"The archive {path.name} is damaged or not a zip file ({exc}).") from None
    except OSError as exc:
        raise ArchiveError(f"The archive {path.name} could not be read: {exc.strerror or exc}.") from None


def unpack(archive: Path, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> Path:
    """Unpack a zip or tar archive into dest (which must not exist yet); returns dest.

    On any refusal nothing is left behind: the temporary folder next to dest is removed."""
    kind = archive_kind(archive)
    if kind is None:
        raise ArchiveError(f"The file {archive.name} is not an archive Studio unpacks (.zip, .tar.gz, .tgz or .tar).")
    with _in_fresh_folder(dest) as work:
        if kind == "zip":
            _unpack_zip(archive, work, limits)
        else:
            _unpack_tar(archive, work, limits)
    return dest


@contextmanager
def _in_fresh_folder(dest: Path) -> Iterator[Path]:
    """A temporary folder beside dest, renamed to dest on success and removed on failure."""
    if dest.exists():
        raise ArchiveError(f"The folder {dest} already exists; Studio unpacks only into a new folder.")
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    os.rename(work, dest)


def _write_stream(src: IO[bytes], target: Path, name: str, counter: list[int], archive: Path,
                  limits: ArchiveLimits, executable: bool = False, packed: int = 0) -> int:
    """Copy src into a new file at target, counting every byte against the archive's total.

    With packed (the compressed archive's size), the running total is also judged as a bomb."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "xb") as out:  # "x": a second entry of the same name is refused, never merged
            for chunk in iter(lambda: src.read(CHUNK), b""):
                written += len(chunk)
                counter[0] += len(chunk)
                _check_total(counter[0], archive, limits)
                if packed:
                    _check_ratio(counter[0], packed, archive.name, limits)
                out.write(chunk)
    except FileExistsError:
        raise UnsafeArchive(f"The archive {archive.name} holds {name!r} twice; it was refused.") from None
    if executable:
        target.chmod(0o755)
    return written


def _unpack_zip(archive: Path, work: Path, limits: ArchiveLimits) -> None:
    infos = _open_zip_checked(archive, limits)
    counter = [0]
    with _zip_errors(archive), zipfile.ZipFile(archive) as zf:
        for info in infos:
            parts = member_parts(info.filename, archive.name)
            if not parts:
                continue
            target = work.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as src:
                written = _write_stream(src, target, info.filename, counter, archive, limits,
                                        executable=bool((info.external_attr >> 16) & 0o111))
            _check_ratio(written, info.compress_size, f"{archive.name} ({info.filename!r})", limits)


def _unpack_tar(archive: Path, work: Path, limits: ArchiveLimits) -> None:
    counter = [0]
    packed = max(archive.stat().st_size, 1)
    try:
        with tarfile.open(archive, "r:*") as tf:
            for count, member in enumerate(_tar_members(tf), start=1):
                if count > limits.max_entries:
                    raise UnsafeArchive(f"The archive {archive.name} holds more than {limits.max_entries} "
                                        "entries; it was refused.")
                parts = member_parts(member.name, archive.name)
                if member.issym() or member.islnk():
                    what = "symbolic link" if member.issym() else "hard link"
                    raise UnsafeArchive(f"The archive {archive.name} holds a {what} ({member.name!r} -> "
                                        f"{member.linkname!r}); Studio unpacks only plain files and folders, "
                                        "so it was refused.")
                if not (member.isreg() or member.isdir()):
                    raise UnsafeArchive(f"The archive {archive.name} holds a device or special file "
                                        f"({member.name!r}); it was refused.")
                if not parts:
                    continue
                target = work.joinpath(*parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                src = tf.extractfile(member)
                assert src is not None  # a regular member always has a stream
                with src:
                    # Compressed tars have no per-entry sizes: judge the whole stream against the file.
                    _write_stream(src, target, member.name, counter, archive, limits,
                                  executable=bool(member.mode & 0o111), packed=packed)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"The archive {archive.name} is damaged or not a tar file ({exc}).") from None
    except OSError as exc:
        raise ArchiveError(f"The archive {archive.name} could not be unpacked: {exc.strerror or exc}.") from None


def _tar_members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    # Streams one header at a time; tarfile.getmembers() would read the whole archive first.
    while (member := tf.next()) is not None:
        yield member


def copy_tree(src: Path, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS,
              skip: Collection[str] = SKIPPED_FOLDERS) -> Path:
    """Copy a plugin's source folder into dest (new), refusing links and honouring the limits."""
    if not src.is_dir():
        raise ArchiveError(f"The folder {src} does not exist.")
    with _in_fresh_folder(dest) as work:
        count = total = 0
        for root, dirs, files in os.walk(src):
            here = Path(root)
            dirs[:] = sorted(d for d in dirs if d not in skip)
            for name in sorted(dirs + files):
                _refuse_link(here / name, src)
            for name in sorted(files):
                path = here / name
                if not path.is_file():
                    raise UnsafeArchive(f"The folder {src} holds a device or special file "
                                        f"({path.relative_to(src)}); it was refused.")
                count += 1
                total += path.stat().st_size
                if count > limits.max_entries:
                    raise UnsafeArchive(f"The folder {src} holds more than {limits.max_entries} files; "
                                        "it was refused.")
                if total > limits.max_total_bytes:
                    raise UnsafeArchive(f"The folder {src} holds more than {_size(limits.max_total_bytes)}; "
                                        "it was refused.")
                target = work / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                if path.stat().st_mode & 0o111:
                    target.chmod(0o755)
    return dest


def _refuse_link(path: Path, src: Path) -> None:
    # A link could pull files from anywhere into the plugin's wheel: refuse rather than follow.
    if path.is_symlink():
        raise UnsafeArchive(f"The folder {src} holds a symbolic link ({path.relative_to(src)}); Studio copies "
                            "plugin folders without links, so it was refused.")
