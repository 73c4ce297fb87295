"""Source rules no reviewer should have to remember: nothing in Studio or its plugins unpickles with code execution.

- every ``torch.load`` (however imported) passes a literal ``weights_only=True``;
- ``studio/`` never touches ``pickle.load``/``loads``/``Unpickler`` (or dill/cloudpickle's);
- ``numpy.load`` is never told ``allow_pickle=True``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle"}
PICKLE_READERS = {"load", "loads", "Unpickler"}


def _bindings(tree: ast.AST) -> tuple[dict[str, str], set[str]]:
    """Local names bound to modules (name → module) and names bound directly to a loader function."""
    modules: dict[str, str] = {"torch": "torch", "np": "numpy", "numpy": "numpy"}
    functions: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    modules[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                qualified = f"{node.module}.{alias.name}"
                if qualified in ("torch.load", "torch.serialization.load", "numpy.load") or (
                        node.module.split(".")[0] in PICKLE_MODULES and alias.name in PICKLE_READERS):
                    functions.add(f"{alias.asname or alias.name}={qualified}")
                elif alias.name == "serialization" and node.module == "torch":
                    modules[alias.asname or alias.name] = "torch.serialization"
    return modules, functions


def _target(func: ast.expr, modules: dict[str, str], functions: set[str]) -> str:
    """The fully qualified name a call or reference resolves to, as far as imports tell ("" if unknown)."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.insert(0, func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return ""
    if not parts:
        return next((f.split("=", 1)[1] for f in functions if f.split("=", 1)[0] == func.id), "")
    if func.id not in modules:
        return ""
    return ".".join([modules[func.id], *parts])


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def unsafe_loads(source: str, filename: str = "<source>", pickle_rule: bool = True) -> list[str]:
    """``file:line what`` for each torch.load without weights_only=True, pickle reader, or pickling np.load."""
    tree = ast.parse(source, filename)
    modules, functions = _bindings(tree)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            target = _target(node.func, modules, functions)
            if target in ("torch.load", "torch.serialization.load") and not _keyword_is(node, "weights_only", True):
                problems.append(f"{filename}:{node.lineno} {target} without weights_only=True")
            if target == "numpy.load" and any(k.arg == "allow_pickle" and not _keyword_is(node, "allow_pickle", False)
                                              for k in node.keywords):
                problems.append(f"{filename}:{node.lineno} numpy.load with allow_pickle")
        if pickle_rule and isinstance(node, (ast.Attribute, ast.Name)):
            target = _target(node, modules, functions)
            module, _, attr = target.rpartition(".")
            if module.split(".")[0] in PICKLE_MODULES and attr in PICKLE_READERS:
                problems.append(f"{filename}:{node.lineno} uses {target}")
        if pickle_rule and isinstance(node, ast.ImportFrom) and node.module \
                and node.module.split(".")[0] in PICKLE_MODULES:
            for alias in node.names:
                if alias.name in PICKLE_READERS or alias.name == "*":
                    problems.append(f"{filename}:{node.lineno} imports {node.module}.{alias.name}")
    return sorted(set(problems))


def sources(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def test_studio_and_plugins_load_weights_safely():
    studio, plugins = sources("studio"), sources("plugins")
    assert len(studio) > 20 and plugins  # the scan really sees both trees
    problems: list[str] = []
    for path in studio:
        problems += unsafe_loads(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    for path in plugins:  # plugins: the torch.load rule (they are examples authors copy)
        problems += unsafe_loads(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)), pickle_rule=False)
    assert problems == [], "unsafe loading:\n" + "\n".join(problems)


@pytest.mark.parametrize(("source", "bad"), [
    ("import torch\ntorch.load('x.pt')", True),
    ("import torch\ntorch.load('x.pt', weights_only=False)", True),
    ("import torch\ntorch.load('x.pt', **options)", True),
    ("import torch as T\nT.load(f, map_location='cpu')", True),
    ("from torch import load\nload(f)", True),
    ("from torch import load as tl\ntl(f, weights_only=flag)", True),
    ("import torch.serialization\ntorch.serialization.load(f)", True),
    ("from torch.serialization import load\nload(f)", True),
    ("import pickle\npickle.loads(data)", True),
    ("import pickle as p\nreader = p.Unpickler", True),
    ("from pickle import loads as l", True),
    ("import dill\ndill.load(f)", True),
    ("import numpy as np\nnp.load('a.npy', allow_pickle=True)", True),
    ("import torch\ntorch.load('x.pt', weights_only=True)", False),
    ("import torch\ntorch.load('x.pt', map_location='cpu', weights_only=True)", False),
    ("from torch import load\nload(f, weights_only=True)", False),
    ("import json\njson.load(f)", False),
    ("import torch\ntorch.save(obj, 'x.pt')", False),
    ("import pickle\npickle.dumps(obj)", False),
    ("import numpy as np\nnp.load('a.npy')", False),
    ("from safetensors.torch import load_file\nload_file('x.safetensors')", False),
])
def test_the_scanner_catches_unsafe_loading(source, bad):
    assert bool(unsafe_loads(source)) is bad, unsafe_loads(source)


def test_problems_name_file_and_line():
    assert unsafe_loads("import os\n\nimport torch\ntorch.load(p)\n", "pkg/mod.py") == [
        "pkg/mod.py:4 torch.load without weights_only=True"]
