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


# -- no pickle loading anywhere in studio/ -----------------------------------------------------------

def unsafe_torch_loads(source: str, filename: str = "<source>") -> list[str]:
    """Calls of torch.load (however imported) without a literal ``weights_only=True``."""
    tree = ast.parse(source, filename)
    torch_names = {"torch"}  # names bound to the torch module
    load_names = set()  # names bound to torch.load itself
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch":
                    torch_names.add(alias.asname or "torch")
        elif isinstance(node, ast.ImportFrom) and node.module == "torch":
            for alias in node.names:
                if alias.name == "load":
                    load_names.add(alias.asname or "load")
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_torch_load = (
            (isinstance(func, ast.Attribute) and func.attr == "load" and isinstance(func.value, ast.Name)
             and func.value.id in torch_names)
            or (isinstance(func, ast.Name) and func.id in load_names)
        )
        if not is_torch_load:
            continue
        safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                   for k in node.keywords)
        if not safe:
            problems.append(f"{filename}:{node.lineno}")
    return problems


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


def test_no_torch_load_without_weights_only_in_studio():
    problems = []
    for path in studio_sources():
        problems += unsafe_torch_loads(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert problems == [], f"torch.load without weights_only=True: {problems}"


def test_no_pickle_modules_in_studio():
    problems = []
    for path in studio_sources():
        problems += pickle_imports(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert problems == [], f"pickle imported in: {problems}"


@pytest.mark.parametrize(("source", "bad"), [
    ("import torch\ntorch.load('x.pt')", True),
    ("import torch\ntorch.load('x.pt', weights_only=False)", True),
    ("import torch as T\nT.load(f, map_location='cpu')", True),
    ("from torch import load\nload(f)", True),
    ("from torch import load as tl\ntl(f, weights_only=flag)", True),
    ("import torch\ntorch.load('x.pt', weights_only=True)", False),
    ("import torch\ntorch.load('x.pt', map_location='cpu', weights_only=True)", False),
    ("import json\njson.load(f)", False),
    ("import torch\ntorch.save(obj, 'x.pt')", False),
])
def test_the_torch_load_scanner_catches_unsafe_calls(source, bad):
    assert bool(unsafe_torch_loads(source)) is bad


def test_the_pickle_scanner_catches_imports():
    assert pickle_imports("import pickle") and pickle_imports("from dill import loads")
    assert pickle_imports("import os, json") == []
