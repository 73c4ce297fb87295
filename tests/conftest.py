"""Shared fixtures: an isolated Studio home, and tiny random-weight SD pipelines (built once per session)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_DEVICE", "cpu")
# Pictures must not depend on the test machine's processor: float32 unless a test asks for bfloat16 (cpu_precision).
os.environ.setdefault("STUDIO_CPU_DTYPE", "float32")
sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import build_tiny_sd, build_tiny_sd_inpaint  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="module", autouse=True)
def _no_running_qt_loop_outside_ui_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """UI tests share one qasync loop marked running for the whole session (tests/ui/conftest.py); other test
    modules run their own loops (asyncio.run refuses inside a running one), so they and their fixtures see
    none, in any test order."""
    import asyncio

    ui_tests = Path(__file__).parent / "ui"
    running = asyncio.events._get_running_loop()
    if running is None or ui_tests in Path(str(request.node.path)).parents:
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.set_event_loop(running)
        asyncio.events._set_running_loop(running)


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


@pytest.fixture(autouse=True)
def _no_depth_model_kept_between_tests() -> Iterator[None]:
    """The depth models are kept in the engine's module (for the thumbnails and the next job): one a test loaded
    must not be listed in another's Models in Memory."""
    yield
    depth_maps = sys.modules.get("studio.engine.depth_maps")  # not imported for a test that never made a map
    if depth_maps is not None:
        depth_maps.forget()


@pytest.fixture(autouse=True)
def _studio_log_files_closed_after_each_test() -> Iterator[None]:
    """A command run in this process (``studio.cli.main``) sends the log to its home's studio.log with a file handler
    on the root logger: closed after the test, or every later test's lines go to that file too."""
    root = logging.getLogger()
    before = set(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in before and isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()
