"""Fixtures for the first-party plugins' tests (helpers are in first_party.py)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from first_party import FakeContext, import_plugin


@pytest.fixture
def context(tmp_path: Path) -> FakeContext:
    return FakeContext(tmp_path / "plugin-data")


@pytest.fixture
def procedural(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return import_plugin(monkeypatch, "studio-procedural", "generator")


@pytest.fixture
def fields(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return import_plugin(monkeypatch, "studio-procedural", "fields")


@pytest.fixture
def palette(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return import_plugin(monkeypatch, "studio-procedural", "palette")


@pytest.fixture
def film(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return import_plugin(monkeypatch, "studio-film", "film")
