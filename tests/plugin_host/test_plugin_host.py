"""The plugin host: discovery from manifests only, enable/disable kept across sessions, statuses, clashes,
safe mode, and switching a failing plugin off for the session."""

from __future__ import annotations

import json
import sys

import pytest
from plugin_wheels import plugin_wheel
from studio_testing import unpack_plugin

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import StudioError
from studio.plugin_host.host import DISABLED, ENABLED, FAILED, INCOMPATIBLE, MAX_FAILURES, SAFE_MODE, PluginHost
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR

SENTINEL_INIT = "import pathlib\npathlib.Path({path!r}).write_text('ran')\n"


@pytest.fixture
def plugins_dir(plugin_sandbox):
    return plugin_sandbox / "plugins"


def install(plugins_dir, tmp_path, plugin_id="tp-one", package="studio_tp_one", **kwargs):  # noqa: ANN001, ANN003
    wheel = plugin_wheel(tmp_path / "wheels" / plugin_id, plugin_id=plugin_id, package=package, **kwargs)
    return unpack_plugin(plugins_dir, wheel, plugin_id)


def host_for(plugins_dir, **kwargs) -> PluginHost:  # noqa: ANN001, ANN003
    host = PluginHost(plugins_dir, scan_environment=False, **kwargs)
    host.refresh()
    return host


def test_installed_plugins_are_listed_from_manifests_without_importing_them(plugins_dir, tmp_path):
    sentinel = tmp_path / "imported"
    install(plugins_dir, tmp_path, init_code=SENTINEL_INIT.format(path=str(sentinel)))
    host = host_for(plugins_dir)
    (record,) = host.records
    assert (record.id, record.name, record.version, record.status) == ("tp-one", "Test Plugin", "1.0.0", DISABLED)
    assert record.found.manifest.author == "Tests"
    assert record.found.managed and record.found.location == plugins_dir / "tp-one"
    # Installed is not enabled: nothing is registered, nothing imported.
    assert not host.registry.has(GENERATOR, "test-gen")
    host.set_enabled("tp-one", True)
    assert host.registry.has(GENERATOR, "test-gen")
    assert not sentinel.exists() and "studio_tp_one" not in sys.modules  # listing and enabling import nothing


def test_enabled_state_is_kept_across_sessions_and_disable_unregisters(plugins_dir, tmp_path):
    install(plugins_dir, tmp_path)
    host = host_for(plugins_dir)
    assert host.set_enabled("tp-one", True).status == ENABLED
    assert json.loads((plugins_dir / "state.json").read_text()) == {"enabled": ["tp-one"]}
    again = host_for(plugins_dir)  # a new session
    assert again.record("tp-one").status == ENABLED
    contribution = again.registry.get(GENERATOR, "test-gen")
    assert (contribution.plugin_id, contribution.plugin_version, contribution.owner) == \
        ("tp-one", "1.0.0", "Test Plugin")
    assert again.set_enabled("tp-one", False).status == DISABLED
    assert not again.registry.has(GENERATOR, "test-gen")
    assert host_for(plugins_dir).record("tp-one").status == DISABLED


def test_incompatible_api_and_broken_manifest_are_reported_not_loaded(plugins_dir, tmp_path):
    install(plugins_dir, tmp_path)
    manifest = plugins_dir / "tp-one" / "studio_tp_one" / "studio-plugin.toml"
    manifest.write_text(manifest.read_text().replace('api_version = ">=1.0,<2"', 'api_version = ">=2.0"'))
    install(plugins_dir, tmp_path, plugin_id="tp-two", package="studio_tp_two")
    (plugins_dir / "tp-two" / "studio_tp_two" / "studio-plugin.toml").write_text("id = [not toml")
    (plugins_dir / "state.json").write_text(json.dumps({"enabled": ["tp-one", "tp-two"]}))
    host = host_for(plugins_dir)
    one, two = host.record("tp-one"), host.record("tp-two")
    assert one.status == INCOMPATIBLE
    assert one.error == ("Test Plugin 1.0.0 needs plugin API >=2.0, but this Studio offers API 1.1; look for an "
                         "update of the plugin.")
    assert two.status == FAILED and "is not valid TOML" in two.error
    assert host.registry.contributions(GENERATOR)[0].id == "diffusers"  # only Studio's own
    with pytest.raises(StudioError, match="needs plugin API >=2.0"):
        host.set_enabled("tp-one", True)


