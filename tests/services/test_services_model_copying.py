"""Copying into the library: nothing half-written is left by Ctrl+C, a killed import, Cancel or an unwritable folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_files import diffusers_folder, sd1

from studio.core.errors import ModelError
from studio.services.model_imports import import_model


def test_ctrl_c_while_copying_leaves_no_hidden_partial_file(tmp_path):
    """Ctrl+C left a multi-GB hidden .importing-* file behind (only OSError cleaned up)."""
    models = tmp_path / "models"
    source = sd1(tmp_path / "dreamy.safetensors")

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_model(source, models, progress=interrupt)
    assert not list(models.rglob(".importing-*")) and not (models / "checkpoints" / source.name).exists()


def test_a_partial_file_left_by_a_killed_import_is_removed_at_the_next_import(tmp_path):
    import os
    import time

    folder = tmp_path / "models" / "checkpoints"
    folder.mkdir(parents=True)
    dead, live = folder / ".importing-0123456789ab", folder / ".importing-ba9876543210"
    dead.write_bytes(b"x" * 1000)
    live.write_bytes(b"x" * 1000)  # another import copying right now: left alone
    old = time.time() - 3600
    os.utime(dead, (old, old))
    import_model(sd1(tmp_path / "dreamy.safetensors"), tmp_path / "models")
    assert not dead.exists() and live.exists()


@pytest.mark.parametrize("make", [sd1, diffusers_folder], ids=["file", "folder"])
def test_a_cancelled_import_stops_between_chunks_and_leaves_nothing(tmp_path, make, monkeypatch):
    import studio.services.model_copying as model_copying
    from studio.core.errors import JobCancelledError

    monkeypatch.setattr(model_copying, "CHUNK", 16)
    source = make(tmp_path / ("dreamy.safetensors" if make is sd1 else "tiny-sd"))
    models = tmp_path / "models"
    asked = []
    with pytest.raises(JobCancelledError, match="cancelled"):
        import_model(source, models, cancelled=lambda: asked.append(1) or len(asked) > 2)
    assert len(asked) == 3  # checked chunk by chunk, stopped at once
    assert not list((models / "checkpoints").iterdir())


def test_a_models_folder_that_cannot_be_written_is_one_sentence(tmp_path, monkeypatch):
    """A read-only models folder crashed `studio models import` with a PermissionError traceback."""
    real_mkdir = Path.mkdir

    def read_only(self: Path, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 — root can write anywhere: simulated
        if self.name == "checkpoints":
            raise PermissionError(13, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    models = tmp_path / "models"
    with pytest.raises(ModelError, match=r"^dreamy\.safetensors could not be copied into .*checkpoints: "
                                         r"Permission denied\.$"):
        import_model(sd1(tmp_path / "dreamy.safetensors"), models)


def test_a_model_larger_than_the_free_space_is_refused_in_one_sentence_before_copying(tmp_path, monkeypatch):
    """A full disk printed copytree's raw list of (source, target, error) tuples, one per failed file."""
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 400 * 1024, 400 * 1024))
    models = tmp_path / "models"
    source = diffusers_folder(tmp_path / "tiny-sd")
    (source / "README.md").write_bytes(b"x" * 750 * 1024)
    with pytest.raises(ModelError, match=r"^There is not enough free space in .*checkpoints for tiny-sd: it needs "
                                         r"750\.\d KB, 400\.0 KB are free\.$"):
        import_model(source, models)
    assert not list((models / "checkpoints").iterdir())


def test_a_folder_copy_failing_midway_says_its_first_error_in_words_and_how_many_files_failed(tmp_path, monkeypatch):
    import studio.services.model_copying as model_copying

    def full_disk(source: Path, target: Path, *args) -> None:  # noqa: ANN002 — as copy_file is called
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_copying, "copy_file", full_disk)
    models = tmp_path / "models"
    with pytest.raises(ModelError) as err:
        import_model(diffusers_folder(tmp_path / "tiny-sd"), models)
    assert str(err.value) == (f"tiny-sd could not be copied into {models / 'checkpoints'}: No space left on device "
                              "(4 files could not be copied).")
    assert not list((models / "checkpoints").iterdir())
