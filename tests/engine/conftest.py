"""Engine fixtures shared by the modules on models: which models were read from disk."""

from __future__ import annotations

from pathlib import Path

import pytest

import studio.engine.diffusion as diffusion


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The models read from disk, by folder name."""
    names: list[str] = []
    real = diffusion.load_model

    def counted(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        names.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(diffusion, "load_model", counted)
    return names
