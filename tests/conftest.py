"""Shared fixtures: an isolated Studio home, and tiny random-weight SD pipelines (built once per session)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_DEVICE", "cpu")
sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import build_tiny_sd, build_tiny_sd_inpaint  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A diffusers folder with a tiny SD 1.x pipeline, saved once per test session."""
    return build_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_inpaint_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny pipeline as an inpainting model (9-channel UNet, StableDiffusionInpaintPipeline)."""
    return build_tiny_sd_inpaint(tmp_path_factory.mktemp("models") / "tiny-sd-inpaint")


@pytest.fixture
def studio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every Studio folder (settings, outputs, caches) under a fresh temporary directory."""
    home = tmp_path / "studio-home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def plugin_sandbox(tmp_path: Path):
    """Plugins imported in a test leave no trace: sys.path and modules loaded from tmp_path are restored."""
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    yield tmp_path
    sys.path[:] = path_before
    for name in set(sys.modules) - modules_before:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if origin.startswith(str(tmp_path)) or name.startswith("studio_tp_"):
            del sys.modules[name]
