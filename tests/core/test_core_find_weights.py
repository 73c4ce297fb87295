"""find_weights: the one lookup of a weights file by name that LoRAs, VAEs and upscalers share."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from studio.core.errors import ModelError
from studio.core.models import PICKLE_SUFFIXES, find_weights
from studio.core.weight_files import pickle_refusal


class _Sentinel:
    """Unpickling this creates the file at ``path``, as a malicious checkpoint would run its payload."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.path,))


def _file(path: Path, data: bytes = b"not read by the lookup") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_the_safetensors_name_comes_first_then_the_name_then_a_path(tmp_path):
    folder = tmp_path / "loras"
    loose = _file(folder / "detail")  # no suffix: found only when nothing better is there
    assert find_weights(folder, "detail") == loose
    safe = _file(folder / "detail.safetensors")
    assert find_weights(folder, "detail") == find_weights(folder, "detail.safetensors") == safe
    nested = _file(folder / "sdxl" / "ink.safetensors")
    assert find_weights(folder, "sdxl/ink") == nested  # the name recipes record for a file in a sub-folder
    outside = _file(tmp_path / "elsewhere" / "mine.safetensors")
    assert find_weights(folder, str(outside)) == outside
    assert find_weights(folder, str(outside).removesuffix(".safetensors")) == outside


def test_nothing_there_is_none_not_an_error(tmp_path):
    folder = tmp_path / "vae"
    assert find_weights(folder, "gone") is None  # the folder does not even exist
    (folder / "a-folder").mkdir(parents=True)
    assert find_weights(folder, "a-folder") is None  # folders are the caller's business (diffusers VAEs)
    assert find_weights(folder, "") is None and find_weights(folder, "  ") is None


@pytest.mark.parametrize("suffix", PICKLE_SUFFIXES)
@pytest.mark.parametrize("asked", ["by its file name", "by its stem", "by its path"])
def test_a_pickle_is_refused_with_the_shared_sentence_and_never_unpickled(tmp_path, suffix, asked):
    sentinel = tmp_path / "ran"
    folder = tmp_path / "upscalers"
    where = tmp_path / "downloads" if asked == "by its path" else folder
    evil = _file(where / f"evil{suffix}", pickle.dumps(_Sentinel(sentinel)))
    name = {"by its file name": evil.name, "by its stem": "evil", "by its path": str(evil)}[asked]
    with pytest.raises(ModelError) as refused:
        find_weights(folder, name)
    assert str(refused.value) == pickle_refusal(evil)
    assert "studio convert-weights" in str(refused.value)
    assert not sentinel.exists()


def test_a_safetensors_file_beats_a_pickle_of_the_same_stem(tmp_path):
    folder = tmp_path / "loras"
    _file(folder / "detail.ckpt", pickle.dumps({"w": 1}))
    safe = _file(folder / "detail.safetensors")
    assert find_weights(folder, "detail") == safe  # the converted copy is used; the old pickle is left alone
