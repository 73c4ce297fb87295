"""Weight files: sniffing by content, a validated safetensors header, and pickles refused without being opened."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from studio.core.errors import ModelError
from studio.core.weight_files import (
    DTYPE_BITS,
    MAX_HEADER_BYTES,
    check_weights_file,
    read_safetensors_header,
    sniff_weights_format,
)


def write_raw(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    """A safetensors-shaped file with any header (even a lying length), for the malformed cases."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def entry(dtype: str, shape: list[int], start: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}


# -- a good file ---------------------------------------------------------------------------------

def test_reads_a_real_safetensors_header(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"a.weight": np.zeros((2, 3), np.float16), "b": np.ones(4, np.float32), "c": np.zeros(0, np.int64)},
              str(path), metadata={"modelspec.title": "Test"})
    info = read_safetensors_header(path)
    assert sorted(info.keys()) == ["a.weight", "b", "c"]
    assert info.shape("a.weight") == (2, 3) and info.shape("missing") is None
    assert info.tensors["b"].dtype == "F32" and info.tensors["b"].end - info.tensors["b"].start == 16
    assert info.metadata == {"modelspec.title": "Test"}
    assert info.parameter_count == 10 and info.dtypes == {"F16": 6, "F32": 4, "I64": 0}
    assert info.file_size == path.stat().st_size and info.has_prefix("a.")
    assert check_weights_file(path) == info
    assert sniff_weights_format(path) == "safetensors"


def test_an_empty_safetensors_file_is_valid(tmp_path):
    path = tmp_path / "empty.safetensors"
    save_file({}, str(path))
    assert read_safetensors_header(path).tensors == {}


def test_dtype_table_matches_safetensors(tmp_path):
    """Every dtype we know is one the library accepts, with the size we think it has."""
    for dtype, bits in DTYPE_BITS.items():
        count = 8  # a whole number of bytes for every width, sub-byte ones included
        size = count * bits // 8
        path = write_raw(tmp_path / f"{dtype}.safetensors", {"t": entry(dtype, [count], 0, size)}, b"\0" * size)
        read_safetensors_header(path)
        with safe_open(str(path), framework="numpy") as handle:  # the library agrees it is valid
            assert list(handle.keys()) == ["t"]


def test_header_padding_and_non_string_metadata(tmp_path):
    padded = b'{"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}    '
    assert read_safetensors_header(write_raw(tmp_path / "p.safetensors", padded, b"ab")).shape("t") == (2,)
    bad = write_raw(tmp_path / "m.safetensors", {"__metadata__": {"a": 1}})
    with pytest.raises(ModelError, match="corrupt.*__metadata__"):
        read_safetensors_header(bad)


# -- malformed files -----------------------------------------------------------------------------

F32_2 = entry("F32", [2], 0, 8)

