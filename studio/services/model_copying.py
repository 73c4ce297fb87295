"""Copying (or moving) a model file or folder into the library safely: under a hidden temporary name, renamed
into place when whole, so a failed, cancelled or interrupted copy leaves nothing half-written (and a copy killed
outright is cleaned up by the next one)."""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from studio.core.errors import JobCancelledError, ModelError
from studio.core.units import format_size

Progress = Callable[[int, int], None]  # bytes copied, bytes in all
Cancelled = Callable[[], bool]  # checked between chunks: True stops the copy (JobCancelledError)
CHUNK = 8 << 20
PARTIAL_PREFIX = ".importing-"
STALE_AFTER_S = 15 * 60  # a copy in progress writes a chunk every few seconds; one untouched this long is dead


def copy_into(source: Path, folder: Path, target: Path, *, move: bool = False, progress: Progress | None = None,
              cancelled: Cancelled | None = None) -> None:
    """Copy (with ``move``, move) ``source`` to ``target`` in ``folder`` through a hidden partial name; ModelError
    when it could not be, JobCancelledError once ``cancelled()`` says so. Nothing partial is left behind, and a moved
    file that did not arrive goes back where it was."""
    partial = folder / f"{PARTIAL_PREFIX}{uuid.uuid4().hex[:12]}"  # short: a long name plus a suffix passed 255 bytes
    done = False
    try:
        folder.mkdir(parents=True, exist_ok=True)  # a read-only models folder: the sentence below, no traceback
        remove_stale_partials(folder)
        _check_free_space(source, folder, move)
        if move:
            shutil.move(source, partial)
        elif source.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
            _copy_folder(source, partial, cancelled)
        else:
            copy_file(source, partial, progress, cancelled)
        partial.replace(target)
        done = True
    except OSError as exc:
        raise ModelError(f"{source.name} could not be copied into {folder}: {exc.strerror or exc}.") from exc
    finally:  # whatever stopped it (an error, Ctrl+C): no multi-GB hidden file is left behind
        if not done:
            if move and not source.exists() and partial.exists():
                with contextlib.suppress(OSError):
                    partial.replace(source)  # a moved file goes back where it was
            remove_quietly(partial)


def _check_free_space(source: Path, folder: Path, move: bool) -> None:
    """Refuse before a byte is written when the model cannot fit (a full disk failed file by file, mid-copy)."""
    if move and source.stat().st_dev == folder.stat().st_dev:
        return  # a rename: no room needed
    files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else [source]
    needed = sum(p.stat().st_size for p in files)
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise ModelError(f"There is not enough free space in {folder} for {source.name}: it needs "
                         f"{format_size(needed)}, {format_size(free)} {'is' if free < 1024 else 'are'} free.")


def _copy_folder(source: Path, target: Path, cancelled: Cancelled | None) -> None:
    """copytree, with its error said in words: it collects every failed file into a list of tuples (shutil.Error),
    which reached the user as a raw Python list. Once one file fails the rest are not tried (a full disk)."""
    failures: list[OSError] = []

    def copy_one(src: str, dst: str) -> None:
        if failures:
            raise failures[0]
        try:
            copy_file(Path(src), Path(dst), None, cancelled)
        except OSError as exc:
            failures.append(exc)
            raise

    try:
        shutil.copytree(source, target, copy_function=copy_one)
    except shutil.Error as exc:
        if not failures:  # a folder or a file's attributes failed, not a copy: copytree's own first reason
            _, failed, why = exc.args[0][0]
            raise OSError(f"{Path(failed).name}: {why}") from exc
        first = failures[0]
        count = len(exc.args[0])
        others = f" ({count} files could not be copied)" if count > 1 else ""
        raise OSError(first.errno, f"{first.strerror or first}{others}") from exc


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _last_written(path: Path) -> float:
    """The newest modification time in ``path`` (a copied folder's files keep their sources' times, but the
    one being written is new)."""
    times = [path.lstat().st_mtime]
    if path.is_dir() and not path.is_symlink():
        times += [p.lstat().st_mtime for p in path.rglob("*")]
    return max(times)


def remove_stale_partials(folder: Path) -> None:
    """What an import killed outright (power cut, kill -9) left: hidden, and as big as the model."""
    now = time.time()
    with contextlib.suppress(OSError):
        for leftover in folder.glob(PARTIAL_PREFIX + "*"):
            with contextlib.suppress(OSError):
                if now - _last_written(leftover) > STALE_AFTER_S:
                    remove_quietly(leftover)


def copy_file(source: Path, target: Path, progress: Progress | None, cancelled: Cancelled | None = None) -> None:
    total = source.stat().st_size
    done = 0
    with open(source, "rb") as src, open(target, "wb") as dst:
        while True:
            if cancelled is not None and cancelled():
                raise JobCancelledError(f"The import of {source.name} was cancelled.")
            block = src.read(CHUNK)
            if not block:
                break
            dst.write(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    shutil.copystat(source, target)
