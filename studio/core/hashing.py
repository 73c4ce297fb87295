"""Model hashes as AUTOMATIC1111 and model sites show them, cached by size and mtime.

Checkpoints and VAEs: "AutoV2", the first 10 hex digits of the file's SHA-256. LoRAs: "AutoV3" (A1111's
``Lora hashes``, the old AddNet hash), the first 12 hex digits of the SHA-256 of the file after its
safetensors header, so editing a LoRA's metadata does not change its hash.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors",)
_lock = threading.Lock()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tensor_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a safetensors file's data, after its 8-byte length and JSON header."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        header = int.from_bytes(f.read(8), "little")
        f.seek(8 + header)
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def lora_hash(path: Path, cache_file: Path | None = None) -> str:
    """The AutoV3 short hash A1111 writes in ``Lora hashes`` (12 hex digits); ModelError for a file that is
    not safetensors (a pickle is refused before a byte of it is hashed)."""
    from studio.core.weight_files import check_weights_file

    check_weights_file(path)
    cache = _read_cache(cache_file)
    stat = path.stat()
    key = f"tensors|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache[key] = cache.get(key) or tensor_sha256(path)
    _write_cache(cache_file, cache)
    return cache[key][:12]


def model_hash(model: Path, cache_file: Path | None = None) -> str:
    """Short hash of a single weights file, or of a diffusers folder's weight files in path order."""
    cache = _read_cache(cache_file)

    def full_hash(f: Path) -> str:
        stat = f.stat()
        key = f"{f.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        cache[key] = cache.get(key) or file_sha256(f)
        return cache[key]

    if model.is_file():
        short = full_hash(model)[:10]
    else:
        digest = hashlib.sha256()
        for f in sorted(p for p in model.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file()):
            digest.update(f"{f.relative_to(model).as_posix()}:{full_hash(f)}\n".encode())
        short = digest.hexdigest()[:10]
    _write_cache(cache_file, cache)
    return short


def _read_cache(cache_file: Path | None) -> dict[str, str]:
    if cache_file is None or not cache_file.exists():
        return {}
    try:
        return json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(cache_file: Path | None, cache: dict[str, str]) -> None:
    if cache_file is None:
        return
    with _lock:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_text(json.dumps(cache))
        except OSError:
            pass  # a cache we cannot write only costs time
