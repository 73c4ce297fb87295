"""The first-party plugins keep the plugin contract: what they import, how they are packaged, and that
Studio's own installer, host and job runner take them as a community plugin would be taken."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from first_party import PACKAGES, PLUGINS, FakeContext, manifest_of

from studio.core.plugin_manifest import ENTRY_POINT_GROUP, MANIFEST_NAME
from studio.plugin_host.wheels import check_flit_project, read_wheel

FOLDERS = sorted(PACKAGES)


def test_every_plugin_folder_is_tested():
    assert sorted(p.name for p in PLUGINS.iterdir() if (p / "pyproject.toml").is_file()) == FOLDERS


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
    return names


@pytest.mark.parametrize("folder", FOLDERS)
def test_plugins_import_only_the_plugin_api_from_studio(folder):
    sources = sorted((PLUGINS / folder).rglob("*.py"))
    assert sources
    for path in sources:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "studio":
                assert name == "studio.plugin_api", f"{path.relative_to(PLUGINS)} imports {name}"
            assert top not in ("torch", "diffusers", "transformers", "PySide6"), f"{path} imports {name}"


@pytest.mark.parametrize("folder", FOLDERS)
def test_package_init_imports_nothing(folder):
    """Studio reads the manifest from the package; importing the package itself should cost nothing."""
    init = PLUGINS / folder / PACKAGES[folder] / "__init__.py"
    assert _imports(init) == []


@pytest.mark.parametrize("folder", FOLDERS)
def test_pyproject_matches_the_manifest_and_the_contract(folder):
    project = tomllib.loads((PLUGINS / folder / "pyproject.toml").read_text(encoding="utf-8"))
    manifest = manifest_of(folder)
    check_flit_project(PLUGINS / folder, folder)  # what the installer demands of a source folder
    assert project["build-system"] == {"requires": ["flit_core>=3.9,<5"], "build-backend": "flit_core.buildapi"}
    meta = project["project"]
    assert meta["name"] == folder == manifest.id
    assert meta["version"] == manifest.version
    assert not any(dep.split(">")[0].split("=")[0].strip().lower() == "studio" for dep in meta["dependencies"])
    assert meta["entry-points"][ENTRY_POINT_GROUP] == {manifest.id: f"{PACKAGES[folder]}:{MANIFEST_NAME}"}
    assert (PLUGINS / folder / "README.md").is_file()
    for contribution in manifest.contributions:
        assert contribution.target.startswith(PACKAGES[folder] + ".")


@pytest.mark.parametrize("folder", FOLDERS)
def test_targets_name_classes_that_exist(folder, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS / folder))
    import importlib

    for contribution in manifest_of(folder).contributions:
        module, _, attr = contribution.target.partition(":")
        assert isinstance(getattr(importlib.import_module(module), attr), type)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    *(str(PLUGINS / f) for f in FOLDERS)], check=True, capture_output=True, timeout=120)
    return {folder: next(out.glob(f"{PACKAGES[folder]}-*.whl")) for folder in FOLDERS}


@pytest.mark.parametrize("folder", FOLDERS)
def test_folders_build_into_wheels_studio_accepts(folder, wheels):
    wheel = wheels[folder]
    names = zipfile.ZipFile(wheel).namelist()
    assert f"{PACKAGES[folder]}/{MANIFEST_NAME}" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    info = read_wheel(wheel)  # Studio's own checks: archive, metadata, entry point, manifest
    assert info.manifest == manifest_of(folder)
    assert info.entry_name == folder
    assert [str(r) for r in info.requires] == ["numpy>=1.26", "Pillow>=10.3"]


@pytest.fixture
def fresh_plugin_modules(monkeypatch):
    """Forget the plugins' modules imported from plugins/ (and restore them after), so the test imports
    the installed copies the way Studio does."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [n for n in sys.modules if n.split(".")[0] in PACKAGES.values()]:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [n for n in sys.modules if n.split(".")[0] in PACKAGES.values()]:
        del sys.modules[name]


@pytest.mark.slow
def test_install_enable_generate_and_post_process_through_studio(tmp_path, fresh_plugin_modules):
    from studio.core.environment import GeneratorEnvironment
    from studio.core.requests import GenerationRequest, PostStep
    from studio.plugin_host.host import ENABLED, PluginHost
    from studio.plugin_host.installer import PluginInstaller
    from studio.services.plugin_jobs import ContributionRunner, check_plugin_inputs

    plugins_dir = tmp_path / "plugins"
    host = PluginHost(plugins_dir, scan_environment=False)
    host.refresh()
    installer = PluginInstaller(plugins_dir)
    for folder in FOLDERS:
        plan = installer.plan(PLUGINS / folder, host.taken_ids())
        assert plan.dependencies == ()  # numpy and Pillow are Studio's own
        installer.install(plan)
    host.refresh()
    assert not host.registry.has("generator", "procedural")  # installing is not enabling
    for folder in FOLDERS:
        assert host.set_enabled(folder, True).status == ENABLED

    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache")
    runner = ContributionRunner(host.registry, env, host)
    request = check_plugin_inputs(host.registry, GenerationRequest(
        model="", prompt="gold night", generator="procedural", seed=3, batch_count=2, width=128, height=96,
        params={"pattern": "rings", "detail": "3"}, post=(PostStep("film-look", {"grain": "0.4", "seed": "8"}),)))
    context = FakeContext(tmp_path)
    outputs = list(runner.generate(request, context))
    assert [(image.size, recipe.seed, recipe.generator) for image, recipe in outputs] == [
        ((128, 96), 3, "procedural"), ((128, 96), 4, "procedural")]
    assert outputs[0][1].params["pattern"] == "rings"
    image, recipe = runner.post_process(request.post[0], *outputs[0], context)
    assert image.size == (128, 96) and recipe.post[0]["processor"] == "film-look"
    assert not np.array_equal(np.asarray(image), np.asarray(outputs[0][0]))
    loaded = sys.modules["studio_procedural.generator"].__file__
    assert Path(loaded).is_relative_to(plugins_dir), loaded  # the installed copy, not plugins/ in the repo
