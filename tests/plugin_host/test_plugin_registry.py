"""The lazy registry: contributions are imported only on first use, failures are sentences."""

from __future__ import annotations

import sys
import textwrap

import pytest

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import StudioError
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution, Registry, builtin_registry


@pytest.fixture
def env(tmp_path):
    return GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache")


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A throw-away plugin module on sys.path that counts how often it is imported and instantiated."""
    name = "studio_test_lazy_plugin"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        IMPORTS = [1]
        CREATED = []

        class Generator:
            def __init__(self, env):
                CREATED.append(env)
                self.env = env

            def generate(self, request, context):
                return []
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def test_contributions_are_imported_on_first_use_only_and_created_once(plugin_module, env):
    registry = Registry()
    registry.add(Contribution(GENERATOR, "lazy", "Lazy", f"{plugin_module}:Generator", plugin_id="lazy-plugin"))
    assert plugin_module not in sys.modules  # listing is free: nothing imported yet
    assert [c.id for c in registry.contributions(GENERATOR)] == ["lazy"]
    assert registry.contributions(POSTPROCESSOR) == []
    assert registry.get(GENERATOR, "lazy").plugin_id == "lazy-plugin"
    assert plugin_module not in sys.modules
    first = registry.instance(GENERATOR, "lazy", env)
    second = registry.instance(GENERATOR, "lazy", env)
    assert first is second
    module = sys.modules[plugin_module]
    # A plugin gets folders of its own, created for it.
    (created,) = module.CREATED
    assert created.data_dir == env.data_dir / "plugin-data" / "lazy-plugin" and created.data_dir.is_dir()
    assert created.cache_dir == env.cache_dir / "plugin-cache" / "lazy-plugin"
    assert first.env is created


def test_two_contributions_with_one_id_are_refused():
    registry = Registry()
    registry.add(Contribution(GENERATOR, "x", "X", "a:b"))
    registry.add(Contribution(POSTPROCESSOR, "x", "X", "a:b"))  # another kind may reuse the id
    with pytest.raises(StudioError, match="Two generators are called 'x'"):
        registry.add(Contribution(GENERATOR, "x", "Other X", "c:d"))
    assert registry.get(GENERATOR, "x").title == "X"


def test_unknown_contribution_is_a_sentence(env):
    with pytest.raises(StudioError) as err:
        Registry().instance(GENERATOR, "nope", env)
    assert str(err.value) == "No generator called 'nope' is installed and enabled."


@pytest.mark.parametrize("target", ["studio_no_such_module_abc:Gen", "studio.core.errors:NoSuchAttr"])
def test_a_contribution_that_cannot_be_imported_names_its_plugin(env, target):
    registry = Registry()
    registry.add(Contribution(GENERATOR, "bad", "Bad generator", target, plugin_id="bad-plugin"))
    with pytest.raises(StudioError) as err:
        registry.instance(GENERATOR, "bad", env)
    assert str(err.value).startswith("The generator 'Bad generator' from bad-plugin could not be loaded (")


def test_builtin_registry_offers_studio_s_own_contributions_without_importing_them():
    import importlib.util

    registry = builtin_registry()
    assert [c.id for c in registry.contributions(GENERATOR)] == ["diffusers"]
    assert [c.id for c in registry.contributions(POSTPROCESSOR)] == ["color", "histogram", "neural", "adain",
                                                                     "restyle", "upscale"]
    for contribution in registry.contributions(GENERATOR) + registry.contributions(POSTPROCESSOR):
        assert contribution.builtin and contribution.owner == "Studio"
        module_name, _, attr = contribution.target.partition(":")
        # The target is real (checked without importing it: engine modules pull in torch).
        spec = importlib.util.find_spec(module_name)
        assert spec is not None, contribution.target
        assert f"class {attr}" in open(spec.origin, encoding="utf-8").read()


def test_a_plugin_whose_package_has_another_plugins_name_is_refused_not_run_as_the_other(tmp_path, env):
    """Copying a first-party plugin and changing only its ids gave two plugins one package: the second ran the
    first one's code while its pictures named the second."""
    for folder, colour in (("a", "red"), ("b", "blue")):
        package = tmp_path / folder / "studio_tp_twin"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "gen.py").write_text(f"COLOUR = {colour!r}\nclass Generator:\n    def __init__(self, env):\n"
                                        "        pass\n")
    registry = Registry()
    for folder in ("a", "b"):
        registry.add(Contribution(GENERATOR, f"gen-{folder}", f"Twin {folder}", "studio_tp_twin.gen:Generator",
                                  plugin_id=f"twin-{folder}", import_path=str(tmp_path / folder)))
    path_before = list(sys.path)
    try:
        registry.instance(GENERATOR, "gen-a", env)
        assert sys.modules["studio_tp_twin.gen"].COLOUR == "red"
        with pytest.raises(StudioError, match="its package 'studio_tp_twin' has the name of one already loaded from"):
            registry.instance(GENERATOR, "gen-b", env)
    finally:
        sys.path[:] = path_before
        for name in [n for n in sys.modules if n.startswith("studio_tp_twin")]:
            del sys.modules[name]