def test_a_plugin_cannot_take_an_id_someone_else_owns(plugins_dir, tmp_path):
    # Two distributions claim one plugin id; a third plugin's generator id is Studio's own.
    install(plugins_dir, tmp_path, plugin_id="tp-one", package="studio_tp_one")
    second = plugin_wheel(tmp_path / "w2", plugin_id="tp-one", package="studio_tp_other", generator_id="other-gen")
    unpack_plugin(plugins_dir, second, "tp-one-copy")
    install(plugins_dir, tmp_path, plugin_id="tp-three", package="studio_tp_three", generator_id="diffusers")
    (plugins_dir / "state.json").write_text(json.dumps({"enabled": ["tp-one", "tp-three"]}))
    host = host_for(plugins_dir)
    statuses = [(r.id, r.found.distribution, r.status) for r in host.records]
    assert ("tp-one", "studio-tp-one", ENABLED) in statuses
    assert ("tp-one", "studio-tp-other", FAILED) in statuses
    copy = next(r for r in host.records if r.found.distribution == "studio-tp-other")
    assert copy.error == (f"The plugin id 'tp-one' is already taken by studio-tp-one in {plugins_dir / 'tp-one'}; "
                          f"this copy, studio-tp-other in {plugins_dir / 'tp-one-copy'}, is ignored.")
    three = host.record("tp-three")
    assert three.status == FAILED
    assert three.error == "Its generator id 'diffusers' is already owned by Studio; the plugin was not loaded."
    assert host.registry.get(GENERATOR, "diffusers").builtin
    assert host.taken_ids()["tp-one"] == "studio-tp-one"


def test_safe_mode_loads_no_plugin(plugins_dir, tmp_path):
    install(plugins_dir, tmp_path)
    (plugins_dir / "state.json").write_text(json.dumps({"enabled": ["tp-one"]}))
    host = host_for(plugins_dir, safe_mode=True)
    assert host.record("tp-one").status == SAFE_MODE
    assert [c.id for c in host.registry.contributions(GENERATOR)] == ["diffusers"]
    assert all(c.builtin for c in host.registry.contributions(POSTPROCESSOR))  # Studio's own only


def test_repeated_failures_switch_a_plugin_off_for_the_session_only(plugins_dir, tmp_path):
    install(plugins_dir, tmp_path)
    host = host_for(plugins_dir)
    host.set_enabled("tp-one", True)
    changes = []
    host.on_change = lambda: changes.append(1)
    for attempt in range(1, MAX_FAILURES):
        assert host.report_failure("tp-one", f"boom {attempt}") == ""
        assert host.record("tp-one").status == ENABLED and host.record("tp-one").failures == attempt
    notice = host.report_failure("tp-one", "boom 3")
    assert notice == ("The plugin Test Plugin was switched off until Studio restarts because it failed 3 times; "
                      "turn it on again in Plugins when it is fixed.")
    record = host.record("tp-one")
    assert record.status == FAILED and record.error.endswith("Last error: boom 3")
    assert not host.registry.has(GENERATOR, "test-gen") and changes
    assert host_for(plugins_dir).record("tp-one").status == ENABLED  # next session: on again
    host.set_enabled("tp-one", True)  # turning it on again clears the count
    assert host.record("tp-one").status == ENABLED and host.record("tp-one").failures == 0


def test_the_second_hang_in_a_session_switches_a_plugin_off(plugins_dir, tmp_path):
    # A plugin left running after a cancel is not a failure, but each leaves a thread behind: the second hang
    # switches it off for the session; turning it on again starts the count afresh.
    install(plugins_dir, tmp_path)
    host = host_for(plugins_dir)
    host.set_enabled("tp-one", True)
    assert host.report_hang("tp-one", "did not stop") == ""
    assert (host.record("tp-one").status, host.record("tp-one").failures) == (ENABLED, 0)
    notice = host.report_hang("tp-one", "did not stop again")
    assert notice == ("The plugin Test Plugin was switched off until Studio restarts because it did not stop after "
                      "being cancelled 2 times; turn it on again in Plugins when it is fixed.")
    assert host.record("tp-one").status == FAILED and host.record("tp-one").error.endswith("did not stop again")
    host.set_enabled("tp-one", True)
    assert host.report_hang("tp-one", "did not stop") == "" and host.record("tp-one").status == ENABLED


def test_ids_are_checked_before_anything_touches_the_disk(plugins_dir, tmp_path):
    host = host_for(plugins_dir)
    for bad in ("../x", "a/b", "Upper", "", "studio"):
        with pytest.raises(StudioError):
            host.set_enabled(bad, True)
    assert not plugins_dir.exists()
    with pytest.raises(StudioError, match="No plugin called 'ghost' is installed."):
        host.set_enabled("ghost", True)


