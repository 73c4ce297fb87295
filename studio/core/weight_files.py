"""Safe reading of weight files: what a file is (by content, never by name) and a validated safetensors header.

Nothing here unpickles anything: pickle and torch-zip checkpoints are recognised from their first bytes
and refused, with the command that converts them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import struct
import subprocess
from collections.abc import Iterable, KeysView
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from studio.core.errors import ModelError, os_reason

SAFETENSORS = "safetensors"
PICKLE = "pickle"
TORCH_ZIP = "torch-zip"
GGUF = "gguf"
UNKNOWN = "unknown"

# safetensors' own limit (MAX_HEADER_SIZE in its Rust code; a longer header is "header too large"): a file that
# passes this check can be opened. The one limit for every path (loads, imports, library scans); real headers are a
# few MB at most.
MAX_HEADER_BYTES = 100_000_000
_SNIFF_BYTES = 64
_ZIP_MAGIC = b"PK\x03\x04"

# Bits per element of every dtype the safetensors format defines (sub-byte floats included).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
}

# Protocol 0/1 pickles have no PROTO opcode; these openings are what torch/pickle write for a
# dict, list, tuple or a class (``c<module>\n<name>\n``). Plain text rarely starts this way.
_OLD_PICKLE = re.compile(rb"^(?:[(})\]][(})\]dlpqtaIKJMSVXFN.]|c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n)")


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int  # byte offsets into the data section (after the header)
    end: int

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class SafetensorsInfo:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]  # the header's ``__metadata__``
    file_size: int
    header_size: int  # the JSON header's length in bytes (the data section starts at 8 + this)

    def keys(self) -> KeysView[str]:
        return self.tensors.keys()

    def shape(self, name: str) -> tuple[int, ...] | None:
        """The tensor's shape, or None when the file has no tensor of that name."""
        info = self.tensors.get(name)
        return info.shape if info is not None else None

    def has_prefix(self, prefix: str) -> bool:
        return any(key.startswith(prefix) for key in self.tensors)

    @property
    def parameter_count(self) -> int:
        return sum(info.numel for info in self.tensors.values())

    @property
    def dtypes(self) -> dict[str, int]:
        """Parameters per dtype, e.g. {"F16": 859_520_964}."""
        counts: dict[str, int] = {}
        for info in self.tensors.values():
            counts[info.dtype] = counts.get(info.dtype, 0) + info.numel
        return counts


def sniff_weights_format(path: Path) -> str:
    """"safetensors", "pickle", "torch-zip", "gguf" or "unknown", from the first bytes of the file."""
    with open(path, "rb") as handle:
        return _sniff(handle)


def _sniff(handle: BinaryIO) -> str:
    """``sniff_weights_format`` of a file open at its start."""
    head = handle.read(_SNIFF_BYTES)
    if head.startswith(_ZIP_MAGIC):
        return TORCH_ZIP if _zip_has_data_pkl(handle, head) else UNKNOWN
    if head.startswith(b"GGUF"):
        return GGUF
    # Before the pickle check: a header length like 0x280 also starts with the bytes of a PROTO opcode.
    if len(head) >= 9 and head[8:9] == b"{":
        return SAFETENSORS
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return PICKLE
    if _OLD_PICKLE.match(head):
        return PICKLE
    return UNKNOWN


def _zip_has_data_pkl(handle: Any, head: bytes) -> bool:
    """Whether a zip holds ``data.pkl`` (torch.save's format, TorchScript too)."""
    if len(head) >= 30:  # torch writes data.pkl first: its local header names it
        name_length = struct.unpack_from("<H", head, 26)[0]
        handle.seek(30)
        if handle.read(min(name_length, 1024)).endswith(b"data.pkl"):
            return True
    import zipfile

    try:  # a re-packed archive: read the central directory (names only, nothing is extracted)
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            return any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _corrupt(path: Path, what: str) -> ModelError:
    return ModelError(f"{path.name} is a corrupt safetensors file: {what}.")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the header names {key!r} twice")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"the header holds {name}, which JSON does not allow")


