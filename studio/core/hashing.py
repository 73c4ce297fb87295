"""Model hashes as AUTOMATIC1111 and model sites show them, cached by size and mtime.

Checkpoints and VAEs: "AutoV2", the first 10 hex digits of the file's SHA-256. LoRAs: "AutoV3" (A1111's
``Lora hashes``, the old AddNet hash), the first 12 hex digits of the SHA-256 of the file after its
safetensors header, so editing a LoRA's metadata does not change its hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import partial
from pathlib import Path

from studio.core.images import write_atomically

WEIGHT_SUFFIXES = (".safetensors",)
_lock = threading.Lock()
log = logging.getLogger(__name__)


Progress = Callable[[int], None]  # told the bytes of each block read: a bar for a long hash


def same_hash(recorded: str, current: str) -> bool:
    """Whether two hashes name one file: hex, so any case; one written longer or shorter than the other (a full
    sha256 against A1111's 10 or 12 characters) is compared as far as both go."""
    length = min(len(recorded), len(current))
    return recorded[:length].lower() == current[:length].lower()


def file_sha256(path: Path, chunk: int = 1 << 20, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


def tensor_sha256(path: Path, chunk: int = 1 << 20, progress: Progress | None = None) -> str:
    """SHA-256 of a safetensors file's data, after its 8-byte length and JSON header."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        header = int.from_bytes(f.read(8), "little")
        f.seek(8 + header)
        if progress is not None:
            progress(8 + header)  # skipped, but a bar of the file's size counts it
        while block := f.read(chunk):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


def lora_hash(path: Path, cache_file: Path | None = None, progress: Progress | None = None) -> str:
    """The AutoV3 short hash A1111 writes in ``Lora hashes`` (12 hex digits); ModelError for a file that is
    not safetensors (a pickle is refused before a byte of it is hashed)."""
    from studio.core.weight_files import check_weights_file

    check_weights_file(path)
    return _cached(cache_file, TENSORS, path, _told(tensor_sha256, progress))[:12]


def model_hash(model: Path, cache_file: Path | None = None, progress: Progress | None = None) -> str:
    """Short hash of a single weights file, or of a diffusers folder's weight files in path order."""
    whole = _told(file_sha256, progress)
    if model.is_file():
        return _cached(cache_file, "", model, whole)[:10]
    digest = hashlib.sha256()
    for f in _folder_weights(model):
        digest.update(f"{f.relative_to(model).as_posix()}:{_cached(cache_file, '', f, whole)}\n".encode())
    return digest.hexdigest()[:10]


def cached_model_hash(model: Path, cache_file: Path | None) -> str | None:
    """:func:`model_hash` where the cache holds it for the file (a folder: each weight file) as it is now, else
    None without reading the model."""
    return model_hash(model, cache_file) if cache_file is not None and is_hashed(model, cache_file) else None


def _told(compute: Callable[..., str], progress: Progress | None) -> Callable[[Path], str]:
    return compute if progress is None else partial(compute, progress=progress)


def is_hashed(path: Path, cache_file: Path | None, tensors: bool = False) -> bool:
    """Whether ``path``'s hash (a folder's: each weight file's) is in the cache for the file as it is now: a
    hash that is not takes reading the whole file (about 1 s per GB)."""
    files = [path] if path.is_file() else _folder_weights(path)
    with _lock:
        cache = _read_cache(cache_file)
    try:
        return all(_key(TENSORS if tensors else "", f) in cache for f in files)
    except OSError:  # gone meanwhile: nothing to hash
        return True


def _folder_weights(model: Path) -> list[Path]:
    return sorted(p for p in model.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())


OLD_HASH_OFFSET, OLD_HASH_BYTES = 0x100000, 0x10000


def controlnet_hash(path: Path) -> str:
    """The hash sd-webui-controlnet writes after a ControlNet's name (``Model: control_v11p_sd15_canny [d14c016b]``):
    A1111's old ``model_hash``, the first 8 hex digits of the SHA-256 of the 64 KiB at 1 MiB into the file (of a
    shorter file, of nothing). Of a diffusers folder, its weights file's. Reads 64 KiB, so nothing is cached."""
    if path.is_dir():
        files = (p for p in path.glob("*.safetensors") if p.is_file())
        weights = sorted(files, key=lambda p: (".fp16." in p.name, p.name))
        if not weights:
            return ""
        path = weights[0]  # diffusion_pytorch_model.safetensors (or its .fp16 variant alone)
    with open(path, "rb") as handle:
        handle.seek(OLD_HASH_OFFSET)
        return hashlib.sha256(handle.read(OLD_HASH_BYTES)).hexdigest()[:8]


FilesKey = tuple[tuple[str, int, int], ...]


def files_key(paths: Iterable[Path]) -> FilesKey:
    """One version of these files (path, size, modification time of each): a cache of what was loaded from
    them is used while the key is the same, and loads again once a file is replaced."""
    return tuple((str(path), (stat := path.stat()).st_size, stat.st_mtime_ns) for path in paths)


def in_background(compute: Callable[[], str], path: Path) -> Future[str]:
    """``compute()`` (a hash of ``path``) on a thread of its own, for what needs the hash only later: a job's
    pictures need their model's, LoRAs' and VAE's hashes when they are saved, not before the model loads or
    the steps run. Hashing reads the whole file (2-7 GB for a model, about 1 s per GB here) and lets the GIL
    go while it reads and digests. A file that cannot be read gets an empty hash, as one hashed nowhere.

    A daemon thread, not an executor's: closing Studio in the middle of a big file must not wait for it.
    """
    future: Future[str] = Future()

    def run() -> None:
        try:
            future.set_result(compute())
        except OSError as exc:
            log.warning("Could not hash %s: %s", path, exc)
            future.set_result("")
        except BaseException as exc:  # noqa: BLE001 - whoever waits hears of it
            future.set_exception(exc)

    threading.Thread(target=run, name="studio-hash", daemon=True).start()
    return future


def _cached(cache_file: Path | None, kind: str, path: Path, compute: Callable[[Path], str]) -> str:
    """compute(path), remembered by path, size and mtime. The cache is shared by the window, the engine and
    the command line: each read-change-write holds the lock and replaces the file whole; the hashing itself
    (seconds for a big file) runs outside the lock."""
    key = _key(kind, path)
    with _lock:
        known = _read_cache(cache_file).get(key)
    if known:
        return known
    value = compute(path)
    if cache_file is not None:
        with _lock:
            cache = _read_cache(cache_file)
            cache[key] = value
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(cache_file, json.dumps(cache).encode("utf-8"), durable=False)
            except OSError:
                pass  # a cache we cannot write only costs time
    return value


TENSORS = "tensors|"  # the cache key's start for a LoRA's hash (AutoV3), of its tensors only


def _key(kind: str, path: Path) -> str:
    stat = path.stat()
    return f"{kind}{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _read_cache(cache_file: Path | None) -> dict[str, str]:
    if cache_file is None or not cache_file.exists():
        return {}
    try:
        data = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