def test_plugins_installed_in_the_environment_are_found_too(plugin_sandbox, tmp_path, monkeypatch):
    site = tmp_path / "site"
    wheel = plugin_wheel(tmp_path / "wheels", plugin_id="tp-env", package="studio_tp_env")
    unpack_plugin(site.parent, wheel, site.name)
    monkeypatch.syspath_prepend(str(site))
    host = PluginHost(tmp_path / "plugins")
    host.refresh()
    record = host.record("tp-env")
    assert not record.found.managed and record.status == DISABLED
    assert record.found.distribution == "studio-tp-env"


def test_a_plugin_used_once_is_not_found_again_in_the_environment(plugins_dir, tmp_path):
    # Its first use appends its folder to sys.path; the environment scan must not list that copy a second time
    # (as "already taken by … this copy … is ignored").
    install(plugins_dir, tmp_path)
    host = PluginHost(plugins_dir)  # scanning the environment, as the window does
    host.refresh()
    host.set_enabled("tp-one", True)
    host.registry.instance(GENERATOR, "test-gen", GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    assert str(plugins_dir / "tp-one") in sys.path
    host.refresh()
    assert [(r.id, r.status) for r in host.records if r.id == "tp-one"] == [("tp-one", ENABLED)]


def test_a_copy_in_the_environment_and_one_in_the_plugins_folder_are_told_apart(plugins_dir, tmp_path, monkeypatch):
    install(plugins_dir, tmp_path)
    site = tmp_path / "site"
    unpack_plugin(site.parent, plugin_wheel(tmp_path / "w2", plugin_id="tp-one", package="studio_tp_one"), site.name)
    monkeypatch.syspath_prepend(str(site))
    host = PluginHost(plugins_dir)
    host.refresh()
    first, second = (r for r in host.records if r.id == "tp-one")
    assert first.found.managed and second.status == FAILED
    assert second.error == (f"The plugin id 'tp-one' is already taken by studio-tp-one in {plugins_dir / 'tp-one'}; "
                            "this copy, studio-tp-one installed in Studio's Python environment, is ignored.")


def test_a_plugin_whose_generator_id_another_enabled_plugin_owns_is_not_enabled(plugins_dir, tmp_path):
    install(plugins_dir, tmp_path, plugin_id="tp-one", package="studio_tp_one", generator_id="twin")
    install(plugins_dir, tmp_path, plugin_id="tp-two", package="studio_tp_two", generator_id="twin")
    host = host_for(plugins_dir)
    host.set_enabled("tp-one", True)
    with pytest.raises(StudioError) as err:
        host.set_enabled("tp-two", True)
    assert str(err.value) == ("Test Plugin cannot be enabled: its generator id 'twin' is already owned by Test Plugin; "
                              "disable that plugin first.")
    assert host.enabled_ids() == {"tp-one"}  # the failed enable is not remembered
    for _ in range(MAX_FAILURES):  # switched off for the session: its ids are still its own
        host.report_failure("tp-one", "boom")
    with pytest.raises(StudioError):
        host.set_enabled("tp-two", True)
    host.set_enabled("tp-one", False)  # nothing takes the id over silently
    assert host.record("tp-two").status == DISABLED
    assert not host.registry.has(GENERATOR, "twin")
    host.set_enabled("tp-two", True)  # once the id is free, it can be enabled
    assert host.registry.get(GENERATOR, "twin").plugin_id == "tp-two"


def test_a_change_made_by_another_studio_is_taken_in_by_refresh_if_changed(plugins_dir, tmp_path):
    install(plugins_dir, tmp_path)
    window = host_for(plugins_dir)
    assert window.refresh_if_changed() is False  # nothing changed: no refresh
    host_for(plugins_dir).set_enabled("tp-one", True)  # `studio plugins enable tp-one` beside it
    assert window.record("tp-one").status == DISABLED
    assert window.refresh_if_changed() is True
    assert window.record("tp-one").status == ENABLED and window.registry.has(GENERATOR, "test-gen")
    assert window.refresh_if_changed() is False


def test_an_uninstall_whose_files_cannot_be_removed_is_not_told_as_a_removal(plugins_dir, tmp_path):
    install(plugins_dir, tmp_path)
    host = host_for(plugins_dir)
    host.set_enabled("tp-one", True)
    told: list[tuple[bool, bool]] = []  # at each refresh: is it being uninstalled, is it on
    host.on_change = lambda: told.append(("tp-one" in host.uninstalling, host.record("tp-one").status == ENABLED))

    def read_only(plugin_id: str) -> None:
        raise StudioError(f"Could not remove {plugin_id}: {plugins_dir} is read-only.")

    with pytest.raises(StudioError, match="read-only"):
        host.uninstall("tp-one", read_only)
    # switched off on its way out, then back on once its files stayed: a window told of that must not say removed
    assert told == [(True, False), (False, True)]
    assert not host.uninstalling and host.registry.has(GENERATOR, "test-gen")