def _parse_header(path: Path, raw: bytes) -> dict[str, Any]:
    if not raw.startswith(b"{"):
        raise _corrupt(path, "its header does not start with '{'")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _corrupt(path, "its header is not UTF-8 text") from None
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        raise _corrupt(path, "its header is not valid JSON") from None
    except ValueError as exc:  # raised by the hooks above, already worded
        raise _corrupt(path, str(exc)) from None
    except RecursionError:
        raise _corrupt(path, "its header is nested too deeply to be a tensor list") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object")
    return header


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tensor_info(path: Path, name: str, entry: Any, data_size: int) -> TensorInfo:
    if not isinstance(entry, dict):
        raise _corrupt(path, f"the entry for tensor {name!r} is not an object")
    for field in ("dtype", "shape", "data_offsets"):
        if field not in entry:
            raise _corrupt(path, f"tensor {name!r} has no {field}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _corrupt(path, f"tensor {name!r} has the unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_int(dim) and dim >= 0 for dim in shape):
        raise _corrupt(path, f"tensor {name!r} has the shape {shape!r}, which is not a list of whole numbers ≥ 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise _corrupt(path, f"tensor {name!r} has data_offsets {offsets!r}, which is not a pair of whole numbers")
    start, end = offsets
    if not 0 <= start <= end:
        raise _corrupt(path, f"tensor {name!r} has the offsets out of range [{start}, {end}]")
    if end > data_size:
        raise _corrupt(path, f"it is truncated (tensor {name!r} ends at byte {end} of the data, "
                             f"but only {data_size} bytes follow the header)")
    span_bits = (end - start) * 8
    bits = DTYPE_BITS[dtype]
    if 0 not in shape:
        for dim in shape:
            bits *= dim
            if bits > span_bits:
                break  # already too big; stop before the product grows huge
    else:
        bits = 0
    if bits != span_bits:
        size = f"{bits // 8} bytes" if bits % 8 == 0 else f"{bits} bits"
        raise _corrupt(path, f"tensor {name!r} ({dtype} {shape}) needs {size} but spans {end - start} bytes")
    return TensorInfo(dtype, tuple(shape), start, end)


def _check_layout(path: Path, tensors: dict[str, TensorInfo], data_size: int) -> None:
    """Spans must tile the data section exactly: no overlap, no gap, nothing after (as safetensors requires)."""
    previous_name, previous_end = "", 0
    for name, info in sorted(tensors.items(), key=lambda item: (item[1].start, item[1].end)):
        if info.start < previous_end:
            raise _corrupt(path, f"tensors {previous_name!r} and {name!r} overlap in the data section")
        if info.start > previous_end:
            where = f"after tensor {previous_name!r}" if previous_name else "at the start of the data section"
            raise _corrupt(path, f"{info.start - previous_end} bytes {where} belong to no tensor")
        previous_name, previous_end = name, info.end
    if previous_end != data_size:
        raise _corrupt(path, f"{data_size - previous_end} bytes after the last tensor belong to no tensor")


def _too_long(length: int) -> str:
    return (f"its header claims to be {length:,} bytes long, but a safetensors header holds at most "
            f"{MAX_HEADER_BYTES:,} bytes ({MAX_HEADER_BYTES // 10**6} MB)")


def read_safetensors_header(path: Path) -> SafetensorsInfo:
    """The validated header of a safetensors file; ModelError naming the file and the fault otherwise.

    Reads 8 + header bytes only (never more than ``MAX_HEADER_BYTES``); no tensor data is read.
    """
    path = Path(path)
    refuse_special_file(path)
    return _read_header(path)


def _read_header(path: Path, opened: BinaryIO | None = None) -> SafetensorsInfo:
    """``read_safetensors_header`` for a path known not to be a special file; ``opened``: the file, already open
    (the gate sniffs and reads it from one open), which the caller closes."""
    try:
        with nullcontext(opened) if opened is not None else open(path, "rb") as handle:
            handle.seek(0)
            file_size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise _corrupt(path, f"it is only {len(prefix)} bytes long, shorter than the 8-byte header length")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES:
                raise _corrupt(path, _too_long(length))
            if length > file_size - 8:
                raise _corrupt(path, f"its header claims to be {length:,} bytes long, but only {file_size - 8:,} "
                                     "bytes follow (the file is cut short)")
            raw = handle.read(length)  # bounded by the checks above
    except OSError as exc:
        raise ModelError(f"Could not read {path.name}: {os_reason(exc)}.") from None
    if len(raw) != length:
        raise _corrupt(path, "it changed size while being read")
    header = _parse_header(path, raw)
    data_size = file_size - 8 - length
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _corrupt(path, "its __metadata__ is not a map of strings to strings")
    tensors = {name: _tensor_info(path, name, entry, data_size) for name, entry in header.items()}
    _check_layout(path, tensors, data_size)
    return SafetensorsInfo(tensors, dict(metadata), file_size, length)


def _quoted(path: Path) -> str:
    """The path as one argument for the person's shell: parentheses, $, quotes and spaces included."""
    if os.name == "nt":
        return subprocess.list2cmdline([str(path)])
    return shlex.quote(str(path))


def convert_command(path: Path) -> str:
    """``studio convert-weights IN OUT`` with OUT next to IN, never IN itself."""
    dest = path.with_suffix(".safetensors")
    if dest == path:
        dest = path.with_name(f"{path.stem}.converted.safetensors")
    return f"studio convert-weights {_quoted(path)} {_quoted(dest)}"


def import_convert_command(path: Path) -> str:
    """``studio models import --convert PATH``: the pickle converted and put in the models folder, by its kind."""
    return f"studio models import --convert {_quoted(path)}"


def pickle_refusal(path: Path) -> str:
    """The sentence Studio shows for any pickle checkpoint, with the command that converts it."""
    return (f"{path.name} is a pickle checkpoint, which can run code when it is loaded; Studio only loads "
            f"safetensors. Convert it with `{convert_command(path)}` "
            "(it reads tensors only, with torch.load(weights_only=True)).")


def special_file_problem(path: Path) -> str:
    """Why ``path`` is no weights file to open, when it is a named pipe, socket or device (opening a named pipe
    waits for a writer for ever), as one sentence; "" for a regular file, a folder or nothing there."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return ""  # opening it says what is wrong
    return special_mode_problem(path, mode)


def file_mode(path: Path) -> int | None:
    """``path``'s st_mode (links followed), from one look-up; None where nothing is there by ``Path.exists``'s rule
    (a missing file, a dangling link, a link loop), whose other failures (no permission) raise as they did."""
    try:
        return path.stat().st_mode
    except (OSError, ValueError):
        if not path.exists():
            return None
        return path.stat().st_mode


def special_mode_problem(path: Path, mode: int) -> str:
    """``special_file_problem`` for a path whose ``st_mode`` is already known (``file_mode``)."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return ""
    from studio.core.images import special_file_kind  # the one wording for special files (images say it too)

    return f"{path} is {special_file_kind(mode)}, not a weights file."


def refuse_special_file(path: Path) -> None:
    if problem := special_file_problem(path):
        raise ModelError(problem)


def check_weights_file(path: Path) -> SafetensorsInfo:
    """The gate every weight load, import and library scan goes through: the validated safetensors header, or
    ModelError with one sentence (the same sentence for the same file, whichever path met it)."""
    path = Path(path)
    mode = file_mode(path)  # one look-up for whether it is there, a folder or a special file
    if mode is None:
        raise ModelError(f"There is no weights file at {path}.")
    if stat.S_ISDIR(mode):
        raise ModelError(f"{path} is a folder, not a weights file.")
    if special := special_mode_problem(path, mode):
        raise ModelError(special)
    try:
        handle = open(path, "rb")  # once: its first bytes tell the format, then its header is read
    except OSError as exc:
        raise ModelError(f"Could not read {path.name}: {os_reason(exc)}.") from None
    with handle:
        try:
            kind = _sniff(handle)
        except OSError as exc:
            raise ModelError(f"Could not read {path.name}: {os_reason(exc)}.") from None
        if kind in (PICKLE, TORCH_ZIP):
            raise ModelError(pickle_refusal(path))
        if kind == GGUF:
            raise ModelError(f"{path.name} is a GGUF file, not a safetensors file; Studio only loads safetensors "
                             "weights.")
        if kind == UNKNOWN and path.suffix.lower() != ".safetensors":
            raise ModelError(f"{path.name} is not a safetensors file (its first bytes match no weights format "
                             "Studio knows); Studio only loads safetensors weights.")
        # Named .safetensors but damaged: the header reader says exactly what is wrong.
        return _read_header(path, handle)


def numbers_in(paths: Iterable[Path]) -> int:
    """The numbers weight files hold, from their headers (nothing is loaded): the safetensors files when there
    are any (what diffusers loads), else the pickle files' size as float16 at most."""
    paths = list(paths)
    tensors = [p for p in paths if p.suffix == ".safetensors"]
    if tensors:
        return sum(read_safetensors_header(p).parameter_count for p in tensors)
    return sum(p.stat().st_size for p in paths if p.suffix in (".bin", ".pt", ".pth")) // 2