MALFORMED = {
    "header over the cap": (lambda p: write_raw(p, b"{}", b"", length=2**40), "holds at most 100,000,000 bytes"),
    "header longer than file": (lambda p: write_raw(p, b"{}", b"", length=500), "only 2 bytes follow"),
    "shorter than 8 bytes": (lambda p: p.write_bytes(b"\x02\0\0"), "only 3 bytes"),
    "not json": (lambda p: write_raw(p, b"{not json", b""), "not valid JSON"),
    "not utf-8": (lambda p: write_raw(p, b'{"\xff": 1}', b""), "not UTF-8"),
    "not an object": (lambda p: write_raw(p, b"[1, 2]", b""), "start with"),
    "json NaN": (lambda p: write_raw(p, b'{"t": NaN}', b""), "NaN"),
    "duplicate name": (lambda p: write_raw(p, b'{"t": {}, "t": {}}', b""), "twice"),
    "entry not object": (lambda p: write_raw(p, {"t": [1]}), "not an object"),
    "missing dtype": (lambda p: write_raw(p, {"t": {"shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8), "no dtype"),
    "missing shape": (lambda p: write_raw(p, {"t": {"dtype": "F32", "data_offsets": [0, 8]}}, b"\0" * 8), "no shape"),
    "missing offsets": (lambda p: write_raw(p, {"t": {"dtype": "F32", "shape": [2]}}, b"\0" * 8), "no data_offsets"),
    "unknown dtype": (lambda p: write_raw(p, {"t": entry("F128", [2], 0, 8)}, b"\0" * 8), "unknown dtype"),
    "negative dim": (lambda p: write_raw(p, {"t": entry("F32", [-2], 0, 8)}, b"\0" * 8), "shape"),
    "float dim": (lambda p: write_raw(p, {"t": entry("F32", [2.0], 0, 8)}, b"\0" * 8), "shape"),
    "bool dim": (lambda p: write_raw(p, {"t": entry("F32", [True], 0, 4)}, b"\0" * 4), "shape"),
    "offsets not a pair": (lambda p: write_raw(p, {"t": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}),
                           "not a pair"),
    "start after end": (lambda p: write_raw(p, {"t": entry("F32", [2], 8, 0)}, b"\0" * 8), "out of range"),
    "negative start": (lambda p: write_raw(p, {"t": entry("F32", [2], -8, 0)}, b"\0" * 8), "out of range"),
    "span past the data": (lambda p: write_raw(p, {"t": entry("F32", [2], 0, 8)}, b"\0" * 5), "truncated"),
    "size mismatch": (lambda p: write_raw(p, {"t": entry("F32", [3], 0, 8)}, b"\0" * 8), "needs 12 bytes"),
    "huge shape": (lambda p: write_raw(p, {"t": entry("F32", [2**62] * 50, 0, 8)}, b"\0" * 8), "spans 8 bytes"),
    "overlap": (lambda p: write_raw(p, {"a": F32_2, "b": entry("F32", [2], 4, 12)}, b"\0" * 12), "overlap"),
    "gap": (lambda p: write_raw(p, {"a": F32_2, "b": entry("F32", [2], 12, 20)}, b"\0" * 20), "belong to no"),
    "trailing bytes": (lambda p: write_raw(p, {"a": F32_2}, b"\0" * 12), "after the last tensor"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_are_refused_as_corrupt(tmp_path, case):
    make, detail = MALFORMED[case]
    path = tmp_path / "bad.safetensors"
    make(path)
    with pytest.raises(ModelError) as caught:
        check_weights_file(path)
    message = str(caught.value)
    assert message.startswith("bad.safetensors is a corrupt safetensors file: ") and message.endswith(".")
    assert detail in message
    # The library refuses every one of them too: passing the gate means safetensors can open the file.
    with pytest.raises(Exception), safe_open(str(path), framework="numpy"):  # noqa: B017
        pass


def test_truncated_real_file(tmp_path):
    path = tmp_path / "cut.safetensors"
    save_file({"a": np.zeros(100, np.float32), "b": np.zeros(100, np.float32)}, str(path))
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(ModelError, match=r"cut\.safetensors is a corrupt safetensors file: it is truncated"):
        read_safetensors_header(path)


def test_the_header_limit_is_the_one_safetensors_opens(tmp_path):
    """A header one byte past the limit, otherwise valid: refused here, and by safetensors itself (the limit was
    100 MiB, 4.8 MB above safetensors' own, so such a file passed the gate and then failed to open)."""
    path = tmp_path / "long.safetensors"
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{" + b" " * (MAX_HEADER_BYTES - 1) + b"}")
    with pytest.raises(ModelError) as caught:
        check_weights_file(path)
    assert str(caught.value) == ("long.safetensors is a corrupt safetensors file: its header claims to be "
                                 "100,000,001 bytes long, but a safetensors header holds at most 100,000,000 bytes "
                                 "(100 MB).")
    with pytest.raises(Exception, match="header too large"), safe_open(str(path), framework="numpy"):
        pass


def test_a_lying_header_length_allocates_nothing(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}" + b"\0" * 1000)
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match="corrupt"):
            read_safetensors_header(path)
        near = tmp_path / "near.safetensors"
        near.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES) + b"{}" + b"\0" * 1000)
        with pytest.raises(ModelError, match="but only 1,002 bytes follow"):  # under the cap but past the file's end
            read_safetensors_header(near)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


# -- sniffing and the gate -----------------------------------------------------------------------

def test_sniff_by_content_not_name(tmp_path):
    (tmp_path / "a.safetensors").write_bytes(b"GGUF\x03\0\0\0" + b"\0" * 20)
    (tmp_path / "b.ckpt").write_bytes(b"hello, this is text")
    save_file({"t": np.zeros(1, np.uint8)}, str(tmp_path / "c.bin"))
    zip_path = tmp_path / "d.safetensors"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("notes.txt", "no pickle here")
    assert sniff_weights_format(tmp_path / "a.safetensors") == "gguf"
    assert sniff_weights_format(tmp_path / "b.ckpt") == "unknown"
    assert sniff_weights_format(tmp_path / "c.bin") == "safetensors"
    assert sniff_weights_format(zip_path) == "unknown"
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        for value in ({"w": [1.0, 2.0]}, [1, 2], (1, 2)):
            (tmp_path / "p").write_bytes(pickle.dumps(value, protocol))
            assert sniff_weights_format(tmp_path / "p") == "pickle", (protocol, value)


def test_a_header_length_that_looks_like_a_pickle_opcode_is_still_safetensors(tmp_path):
    """0x0280 as a little-endian length starts with 0x80 0x02, the bytes of PROTO 2."""
    header = json.dumps({"t": entry("U8", [1], 0, 1)}).encode()
    header += b" " * (0x280 - len(header))
    path = write_raw(tmp_path / "x.safetensors", header, b"\0")
    assert path.read_bytes()[:2] == b"\x80\x02"
    assert sniff_weights_format(path) == "safetensors"
    assert check_weights_file(path).shape("t") == (1,)


def test_gate_refuses_other_formats_with_a_sentence(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF\x03\0\0\0" + b"\0" * 20)
    (tmp_path / "m.bin").write_bytes(b"hello, this is text")
    (tmp_path / "folder").mkdir()
    cases = {"m.gguf": "is a GGUF file, not a safetensors file", "m.bin": "is not a safetensors file",
             "folder": "is a folder, not a weights file", "nowhere.safetensors": "There is no weights file at"}
    for name, sentence in cases.items():
        with pytest.raises(ModelError, match=sentence):
            check_weights_file(tmp_path / name)


class Evil:
    """Unpickling this creates the sentinel file: proof that something ran."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (pathlib.Path.touch, (self.sentinel,))


def torch_zip(path: Path, payload: bytes, first: bool = True) -> Path:
    """torch.save's layout: a zip with ``archive/data.pkl`` (plus its usual companions), no torch needed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        if not first:
            archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", b"\0" * 16)
    return path


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth", ".bin", ".pkl", ".safetensors"])
def test_malicious_pickles_are_refused_without_running(tmp_path, suffix):
    sentinel = tmp_path / "SENTINEL"
    candidates = [tmp_path / f"p{protocol}{suffix}" for protocol in range(pickle.HIGHEST_PROTOCOL + 1)]
    for protocol, path in enumerate(candidates):
        path.write_bytes(pickle.dumps(Evil(sentinel), protocol))
    payload = pickle.dumps(Evil(sentinel), 2)
    candidates.append(torch_zip(tmp_path / f"zip{suffix}", payload))
    candidates.append(torch_zip(tmp_path / f"zip-late{suffix}", payload, first=False))
    for path in candidates:
        assert sniff_weights_format(path) in ("pickle", "torch-zip")
        with pytest.raises(ModelError) as caught:
            check_weights_file(path)
        message = str(caught.value)
        assert message.startswith(f"{path.name} is a pickle checkpoint, which can run code when it is loaded; "
                                  "Studio only loads safetensors. Convert it with `studio convert-weights ")
        assert message.endswith("(it reads tensors only, with torch.load(weights_only=True)).")
        assert str(path) in message and str(path) + " " in message  # the source, then a distinct destination
        assert ".safetensors`" in message
    assert not sentinel.exists()


def test_convert_command_never_overwrites_the_source(tmp_path):
    path = tmp_path / "my model.safetensors"
    path.write_bytes(pickle.dumps({"w": 1}, 2))
    with pytest.raises(ModelError) as caught:
        check_weights_file(path)
    dest = tmp_path / "my model.converted.safetensors"
    assert f"`studio convert-weights '{path}' '{dest}'`" in str(caught.value)


@pytest.mark.skipif(os.name == "nt", reason="POSIX shell quoting")
@pytest.mark.parametrize("name", ["model (1).ckpt", "cost$HOME.ckpt", "it's \"best\".ckpt", "a;b&c.ckpt"])
def test_the_convert_command_runs_as_shown_for_any_name(tmp_path, name):
    """It quoted only names with spaces: parentheses, $ and quotes broke the command or changed its paths."""
    import shlex
    import subprocess

    path = tmp_path / name
    path.write_bytes(pickle.dumps({"w": 1}, 2))
    with pytest.raises(ModelError) as caught:
        check_weights_file(path)
    command = str(caught.value).split("`")[1]
    assert shlex.split(command) == ["studio", "convert-weights", str(path), str(path.with_suffix(".safetensors"))]
    echoed = subprocess.run(["sh", "-c", command.replace("studio convert-weights", "printf '%s\\n'", 1)],
                            capture_output=True, text=True, check=True).stdout
    assert echoed.splitlines() == [str(path), str(path.with_suffix(".safetensors"))]


@pytest.mark.timeout(30)
def test_a_named_pipe_is_no_weights_file_and_is_never_opened(tmp_path):
    """Opening a named pipe waits for a writer for ever: every weights read hung on one named *.safetensors."""
    pipe = tmp_path / "pipe.safetensors"
    os.mkfifo(pipe)
    for read in (check_weights_file, read_safetensors_header):
        with pytest.raises(ModelError) as err:
            read(pipe)
        assert str(err.value) == f"{pipe} is a named pipe (FIFO), not a weights file."


def test_the_gate_looks_a_file_up_once(tmp_path, monkeypatch):
    """The gate looked a weights file up four times (there? a folder? a special file? and again before its header),
    for each of a library's weights files on every scan; one look-up tells all three."""
    path = tmp_path / "m.safetensors"
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(path))
    looks: list[Path] = []
    stat = Path.stat

    def counting_stat(self: Path, *args, **kwargs) -> os.stat_result:  # noqa: ANN002, ANN003
        looks.append(self)
        return stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", counting_stat)
    assert check_weights_file(path).shape("w") == (2, 2)
    assert looks == [path]
    looks.clear()
    assert read_safetensors_header(path).shape("w") == (2, 2)  # it still refuses a special file on its own
    assert looks == [path]


def test_the_gate_opens_a_file_once(tmp_path, monkeypatch):
    """The gate opened each weights file twice: once for its first bytes (is it a pickle?), once for its header."""
    import builtins

    import studio.core.weight_files as weight_files

    path = tmp_path / "m.safetensors"
    save_file({"w": np.zeros((2, 3), dtype=np.float32)}, str(path))
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(weight_files, "open", counting_open, raising=False)
    assert check_weights_file(path).shape("w") == (2, 3)
    assert opened == [str(path)]
