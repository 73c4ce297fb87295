"""The lazy registry: contributions are imported only on first use, failures are sentences."""

from __future__ import annotations

import sys
import textwrap

import pytest

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import StudioError
from studio.plugin_host.registry import (
    GENERATOR,
    POSTPROCESSOR,
    Contribution,
    Registry,
    builtin_registry,
    plugin_environment,
)


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


def test_a_cache_folder_that_cannot_be_made_is_a_temporary_one_said_once(tmp_path):
    (tmp_path / "cache").write_text("x")  # a file where the cache folder should be: for root too
    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache")
    contribution = Contribution(GENERATOR, "nc", "No cache", "a:b", plugin_id="no-cache-plugin", plugin_name="NoCache")
    notes: list[str] = []
    first = plugin_environment(env, contribution, notes.append)
    assert first.data_dir == tmp_path / "data" / "plugin-data" / "no-cache-plugin" and first.data_dir.is_dir()
    assert first.cache_dir.is_dir() and not first.cache_dir.is_relative_to(tmp_path)
    assert notes == [f"The cache folder {tmp_path / 'cache' / 'plugin-cache' / 'no-cache-plugin'} of the plugin "
                     f"NoCache could not be made (Not a directory); it uses {first.cache_dir} until Studio closes."]
    again = plugin_environment(env, contribution, notes.append)
    assert again.cache_dir == first.cache_dir and len(notes) == 1  # the next job: the same folder, said once


def test_a_data_folder_that_cannot_be_made_is_a_sentence_naming_it(tmp_path):
    (tmp_path / "data").write_text("x")
    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache")
    contribution = Contribution(GENERATOR, "nd", "No data", "a:b", plugin_id="no-data-plugin", plugin_name="NoData")
    with pytest.raises(StudioError) as err:
        plugin_environment(env, contribution)
    assert str(err.value) == (f"The plugin NoData was not run: its data folder {tmp_path / 'data' / 'plugin-data'}"
                              "/no-data-plugin could not be made (Not a directory).")


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


def test_a_contribution_is_titled_as_its_menu_shows_it_or_by_its_id_where_none_is_installed():
    registry = Registry()
    registry.add(Contribution(POSTPROCESSOR, "color", "Colour Transfer", "studio_nowhere:Filter"))
    assert registry.title(POSTPROCESSOR, "color") == "Colour Transfer"
    assert registry.title(POSTPROCESSOR, "gone") == "gone" and registry.title(GENERATOR, "color") == "color"


def test_a_contribution_keeps_its_title_once_its_plugin_is_switched_off():
    # A filter that failed three times in a job's chain switched its plugin off before the job said what it had
    # left out: "the picture was kept without ui-boom" named the filter by its id.
    registry = Registry()
    registry.add(Contribution(POSTPROCESSOR, "ui-boom", "Boom", "studio_nowhere:Filter", plugin_id="boom"))
    registry.remove_plugin("boom")
    assert not registry.has(POSTPROCESSOR, "ui-boom")
    assert registry.title(POSTPROCESSOR, "ui-boom") == "Boom"


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


@pytest.fixture
def package_in(tmp_path):  # noqa: ANN201
    """Writes a plugin package ``NAME/gen.py`` (a Generator, and a VALUE to tell copies apart) into a folder under
    tmp_path, and returns the folder; sys.path and the modules imported from them are put back afterwards."""
    path_before, names = list(sys.path), set()

    def write(folder: str, name: str, value: str):  # noqa: ANN202
        package = tmp_path / folder / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        (package / "gen.py").write_text(f"VALUE = {value!r}\nclass Generator:\n    def __init__(self, env):\n"
                                        "        pass\n")
        names.add(name)
        return tmp_path / folder

    yield write
    sys.path[:] = path_before
    for module in [n for n in sys.modules if n.partition(".")[0] in names]:
        del sys.modules[module]


def test_a_plugin_whose_package_has_another_plugins_name_is_refused_not_run_as_the_other(package_in, env):
    """Copying a first-party plugin and changing only its ids gave two plugins one package: the second ran the
    first one's code while its pictures named the second."""
    registry = Registry()
    for folder, colour in (("a", "red"), ("b", "blue")):
        registry.add(Contribution(GENERATOR, f"gen-{folder}", f"Twin {folder}", "studio_tp_twin.gen:Generator",
                                  plugin_id=f"twin-{folder}", import_path=str(package_in(folder, "studio_tp_twin",
                                                                                          colour))))
    registry.instance(GENERATOR, "gen-a", env)
    assert sys.modules["studio_tp_twin.gen"].VALUE == "red"
    with pytest.raises(StudioError, match="its package 'studio_tp_twin' has the name of one already loaded from"):
        registry.instance(GENERATOR, "gen-b", env)


def test_a_plugin_updated_while_studio_runs_runs_its_new_code(package_in, env):
    """The registry took the new version's contributions, but Python's cached module kept running the old code,
    recorded under the new version."""

    def install(version: str) -> Contribution:
        folder = package_in("upd", "studio_tp_upd", version)
        return Contribution(GENERATOR, "upd", "Updatable", "studio_tp_upd.gen:Generator", plugin_id="upd",
                            plugin_version=version, import_path=str(folder))

    registry = Registry()
    registry.add(install("1.0"))  # (a size of its own: a .pyc is checked by size and whole seconds)
    registry.instance(GENERATOR, "upd", env)
    assert sys.modules["studio_tp_upd.gen"].VALUE == "1.0"
    registry.remove_plugin("upd")  # as the host does when the plugin's contributions change
    assert "studio_tp_upd.gen" not in sys.modules and "studio.core.errors" in sys.modules
    registry.add(install("2.0.0"))
    registry.instance(GENERATOR, "upd", env)
    assert sys.modules["studio_tp_upd.gen"].VALUE == "2.0.0"


def test_a_stray_copy_of_a_plugins_package_loaded_by_no_plugin_gives_way_to_the_plugins_own(package_in, env):
    """A source checkout imported earlier in the session (or a plugin uninstalled since) is not another plugin."""
    import importlib

    checkout = package_in("checkout", "studio_tp_stray", "grey")
    sys.path.insert(0, str(checkout))
    assert importlib.import_module("studio_tp_stray.gen").VALUE == "grey"
    sys.path.remove(str(checkout))
    registry = Registry()
    registry.add(Contribution(GENERATOR, "stray", "Stray", "studio_tp_stray.gen:Generator", plugin_id="stray",
                              import_path=str(package_in("installed", "studio_tp_stray", "green"))))
    registry.instance(GENERATOR, "stray", env)
    assert sys.modules["studio_tp_stray.gen"].VALUE == "green"
