"""state.json: which plugins are on, kept across sessions and shared by every Studio using the plugins folder;
a damaged one is set aside and said, never overwritten."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from plugin_wheels import plugin_wheel
from studio_testing import unpack_plugin

from studio.plugin_host.host import DISABLED, ENABLED, PluginHost


@pytest.fixture
def plugins_dir(plugin_sandbox):
    return plugin_sandbox / "plugins"


def install(plugins_dir, tmp_path, plugin_id="tp-one", package="studio_tp_one", **kwargs):  # noqa: ANN001, ANN003
    wheel = plugin_wheel(tmp_path / "wheels" / plugin_id, plugin_id=plugin_id, package=package, **kwargs)
    return unpack_plugin(plugins_dir, wheel, plugin_id)


def host_for(plugins_dir) -> PluginHost:  # noqa: ANN001
    host = PluginHost(plugins_dir, scan_environment=False)
    host.refresh()
    return host


RACERS, ROUNDS = 6, 8


def _race_set_enabled(plugins_dir: Path, plugin_id: str, barrier, rounds: int) -> None:  # noqa: ANN001
    host = host_for(plugins_dir)
    for round_ in range(rounds):
        barrier.wait()  # every racer reads, changes and writes state.json at once
        host.set_enabled(plugin_id, round_ % 2 == 1)
        barrier.wait()  # the test looks at state.json


@pytest.mark.slow
def test_commands_enabling_and_disabling_at_once_lose_no_change(plugins_dir, tmp_path):
    # Six `studio plugins disable X &` at once, each for another plugin: every change is kept.
    ids = [f"tp-race-{i}" for i in range(RACERS)]
    for i, plugin_id in enumerate(ids):
        install(plugins_dir, tmp_path, plugin_id=plugin_id, package=f"studio_tp_race{i}", generator_id=f"race-{i}")
    (plugins_dir / "state.json").write_text(json.dumps({"enabled": ids}))
    spawn = multiprocessing.get_context("spawn")  # as separate commands are: nothing shared but the files
    barrier = spawn.Barrier(RACERS + 1, timeout=120)
    racers = [spawn.Process(target=_race_set_enabled, args=(plugins_dir, plugin_id, barrier, ROUNDS))
              for plugin_id in ids]
    for racer in racers:
        racer.start()
    try:
        seen = []
        for round_ in range(ROUNDS):
            barrier.wait()
            barrier.wait()
            seen.append(sorted(json.loads((plugins_dir / "state.json").read_text())["enabled"]))
    except BaseException:
        barrier.abort()  # a racer that failed must not leave the others waiting
        raise
    finally:
        for racer in racers:
            racer.join(timeout=60)
    assert [racer.exitcode for racer in racers] == [0] * RACERS
    assert seen == [[] if round_ % 2 == 0 else ids for round_ in range(ROUNDS)]


def test_disabling_a_plugin_that_is_off_writes_nothing(plugins_dir, tmp_path, monkeypatch):
    # A read-only plugins folder: nothing to save is no error (uninstalling a disabled plugin disables it first).
    from studio.plugin_host import enabled_state as state_module

    install(plugins_dir, tmp_path)
    host = host_for(plugins_dir)

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(state_module, "write_atomically", read_only)
    assert host.set_enabled("tp-one", False).status == DISABLED
    assert sorted(p.name for p in plugins_dir.iterdir()) == ["tp-one"]  # no state.json, no lock file


@pytest.mark.parametrize(("text", "reason"), [
    ('{"enabled": ["tp-one"', "not JSON: Expecting ',' delimiter: line 1 column 22 (char 21)"),
    ('["tp-one"]', 'no list of plugin ids under "enabled"'),
    ('{"enabled": "tp-one"}', 'no list of plugin ids under "enabled"'),
    ('{"enabled": ["tp-one", 3]}', 'no list of plugin ids under "enabled"'),
])
def test_a_damaged_state_file_is_set_aside_and_said_not_overwritten(plugins_dir, tmp_path, caplog, text, reason):
    install(plugins_dir, tmp_path)
    state = plugins_dir / "state.json"
    (plugins_dir / "state.json.broken").write_text("an earlier copy")
    state.write_text(text)
    host = host_for(plugins_dir)
    notice = (f"The list of enabled plugins in {state} could not be read ({reason}); it was set aside as "
              "state.json.broken-2 and all plugins are off until you enable them again.")
    assert host.state_notice == notice
    assert host.record("tp-one").status == DISABLED
    assert [r.getMessage() for r in caplog.records if r.name == "studio.plugin_host.enabled_state"] == [notice]  # once
    assert (plugins_dir / "state.json.broken-2").read_text() == text  # kept as it was
    assert (plugins_dir / "state.json.broken").read_text() == "an earlier copy"  # never overwritten
    assert host.set_enabled("tp-one", True).status == ENABLED
    assert json.loads(state.read_text()) == {"enabled": ["tp-one"]}
    assert host.state_notice == ""  # said, and acted on
    assert host_for(plugins_dir).state_notice == ""


def test_a_damaged_state_file_that_cannot_be_set_aside_is_said_and_nothing_is_on(plugins_dir, tmp_path,
                                                                                monkeypatch):
    from studio.plugin_host import enabled_state as state_module

    install(plugins_dir, tmp_path)
    (plugins_dir / "state.json").write_bytes(b"\xff\xfe")

    def read_only(*args: object, **kwargs: object) -> None:  # (root may write anywhere: a stand-in says it)
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(state_module.os, "rename", read_only)
    host = host_for(plugins_dir)
    assert host.record("tp-one").status == DISABLED
    assert host.state_notice.startswith(f"The list of enabled plugins in {plugins_dir / 'state.json'} could not be "
                                        "read (not JSON: ")
    assert host.state_notice.endswith("nor set aside (Read-only file system); all plugins are off.")
    assert (plugins_dir / "state.json").read_bytes() == b"\xff\xfe"
