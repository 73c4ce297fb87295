"""The Plugins dialog on its own (a plugin host over a folder, no window): what it says about installing and
removing matches what happens, as `studio plugins` does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

import pytest
from plugin_wheels import STARTS_THREADS, plugin_wheel
from studio_testing import unpack_plugin

from studio.plugin_host.host import DISABLED, PluginHost

WAIT_MS = 60_000


@pytest.fixture
def dialog(qtbot, qt_loop, plugin_sandbox):  # noqa: ANN001, ANN201
    from studio.ui.plugins_dialog import PluginsDialog

    host = PluginHost(plugin_sandbox / "plugins", scan_environment=False)
    host.refresh()
    dialog = PluginsDialog(host)
    qtbot.addWidget(dialog)
    dialog.asked = []
    dialog.confirm = lambda title, text, action=None: dialog.asked.append(text) or True  # the person says yes
    return dialog


def finished(qtbot, coro: Coroutine[Any, Any, Any]) -> Any:  # noqa: ANN001, ANN401
    task = asyncio.ensure_future(coro)
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    return task.result()


def test_installing_a_plugin_whose_folder_was_removed_by_hand_while_on_leaves_it_off_as_said(
        qtbot, dialog, plugin_sandbox):  # noqa: ANN001
    host = dialog.host
    host.plugins_dir.mkdir(parents=True)
    # Removed by hand while enabled: state.json still has it on.
    (host.plugins_dir / "state.json").write_text(json.dumps({"enabled": ["dlg-plugin"]}))
    wheel = plugin_wheel(plugin_sandbox / "wheels", plugin_id="dlg-plugin", package="studio_tp_dlg")
    assert finished(qtbot, dialog.install(wheel)) == "Installed Test Plugin 1.0.0. Enable it to use it."
    assert dialog.asked[0].endswith("Install it? It stays disabled until you enable it.")
    assert host.record("dlg-plugin").status == DISABLED  # as it said
    assert dialog.toggle_button.text() == "Enable"
    assert json.loads((host.plugins_dir / "state.json").read_text()) == {"enabled": []}


def test_uninstalling_a_plugin_that_is_off_from_a_read_only_folder_says_it_could_not_be_removed(
        qtbot, dialog, plugin_sandbox, monkeypatch):  # noqa: ANN001
    import errno

    from studio.plugin_host import enabled_state as state_module
    from studio.plugin_host import installer as installer_module

    host = dialog.host
    wheel = plugin_wheel(plugin_sandbox / "wheels", plugin_id="dlg-plugin", package="studio_tp_dlg")
    unpack_plugin(host.plugins_dir, wheel, "dlg-plugin")
    host.refresh()
    dialog.reload()

    def read_only(*args: object, **kwargs: object) -> None:  # (root may write anywhere: a stand-in says it)
        raise OSError(errno.EROFS, "Read-only file system", str(host.plugins_dir / "x"))

    monkeypatch.setattr(state_module, "write_atomically", read_only)
    monkeypatch.setattr(installer_module.tempfile, "mkdtemp", read_only)
    assert finished(qtbot, dialog.uninstall("dlg-plugin")) is False
    assert dialog.message.text() == f"Could not remove dlg-plugin: {host.plugins_dir} is read-only."
    assert not (host.plugins_dir / "state.json").exists()  # it was off: nothing to write
    assert host.record("dlg-plugin").status == DISABLED  # still installed


def test_the_dialog_says_that_a_damaged_list_of_enabled_plugins_was_set_aside(qtbot, qt_loop, plugin_sandbox):  # noqa: ANN001
    from studio.ui.plugins_dialog import PluginsDialog

    plugins_dir = plugin_sandbox / "plugins"
    plugins_dir.mkdir()
    (plugins_dir / "state.json").write_text("not json")
    host = PluginHost(plugins_dir, scan_environment=False)
    host.refresh()  # as the window does at its start
    dialog = PluginsDialog(host)
    qtbot.addWidget(dialog)
    assert dialog.message.text() == (
        f"The list of enabled plugins in {plugins_dir / 'state.json'} could not be read (not JSON: Expecting value: "
        "line 1 column 1 (char 0)); it was set aside as state.json.broken and all plugins are off until you enable "
        "them again.")
    assert (plugins_dir / "state.json.broken").read_text() == "not json"


def test_the_window_says_at_its_start_that_a_damaged_list_of_enabled_plugins_was_set_aside(  # noqa: ANN001
        qtbot, qt_loop, studio_home, plugin_sandbox):
    # It was only logged: the person learned why their plugins were all off when they opened the Plugins dialog.
    from studio.core.environment import GeneratorEnvironment
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.services.history_store import HistoryStore
    from studio.services.jobs import JobService
    from studio.services.outputs import OutputStore
    from studio.ui.main_window import MainWindow

    paths = studio_paths()
    paths.plugins_dir.mkdir(parents=True, exist_ok=True)
    (paths.plugins_dir / "state.json").write_text("not json")
    host = PluginHost(paths.plugins_dir, scan_environment=False)
    host.refresh()  # as the app does at its first frame, before the window starts
    settings = load_settings(paths)
    history = HistoryStore(paths.data_dir / "history.db")
    service = JobService(None, GeneratorEnvironment("cpu", paths.data_dir, paths.cache_dir),
                         OutputStore(settings.outputs_dir), history=history, plugins=host)
    window = MainWindow(settings, service, paths.data_dir, history, paths.cache_dir)
    qtbot.addWidget(window)
    window.start()
    try:
        assert window.status.message_label.text() == host.state_notice
        assert host.state_notice.startswith("The list of enabled plugins in ")
        assert window.status.message_label.property("error")
    finally:
        window.close()
        history.close()


def test_an_enabled_plugin_whose_files_cannot_be_removed_stays_enabled_and_the_removal_runs_off_the_ui_thread(
        qtbot, dialog, plugin_sandbox, monkeypatch):  # noqa: ANN001
    import errno
    import threading

    from studio.plugin_host import installer as installer_module

    host = dialog.host
    wheel = plugin_wheel(plugin_sandbox / "wheels", plugin_id="dlg-plugin", package="studio_tp_dlg")
    unpack_plugin(host.plugins_dir, wheel, "dlg-plugin")
    host.refresh()
    host.set_enabled("dlg-plugin", True)
    dialog.reload("dlg-plugin")
    threads: list[str] = []
    made = installer_module.PluginInstaller.__init__

    def noting_thread(self, *args: object, **kwargs: object) -> None:  # noqa: ANN001
        threads.append(threading.current_thread().name)
        made(self, *args, **kwargs)

    def busy(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EBUSY, "Device or resource busy", str(host.plugins_dir / "dlg-plugin"))

    monkeypatch.setattr(installer_module.PluginInstaller, "__init__", noting_thread)
    monkeypatch.setattr(installer_module.tempfile, "mkdtemp", busy)
    assert finished(qtbot, dialog.uninstall("dlg-plugin")) is False
    assert dialog.message.text().startswith("Could not remove dlg-plugin")
    assert host.record("dlg-plugin").status == "enabled"  # as it was: the removal did not happen
    assert json.loads((host.plugins_dir / "state.json").read_text()) == {"enabled": ["dlg-plugin"]}
    assert dialog.toggle_button.text() == "Disable"
    assert threads and threading.main_thread().name not in threads  # its package scan (60-290 ms) is off the UI


def test_closing_the_dialog_during_the_dry_run_cancels_the_install(qtbot, dialog, plugin_sandbox, monkeypatch):  # noqa: ANN001
    """Closed while "Checking… (pip dry run)", the install went on: it asked, installed and wrote into the deleted
    dialog (RuntimeError: Internal C++ object already deleted). Now closing cancels it."""
    import threading

    from studio.plugin_host import installer as installer_module

    wheel = plugin_wheel(plugin_sandbox / "wheels", plugin_id="dlg-plugin", package="studio_tp_dlg")
    planning, release = threading.Event(), threading.Event()
    real_plan = installer_module.PluginInstaller.plan
    installed: list[object] = []

    def slow_plan(self, *args: object, **kwargs: object):  # noqa: ANN001, ANN202 - a pip dry run that takes a while
        planning.set()
        release.wait(30)
        return real_plan(self, *args, **kwargs)

    monkeypatch.setattr(installer_module.PluginInstaller, "plan", slow_plan)
    monkeypatch.setattr(installer_module.PluginInstaller, "install", lambda self, plan: installed.append(plan))
    dialog.show()
    dialog.start(dialog.install(wheel))
    (task,) = dialog._tasks._running
    qtbot.waitUntil(planning.is_set, timeout=WAIT_MS)
    assert dialog.message.text().startswith("Checking")
    dialog.reject()
    qtbot.waitUntil(task.done, timeout=5000)  # at once, not when pip has answered
    assert task.cancelled()
    release.set()
    qtbot.wait(300)  # the dry run's thread ends; nothing of the install follows it
    assert dialog.asked == [] and installed == [] and not dialog.host.records


def test_switching_off_or_removing_a_plugin_says_how_many_of_its_threads_keep_running(qtbot, dialog, plugin_sandbox):  # noqa: ANN001
    from studio.core.environment import GeneratorEnvironment

    host, stop = dialog.host, plugin_sandbox / "stop"
    wheel = plugin_wheel(plugin_sandbox / "wheels", plugin_id="dlg-plugin", package="studio_tp_dlg",
                         generator_code=STARTS_THREADS.format(stop=str(stop)))
    unpack_plugin(host.plugins_dir, wheel, "dlg-plugin")
    host.refresh()
    host.set_enabled("dlg-plugin", True)
    try:
        host.registry.instance("generator", "test-gen", GeneratorEnvironment("cpu", plugin_sandbox / "d",
                                                                             plugin_sandbox / "c"))
        dialog.reload("dlg-plugin")
        dialog.toggle_button.click()  # Disable
        assert dialog.message.text() == ("Test Plugin is disabled. Its 3 background threads keep running until "
                                         "Studio restarts.")
        assert finished(qtbot, dialog.uninstall("dlg-plugin")) is True
        assert dialog.message.text() == ("Removed Test Plugin. Its modules stay loaded until Studio restarts. Its 3 "
                                         "background threads keep running until Studio restarts.")
    finally:
        stop.touch()


def test_the_empty_list_names_the_install_buttons_as_they_read(dialog):  # noqa: ANN001
    """The text said "Install from File…" while the button read "Install from File": each button the text
    names reads exactly so, and a button that opens a dialog (through its menu) ends with "…"."""
    import re

    from PySide6.QtWidgets import QPushButton

    assert dialog.tree.topLevelItemCount() == 0
    named = re.findall(r"<b>(.*?)</b>", dialog.details.text())
    buttons = [button.text() for button in dialog.findChildren(QPushButton)]
    assert named == ["Install from File…", "Install from Index…"]
    assert all(name in buttons for name in named), (named, buttons)
    assert all(action.text().endswith("…") for action in dialog.install_button.menu().actions())


def test_uninstalling_cancels_a_job_queued_while_asked_and_a_failed_removal_says_so(
        qtbot, dialog, plugin_sandbox, monkeypatch):  # noqa: ANN001
    """The live jobs were read before the question: one queued while it was open was not cancelled and ran against
    deleted files. And a removal that failed did not say the jobs it had cancelled were cancelled."""
    import errno

    from studio.plugin_host import installer as installer_module

    host = dialog.host
    wheel = plugin_wheel(plugin_sandbox / "wheels", plugin_id="dlg-plugin", package="studio_tp_dlg")
    unpack_plugin(host.plugins_dir, wheel, "dlg-plugin")
    host.refresh()
    dialog.reload()
    live: list[tuple[int, str, str]] = []
    cancelled: list[int] = []
    dialog.jobs_of = lambda plugin_id: list(live)
    dialog.cancel_job = cancelled.append

    def queued_while_asked(title: str, text: str, action: str | None = None) -> bool:
        live.append((7, "Filter: Blur", "queued"))
        return True

    def busy(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EBUSY, "Device or resource busy", str(host.plugins_dir / "dlg-plugin"))

    dialog.confirm = queued_while_asked
    monkeypatch.setattr(installer_module.tempfile, "mkdtemp", busy)
    assert finished(qtbot, dialog.uninstall("dlg-plugin")) is False
    assert cancelled == [7]
    assert dialog.message.text().startswith("Could not remove dlg-plugin")
    assert dialog.message.text().endswith(" Its job 'Filter: Blur' was cancelled.")
