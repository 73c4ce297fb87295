"""Plugins changed outside the window (``studio plugins install``/``disable`` on the same home while the window is
open): the window takes the change in when the Filters menu or the Plugins dialog opens and before a plugin job,
so its next job runs the new code, or does not run a plugin that is off."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from plugin_wheels import plugin_wheel
from studio_testing import studio_here
from test_plugins_ui import GENERATOR, MANIFEST_EXTRA, WAIT_MS, _plugin_window

from studio.plugin_host.host import DISABLED

INVERT_V2 = GENERATOR.replace("return Image.eval(image, lambda v: 255 - v)",
                              "return Image.new(image.mode, image.size, (7, 7, 7))")


@pytest.fixture
def window(qtbot, qt_loop, settings, plugin_sandbox):  # noqa: ANN001
    yield from _plugin_window(qtbot, settings, plugin_sandbox, "ui-plugin", "studio_tp_ui", "ui-gen", GENERATOR,
                              MANIFEST_EXTRA)


def _filter(qtbot, window) -> int:  # noqa: ANN001
    """Run Invert colours on a grey canvas as the menu's entry does; the finished jobs then."""
    window.document.set_image(Image.fromarray(np.full((32, 32, 3), 20, np.uint8)), "Open")
    finished = len(window.queue_panel.job_ids("finished"))
    contribution = window.service.registry.get("postprocessor", "ui-invert")
    window.plugin_actions.apply(contribution, {})
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) > finished, timeout=WAIT_MS)
    return window.document.image.getpixel((0, 0))


def test_an_update_from_the_command_line_is_run_by_the_window_s_next_job(qtbot, window, plugin_sandbox, capsys):
    assert _filter(qtbot, window) == (235, 235, 235)  # version 1 imported and used
    v2 = plugin_wheel(plugin_sandbox / "v2", plugin_id="ui-plugin", package="studio_tp_ui", version="2.0.0",
                      generator_id="ui-gen", generator_code=INVERT_V2, manifest_extra=MANIFEST_EXTRA)
    done = studio_here(capsys, "plugins", "install", str(v2), "-y")
    assert done.returncode == 0, done.stdout + done.stderr
    contribution = window.service.registry.get("postprocessor", "ui-invert")
    window.document.set_image(Image.fromarray(np.full((32, 32, 3), 20, np.uint8)), "Open")
    window.plugin_actions.apply(contribution, {})  # the entry the menu had before the update
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == 2, timeout=WAIT_MS)
    assert window.document.image.getpixel((0, 0)) == (7, 7, 7)
    assert window.service.plugins.record("ui-plugin").version == "2.0.0"


def test_the_plugins_dialog_shows_what_the_command_line_changed(qtbot, window, capsys):
    assert studio_here(capsys, "plugins", "disable", "ui-plugin").returncode == 0
    window.plugin_actions.open_dialog()
    dialog = window.plugin_actions.dialog
    item = dialog.tree.topLevelItem(0)
    assert (item.text(0), item.text(2)) == ("Test Plugin", DISABLED)
    assert dialog.toggle_button.text() == "Enable"
    dialog.reject()


def test_a_filter_switched_off_outside_leaves_the_menu_when_it_opens_and_does_not_run(qtbot, window, capsys,
                                                                                      monkeypatch):
    """The menu took the change in on the window's thread as it opened (discovery and the package scan: 60-290 ms);
    it does so in a worker now, and the menu is rebuilt when that is done."""
    import threading

    window.document.set_image(Image.fromarray(np.full((32, 32, 3), 20, np.uint8)), "Open")
    contribution = window.service.registry.get("postprocessor", "ui-invert")
    assert studio_here(capsys, "plugins", "disable", "ui-plugin").returncode == 0
    host, refreshed_in = window.service.plugins, []
    looked = host.refresh_if_changed

    def noting_thread() -> bool:
        changed = looked()
        refreshed_in.append((threading.current_thread(), changed))
        return changed

    monkeypatch.setattr(host, "refresh_if_changed", noting_thread)
    def entries() -> list[str]:
        return [action.text().replace("&", "") for action in window.plugin_actions.menu.actions()]

    assert "Invert colours…" in entries()  # (its mnemonic's "&" left out: "not in" held without it either way)
    window.plugin_actions.menu.aboutToShow.emit()
    qtbot.waitUntil(lambda: "Invert colours…" not in entries(), timeout=WAIT_MS)
    assert [changed for thread, changed in refreshed_in if thread is not threading.main_thread()] == [True]
    assert window.plugin_actions.apply(contribution, {}) is None  # a dialog opened before still offers it
    assert window.status.message_label.text() == ("Invert colours did not run: its plugin Test Plugin was switched "
                                                  "off or removed; the picture is unchanged.")
    assert window.document.image.getpixel((0, 0)) == (20, 20, 20)


def test_generate_with_a_generator_switched_off_outside_runs_nothing_and_says_so(qtbot, window, capsys):
    from test_plugins_ui import _pick

    panel = window.prompt_panel
    _pick(panel, "Test generator")
    panel.prompt_edit.setPlainText("x")
    assert studio_here(capsys, "plugins", "disable", "ui-plugin").returncode == 0
    window.generate()
    assert window.queue_panel.list.count() == 0  # not run with Stable Diffusion in its place unasked
    assert window.status.message_label.text().startswith(
        "The plugin Test Plugin was switched off, so its generator Test generator left the model list;")
