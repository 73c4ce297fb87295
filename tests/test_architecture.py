"""The layering in DESIGN.md, checked: light modules stay light, contracts hold, no pickle loading."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import studio

REPO = Path(__file__).resolve().parent.parent
PACKAGE = Path(studio.__file__).resolve().parent
HEAVY = ("torch", "PySide6", "diffusers", "transformers", "qasync", "accelerate")

LIGHT_IMPORT_SCRIPT = textwrap.dedent("""
    import importlib, json, pkgutil, sys

    roots = ["studio.core", "studio.services", "studio.plugin_host", "studio.engine.worker", "studio.plugin_api",
             "studio.cli"]
    imported = []
    for name in roots:
        module = importlib.import_module(name)
        imported.append(name)
        if hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, prefix=name + "."):
                importlib.import_module(info.name)
                imported.append(info.name)
    heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))
    print(json.dumps({"imported": imported, "heavy": heavy}))
""")


def test_light_layers_import_no_torch_qt_or_diffusers():
    result = subprocess.run([sys.executable, "-c", LIGHT_IMPORT_SCRIPT, *HEAVY], capture_output=True, text=True,
                            timeout=120, cwd=REPO, env=dict(os.environ, STUDIO_DEVICE="cpu"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    imported = set(report["imported"])
    # The walk really covered the packages (so an empty result below means something).
    expected = {f"studio.{p.parent.name}.{p.stem}" for folder in ("core", "services", "plugin_host")
                for p in (PACKAGE / folder).glob("*.py") if p.stem != "__init__"}
    assert expected <= imported, expected - imported
    assert {"studio.engine.worker", "studio.plugin_api", "studio.cli"} <= imported
    assert report["heavy"] == [], f"importing the light layers loaded {report['heavy']}"


def test_light_import_check_detects_a_heavy_import():
    """Control: the same check run on an engine module does see torch."""
    script = LIGHT_IMPORT_SCRIPT.replace('"studio.cli"]', '"studio.cli", "studio.engine.preview"]')
    result = subprocess.run([sys.executable, "-c", script, *HEAVY], capture_output=True, text=True, timeout=180,
                            cwd=REPO, env=dict(os.environ, STUDIO_DEVICE="cpu"))
    assert result.returncode == 0, result.stderr
    assert "torch" in json.loads(result.stdout.strip().splitlines()[-1])["heavy"]


def lint_imports_command() -> list[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("lint-imports")
    if found is None:
        pytest.fail("import-linter is not installed (pip install -e .[test])")
    return [found]


def test_import_linter_contracts_are_kept():
    result = subprocess.run([*lint_imports_command(), "--no-cache"], capture_output=True, text=True, timeout=180,
                            cwd=REPO)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Contracts: 3 kept, 0 broken." in output, output


# -- no pickle module in studio/ (torch.load calls: tests/test_source_rules.py) -----------------------------------------------------------

PICKLE_MODULES = {"pickle", "cPickle", "dill", "joblib", "cloudpickle"}


def pickle_imports(source: str, filename: str = "<source>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(n.split(".")[0] in PICKLE_MODULES for n in names):
            found.append(f"{filename}:{node.lineno}")
    return found


def studio_sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20  # the scan really sees the package
    return files


def test_no_pickle_modules_in_studio():
    problems = []
    for path in studio_sources():
        problems += pickle_imports(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert problems == [], f"pickle imported in: {problems}"


def test_the_pickle_scanner_catches_imports():
    assert pickle_imports("import pickle") and pickle_imports("from dill import loads")
    assert pickle_imports("import os, json") == []
