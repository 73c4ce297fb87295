"""pip as the installer runs it: with every package Studio depends on protected."""

from __future__ import annotations

import importlib.metadata

from studio.plugin_host.pip_runs import protected_packages


def test_protected_packages_hold_studio_its_requirements_and_pip() -> None:
    protected = protected_packages()
    for name in ("studio", "pip", "torch", "pillow", "numpy", "pyside6-essentials", "packaging"):
        assert name in protected
    assert protected["torch"] == importlib.metadata.version("torch")
    assert "pytest" not in protected  # an extra's requirement is not Studio's own
