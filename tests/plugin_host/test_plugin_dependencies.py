"""Two plugins' dependencies share one Python process: incompatible versions of one package are never on together,
and a plugin whose dependency was already loaded at a version it rejects is not run with it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from plugin_wheels import build_wheel, plugin_wheel
from studio_testing import unpack_plugin

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import StudioError
from studio.plugin_host.enabled_state import STATE_FILE
from studio.plugin_host.host import ENABLED, PluginHost
from studio.plugin_host.registry import GENERATOR

USES_FAKEHUM = '''\
import fakehum


class Generator:
    VERSION = fakehum.VERSION

    def __init__(self, env):
        self.env = env

    def generate(self, request, context):
        return iter(())
'''


@pytest.fixture
def plugins_dir(plugin_sandbox):
    yield plugin_sandbox / "plugins"
    sys.modules.pop("fakehum", None)  # (loaded from a test's plugin folder; the sandbox keeps only studio_tp_*)


def install_with(plugins_dir: Path, tmp_path: Path, number: int, requirement: str, carried: str) -> Path:
    """A plugin 'TP Dep {number}' requiring ``requirement`` whose folder carries fakehum ``carried``, laid out as
    the installer leaves it."""
    plugin_id, package = f"tp-dep{number}", f"studio_tp_dep{number}"
    wheels = tmp_path / "wheels" / plugin_id
    wheel = plugin_wheel(wheels, plugin_id=plugin_id, package=package, generator_id=f"dep{number}-gen",
                         requires=[requirement], generator_code=USES_FAKEHUM)
    folder = unpack_plugin(plugins_dir, wheel, plugin_id)
    manifest = folder / package / "studio-plugin.toml"
    manifest.write_text(manifest.read_text().replace('name = "Test Plugin"', f'name = "TP Dep {number}"'))
    unpack_plugin(plugins_dir, build_wheel(wheels / "fakehum", "fakehum", carried,
                                           {"fakehum/__init__.py": f"VERSION = {carried!r}\n"}), plugin_id)
    return folder


def host_for(plugins_dir: Path) -> PluginHost:
    host = PluginHost(plugins_dir, scan_environment=False)
    host.refresh()
    return host


def test_a_plugin_rejecting_the_version_another_enabled_plugin_carries_is_not_enabled(plugins_dir, tmp_path):
    install_with(plugins_dir, tmp_path, 1, "fakehum>=4", "4.17.0")
    install_with(plugins_dir, tmp_path, 2, "fakehum==4.9.0", "4.9.0")
    host = host_for(plugins_dir)
    host.set_enabled("tp-dep1", True)
    with pytest.raises(StudioError) as err:
        host.set_enabled("tp-dep2", True)
    assert str(err.value) == (
        "TP Dep 2 cannot be enabled: it needs fakehum==4.9.0 (its folder has fakehum 4.9.0) but the enabled plugin "
        "TP Dep 1 (tp-dep1) carries fakehum 4.17.0, and plugins share one Python process, which loads only one "
        "fakehum; disable TP Dep 1 (tp-dep1) first.")
    assert host.enabled_ids() == {"tp-dep1"}  # the refused enable is not remembered
    # The other way round: the plugin enabled first is the one whose requirement rejects the newcomer's copy.
    host.set_enabled("tp-dep1", False)
    host.set_enabled("tp-dep2", True)
    with pytest.raises(StudioError, match=r"^TP Dep 1 cannot be enabled: it carries fakehum 4\.17\.0 but the enabled "
                                          r"plugin TP Dep 2 \(tp-dep2\) needs fakehum==4\.9\.0 \(its folder has "
                                          r"fakehum 4\.9\.0\)"):
        host.set_enabled("tp-dep1", True)
    assert host.enabled_ids() == {"tp-dep2"}


def test_plugins_carrying_versions_both_accept_are_enabled_together(plugins_dir, tmp_path):
    install_with(plugins_dir, tmp_path, 1, "fakehum>=4", "4.17.0")
    install_with(plugins_dir, tmp_path, 2, "fakehum>=4,<5", "4.9.0")
    host = host_for(plugins_dir)
    host.set_enabled("tp-dep1", True)
    host.set_enabled("tp-dep2", True)
    assert host.enabled_ids() == {"tp-dep1", "tp-dep2"}


def test_a_plugin_whose_dependency_was_loaded_at_a_rejected_version_is_not_run(plugins_dir, tmp_path):
    # Both on from before the check (or state.json written by hand): the first used decides which fakehum is loaded.
    install_with(plugins_dir, tmp_path, 1, "fakehum>=4", "4.17.0")
    install_with(plugins_dir, tmp_path, 2, "fakehum==4.9.0", "4.9.0")
    (plugins_dir / STATE_FILE).write_text(json.dumps({"enabled": ["tp-dep1", "tp-dep2"]}))
    host = host_for(plugins_dir)
    assert [r.status for r in host.records] == [ENABLED, ENABLED]
    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache")
    assert host.registry.instance(GENERATOR, "dep1-gen", env).VERSION == "4.17.0"
    with pytest.raises(StudioError) as err:
        host.registry.instance(GENERATOR, "dep2-gen", env)
    assert str(err.value) == (
        f"The generator 'Test generator' from TP Dep 2 could not be loaded: it needs fakehum==4.9.0, but fakehum "
        f"4.17.0 was already loaded from {(plugins_dir / 'tp-dep1').resolve()} (another plugin's), and plugins share "
        "one Python process, which loads only one fakehum; disable the other plugin and restart Studio.")
    assert "studio_tp_dep2" not in sys.modules  # none of its code ran


def test_a_dependency_loaded_at_a_version_the_plugin_accepts_is_shared(plugins_dir, tmp_path):
    install_with(plugins_dir, tmp_path, 1, "fakehum>=4", "4.17.0")
    install_with(plugins_dir, tmp_path, 2, "fakehum>=4", "4.9.0")
    (plugins_dir / STATE_FILE).write_text(json.dumps({"enabled": ["tp-dep1", "tp-dep2"]}))
    host = host_for(plugins_dir)
    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache")
    assert host.registry.instance(GENERATOR, "dep1-gen", env).VERSION == "4.17.0"
    assert host.registry.instance(GENERATOR, "dep2-gen", env).VERSION == "4.17.0"


def test_the_loaded_version_check_reads_the_distributions_metadata_once_until_a_folder_changes(
        plugins_dir, tmp_path, monkeypatch):
    """Asked each time a plugin's contribution is created: it must not re-read every distribution's metadata each
    time, yet must see a folder whose distributions changed."""
    import importlib.metadata

    from studio.plugin_host.dependencies import loaded_elsewhere

    first = install_with(plugins_dir, tmp_path, 1, "fakehum>=4", "4.17.0")
    second = install_with(plugins_dir, tmp_path, 2, "fakehum==4.9.0", "4.9.0")
    (plugins_dir / STATE_FILE).write_text(json.dumps({"enabled": ["tp-dep1", "tp-dep2"]}))
    host = host_for(plugins_dir)
    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache")
    host.registry.instance(GENERATOR, "dep1-gen", env)  # fakehum 4.17.0, from tp-dep1's folder
    reads: list[str] = []
    read_text = importlib.metadata.PathDistribution.read_text

    def counted(self, filename):
        reads.append(filename)
        return read_text(self, filename)

    monkeypatch.setattr(importlib.metadata.PathDistribution, "read_text", counted)
    refusal = loaded_elsewhere(second)
    assert refusal.startswith("it needs fakehum==4.9.0, but fakehum 4.17.0 was already loaded from")
    assert reads  # read the first time
    reads.clear()
    for _ in range(3):
        assert loaded_elsewhere(second) == refusal
    assert reads == []
    # tp-dep1's folder now says it holds fakehum 4.9.0 (as after an update): read again, and judged by it.
    old = first / "fakehum-4.17.0.dist-info"
    (old / "METADATA").write_text((old / "METADATA").read_text().replace("4.17.0", "4.9.0"))
    old.rename(first / "fakehum-4.9.0.dist-info")
    assert loaded_elsewhere(second) == ""
    assert reads