def test_a_plugin_updated_while_studio_runs_runs_its_new_code(tmp_path, env):
    """The registry took the new version's contributions, but Python's cached module kept running the old code,
    recorded under the new version."""
    folder = tmp_path / "upd"
    package = folder / "studio_tp_upd"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")

    def install(version: str) -> Contribution:
        (package / "gen.py").write_text(f"VERSION = {version!r}\nclass Generator:\n    def __init__(self, env):\n"
                                        "        pass\n")
        return Contribution(GENERATOR, "upd", "Updatable", "studio_tp_upd.gen:Generator", plugin_id="upd",
                            plugin_version=version, import_path=str(folder))

    registry = Registry()
    path_before = list(sys.path)
    try:
        registry.add(install("1.0"))  # (a size of its own: a .pyc is checked by size and whole seconds)
        registry.instance(GENERATOR, "upd", env)
        assert sys.modules["studio_tp_upd.gen"].VERSION == "1.0"
        registry.remove_plugin("upd")  # as the host does when the plugin's contributions change
        assert "studio_tp_upd.gen" not in sys.modules and "studio.core.errors" in sys.modules
        registry.add(install("2.0.0"))
        registry.instance(GENERATOR, "upd", env)
        assert sys.modules["studio_tp_upd.gen"].VERSION == "2.0.0"
    finally:
        sys.path[:] = path_before
        for name in [n for n in sys.modules if n.startswith("studio_tp_upd")]:
            del sys.modules[name]


def test_a_stray_copy_of_a_plugins_package_loaded_by_no_plugin_gives_way_to_the_plugins_own(tmp_path, env):
    """A source checkout imported earlier in the session (or a plugin uninstalled since) is not another plugin."""
    for folder, colour in (("checkout", "grey"), ("installed", "green")):
        package = tmp_path / folder / "studio_tp_stray"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "gen.py").write_text(f"COLOUR = {colour!r}\nclass Generator:\n    def __init__(self, env):\n"
                                        "        pass\n")
    path_before = list(sys.path)
    try:
        sys.path.insert(0, str(tmp_path / "checkout"))
        import importlib

        assert importlib.import_module("studio_tp_stray.gen").COLOUR == "grey"
        sys.path.remove(str(tmp_path / "checkout"))
        registry = Registry()
        registry.add(Contribution(GENERATOR, "stray", "Stray", "studio_tp_stray.gen:Generator", plugin_id="stray",
                                  import_path=str(tmp_path / "installed")))
        registry.instance(GENERATOR, "stray", env)
        assert sys.modules["studio_tp_stray.gen"].COLOUR == "green"
    finally:
        sys.path[:] = path_before
        for name in [n for n in sys.modules if n.startswith("studio_tp_stray")]:
            del sys.modules[name]
