"""Counting the threads a plugin started and left running (switched off or removed, they go on until Studio quits)."""

from __future__ import annotations

import functools
import threading

from plugin_wheels import STARTS_THREADS, plugin_wheel
from studio_testing import unpack_plugin

from studio.core.environment import GeneratorEnvironment
from studio.plugin_host.host import PluginHost
from studio.plugin_host.plugin_threads import threads_running_code_of
from studio.plugin_host.registry import GENERATOR

def test_the_threads_a_plugin_left_running_are_counted_after_it_is_switched_off(plugin_sandbox, tmp_path):
    stop = tmp_path / "stop"
    plugins_dir = plugin_sandbox / "plugins"
    wheel = plugin_wheel(tmp_path / "w", plugin_id="tp-threads", package="studio_tp_threads",
                         generator_code=STARTS_THREADS.format(stop=str(stop)))
    unpack_plugin(plugins_dir, wheel, "tp-threads")
    host = PluginHost(plugins_dir, scan_environment=False)
    host.refresh()
    host.set_enabled("tp-threads", True)
    record = host.record("tp-threads")
    assert host.background_threads(record) == 0
    try:
        host.registry.instance(GENERATOR, "test-gen", GeneratorEnvironment("cpu", tmp_path / "d", tmp_path / "c"))
        host.set_enabled("tp-threads", False)
        assert host.background_threads(record) == 3  # (and none of the test's or Studio's own)
        assert threads_running_code_of([]) == []
    finally:
        stop.touch()
    for thread in threads_running_code_of(["studio_tp_threads"]):
        thread.join(5)
    assert host.background_threads(record) == 0


def test_a_partial_target_is_followed_to_its_function():
    done = threading.Event()
    thread = threading.Thread(target=functools.partial(done.wait, 5))
    thread.start()
    try:
        assert thread in threads_running_code_of(["threading"])
    finally:
        done.set()
        thread.join()
