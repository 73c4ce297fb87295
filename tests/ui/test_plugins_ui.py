"""Plugins in the window: a plugin generator in the picker with its own form, filters on the canvas (and
undo), the after-each-generation chain, the Plugins dialog, and safe mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from plugin_wheels import plugin_wheel
from studio_testing import unpack_plugin

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import StudioError
from studio.core.parameters import ImageParam
from studio.core.paths import studio_paths
from studio.plugin_host.host import DISABLED, ENABLED, SAFE_MODE, PluginHost
from studio.services.history_store import HistoryStore
from studio.services.jobs import JobService
from studio.services.outputs import OutputStore
from studio.ui.mnemonics import plain

WAIT_MS = 60_000
REPO = Path(__file__).resolve().parents[2]

GENERATOR = '''
from PIL import Image


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):
        for i in range(request.batch_count):
            context.report_progress(1, 1, i)
            yield Image.new("RGB", (request.width, request.height), (request.params["level"], 0, 0))


class Invert:
    def __init__(self, env):
        pass

    def process(self, image, params, context):
        return Image.eval(image, lambda v: 255 - v)
'''

MANIFEST_EXTRA = '''
[[generators.parameters]]
name = "level"
type = "int"
label = "Red level"
default = 90
min = 0
max = 255

[[postprocessors]]
id = "ui-invert"
title = "Invert colours"
description = "Turns every colour into its opposite."
target = "studio_tp_ui.generator:Invert"
'''


@pytest.fixture(scope="session")
def first_party_wheels(tmp_path_factory) -> list[Path]:  # noqa: ANN001
    """Wheels of the plugins in plugins/, built once (flit_core runs none of their code)."""
    out = tmp_path_factory.mktemp("first-party-wheels")
    for folder in ("studio-procedural", "studio-film"):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(out), str(REPO / "plugins" / folder)], check=True, timeout=120)
    return sorted(out.glob("*.whl"))


def _window(qtbot, settings, safe_mode: bool = False):  # noqa: ANN001, ANN202
    from studio.ui.main_window import MainWindow

    paths = studio_paths()
    host = PluginHost(paths.plugins_dir, safe_mode=safe_mode, scan_environment=False)
    host.refresh()
    history = HistoryStore(paths.data_dir / "history.db")
    service = JobService(None, GeneratorEnvironment("cpu", paths.data_dir, paths.cache_dir),
                         OutputStore(settings.outputs_dir), history=history, plugins=host)
    win = MainWindow(settings, service, paths.data_dir, history, paths.cache_dir)
    win.resize(1440, 900)  # a desktop's window; the offscreen screen is 800x800, and the first size fits a screen
    qtbot.addWidget(win)
    win.show()
    win.start()
    service.start()
    return win, history


def _plugin_window(qtbot, settings, plugin_sandbox, plugin_id: str, package: str, generator_id: str,  # noqa: ANN001
                   code: str, manifest: str):  # noqa: ANN202
    """A window with one plugin (its generator's code and manifest) installed and enabled; closed after the test."""
    paths = studio_paths()
    wheel = plugin_wheel(plugin_sandbox / "wheels", plugin_id=plugin_id, package=package, generator_id=generator_id,
                         generator_code=code, manifest_extra=manifest)
    unpack_plugin(paths.plugins_dir, wheel, plugin_id)
    host = PluginHost(paths.plugins_dir, scan_environment=False)
    host.refresh()
    host.set_enabled(plugin_id, True)
    win, history = _window(qtbot, settings)
    yield win
    win.close()
    win.service.cancel_all()
    win.service.shutdown(timeout=10)
    history.close()


@pytest.fixture
def plugin_window(qtbot, qt_loop, settings, plugin_sandbox):  # noqa: ANN001
    yield from _plugin_window(qtbot, settings, plugin_sandbox, "ui-plugin", "studio_tp_ui", "ui-gen", GENERATOR,
                              MANIFEST_EXTRA)


def _pick(panel, title: str) -> None:  # noqa: ANN001
    index = panel.model_combo.findText(title)
    assert index >= 0, f"{title!r} is not in the picker"
    panel.model_combo.setCurrentIndex(index)


def test_a_plugin_generator_is_picked_next_to_the_models_with_its_own_form(qtbot, plugin_window, settings):
    panel = plugin_window.prompt_panel
    items = [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]
    assert items[0] == "tiny-sd" and items[-1] == "Test generator"
    assert not panel.plugin_box.isVisible() and panel.scheduler_combo.isVisible()
    _pick(panel, "Test generator")
    assert panel.plugin_box.isVisible()
    assert not panel.scheduler_combo.isVisible() and not panel.negative_edit.isVisible()
    level = panel.plugin_box.form().editor("level")
    assert level.value() == 90
    level.setValue(33)
    panel.prompt_edit.setPlainText("a red field")
    plugin_window.generate()
    qtbot.waitUntil(lambda: bool(plugin_window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    assert plugin_window.canvas.image().getpixel((0, 0)) == (33, 0, 0)
    qtbot.waitUntil(lambda: plugin_window.gallery.model.rowCount() == 1, timeout=5000)
    (entry,) = plugin_window.history.search()
    assert (entry.generator, entry.generator_version) == ("ui-gen", "1.0.0")
    # The choice and its values are remembered in the settings.
    defaults = panel.defaults()
    assert defaults.generator == "ui-gen" and defaults.generator_params["ui-gen"] == {"level": 33}
    _pick(panel, "tiny-sd")
    assert not panel.plugin_box.isVisible() and panel.scheduler_combo.isVisible()


def test_a_filter_runs_on_the_canvas_and_undo_takes_it_back(qtbot, plugin_window):
    window = plugin_window
    window.document.set_image(Image.fromarray(np.full((64, 64, 3), 20, np.uint8)), "Open")
    titles = [plain(a.text()) for a in window.plugin_actions.menu.actions()]
    assert titles.index("Colour Transfer…") < titles.index("Invert colours…")  # Studio's own first
    contribution = window.service.registry.get("postprocessor", "ui-invert")
    seen = []

    def accept(dialog):  # noqa: ANN001, ANN202
        seen.append(dialog)
        assert "opposite" in dialog.about.text() and not dialog.after_each.isChecked()
        assert not dialog.masked.isEnabled()  # no mask painted
        return True

    window.plugin_actions.edit_dialog = accept
    window.plugin_actions.open_processor(contribution)
    assert seen
    qtbot.waitUntil(lambda: window.canvas.image().getpixel((0, 0)) == (235, 235, 235), timeout=WAIT_MS)
    assert window.document.history_labels()[-1] == "Filter: Invert colours"
    window.plugin_actions.compare.trigger()  # before/after
    assert window.canvas.has_preview()
    window.plugin_actions.compare.trigger()
    assert not window.canvas.has_preview()
    window.actions_.undo.trigger()
    assert window.canvas.image().getpixel((0, 0)) == (20, 20, 20)
    assert window.history.search() == []  # a canvas edit is not a generation
    # A picture parameter's "Canvas picture" is the picture itself (copying a 4096² one held the window), and the
    # job hands the plugin a copy: drawing on it cannot reach the canvas or its undo.
    canvas_source = dict(window.plugin_actions.image_sources())["Canvas picture"]
    assert canvas_source() is window.document.image
    assert ImageParam("style", "Style").check(canvas_source(), "Test") is not window.document.image


def test_after_each_generation_the_chain_is_applied(qtbot, plugin_window, settings):
    window = plugin_window
    contribution = window.service.registry.get("postprocessor", "ui-invert")
    window.document.set_image(Image.new("RGB", (64, 64)), "Open")
    window.plugin_actions.apply(contribution, {}, after_each=True)
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    assert [s.processor for s in settings.generation.post] == ["ui-invert"]
    _pick(window.prompt_panel, "Test generator")
    window.generate()
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == 2, timeout=WAIT_MS)
    assert window.canvas.image().getpixel((0, 0)) == (255 - 90, 255, 255)
    assert window.plugin_actions.chain_action.text() == "Post-processing &Chain… (1)"


def test_the_queue_names_a_filter_and_a_plugin_generator_as_their_menus_do(qtbot, plugin_window):
    # The queue said "Filter: ui-invert" and "ui-gen" where the Filters menu says "Invert colours" and the model
    # picker "Test generator" (a built-in filter read "Filter: color").
    window = plugin_window
    window.document.set_image(Image.new("RGB", (64, 64)), "Open")
    window.plugin_actions.apply(window.service.registry.get("postprocessor", "ui-invert"), {})
    _pick(window.prompt_panel, "Test generator")
    window.generate()
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == 2, timeout=WAIT_MS)
    rows = [window.queue_panel.list.item(i).text() for i in range(window.queue_panel.list.count())]
    assert "Filter: Invert colours\n64×64 · on the canvas" in rows[0]
    assert "\nTest generator · 64×64" in rows[1]


def test_the_plugins_dialog_lists_toggles_and_explains(qtbot, plugin_window, artifacts_dir):
    from studio.ui.plugins_dialog import PluginsDialog

    window = plugin_window
    host = window.service.plugins
    dialog = PluginsDialog(host, parent=window)
    qtbot.addWidget(dialog)
    dialog.confirm = lambda title, text, action=None: True
    dialog.show()
    assert dialog.tree.topLevelItemCount() == 1
    item = dialog.tree.topLevelItem(0)
    assert (item.text(0), item.text(1), item.text(2)) == ("Test Plugin", "1.0.0", ENABLED)
    assert "Invert colours" in dialog.details.text() and "Permissions" in dialog.details.text()
    assert dialog.toggle_button.text() == "Disable"
    dialog.toggle_button.click()
    assert host.record("ui-plugin").status == DISABLED
    # The window follows: the generator leaves the picker and the filter leaves the menu.
    qtbot.waitUntil(lambda: window.prompt_panel.model_combo.findText("Test generator") < 0, timeout=5000)
    assert "Invert colours…" not in [plain(a.text()) for a in window.plugin_actions.menu.actions()]
    dialog.toggle_button.click()
    qtbot.waitUntil(lambda: window.prompt_panel.model_combo.findText("Test generator") >= 0, timeout=5000)
    dialog.resize(860, 420)
    dialog.grab().save(str(artifacts_dir / "plugins-dialog.png"))


def test_switching_off_the_picked_generator_s_plugin_goes_back_to_stable_diffusion_and_says_so(  # noqa: ANN001
        qtbot, plugin_window, settings):
    from studio.ui.plugins_dialog import PluginsDialog

    window = plugin_window
    panel = window.prompt_panel
    _pick(panel, "Test generator")
    assert panel.plugin_box.isVisibleTo(panel) and not panel.lora_box.isVisibleTo(panel)
    dialog = PluginsDialog(window.service.plugins, parent=window)
    qtbot.addWidget(dialog)
    dialog.confirm = lambda title, text, action=None: True
    dialog.show()
    dialog.toggle_button.click()  # Disable, with its generator current
    qtbot.waitUntil(lambda: panel.model_combo.findText("Test generator") < 0, timeout=5000)
    # Stable Diffusion (the model listed) in its place, with its own controls, and a sentence naming the plugin.
    assert panel.selected_generator() is None and panel.model_combo.currentText() == "tiny-sd"
    assert not panel.plugin_box.isVisibleTo(panel)
    assert panel.lora_box.isVisibleTo(panel) and panel.negative_edit.isVisibleTo(panel)
    said = window.status.message_label.text()
    assert said == ("The plugin Test Plugin was switched off, so its generator Test generator left the model list; "
                    "tiny-sd (Stable Diffusion) is picked in its place.")
    panel.prompt_edit.setPlainText("x")
    assert panel.build_request(None).generator == "diffusers"
    dialog.toggle_button.click()  # on again: the person's pick is back, and the sentence no longer holds
    qtbot.waitUntil(lambda: panel.selected_generator() is not None, timeout=5000)
    assert panel.plugin_box.isVisibleTo(panel) and window.status.message_label.text() != said


def test_safe_mode_shows_plugins_but_loads_none(qtbot, qt_loop, settings, plugin_sandbox):
    paths = studio_paths()
    unpack_plugin(paths.plugins_dir, plugin_wheel(plugin_sandbox / "w", plugin_id="ui-plugin", package="studio_tp_ui",
                                                  generator_code=GENERATOR, manifest_extra=MANIFEST_EXTRA),
                  "ui-plugin")
    (paths.plugins_dir / "state.json").write_text('{"enabled": ["ui-plugin"]}')
    window, history = _window(qtbot, settings, safe_mode=True)
    try:
        assert window.service.plugins.record("ui-plugin").status == SAFE_MODE
        assert window.prompt_panel.model_combo.findText("Test generator") < 0
        assert "studio_tp_ui" not in sys.modules
    finally:
        window.close()
        window.service.shutdown(timeout=10)
        history.close()


def test_screenshot_with_the_procedural_generator(qtbot, qt_loop, settings, plugin_sandbox, first_party_wheels,
                                                  artifacts_dir):
    paths = studio_paths()
    host = PluginHost(paths.plugins_dir, scan_environment=False)
    for wheel in first_party_wheels:
        plugin_id = "studio-procedural" if "procedural" in wheel.name else "studio-film"
        unpack_plugin(paths.plugins_dir, wheel, plugin_id)
    host.refresh()
    for record in host.records:
        host.set_enabled(record.id, True)
    window, history = _window(qtbot, settings)
    try:
        panel = window.prompt_panel
        generator = next(c for c in window.service.registry.contributions("generator") if c.id != "diffusers")
        _pick(panel, generator.title)
        panel.prompt_edit.setPlainText("sunset over a teal ocean, marble")
        panel.set_size(512, 512)
        window.generate()
        qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
        assert window.canvas.image().size == (512, 512)
        assert len(window.plugin_actions.menu.actions()) > 3  # the film plugin's filters are there
        qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 1, timeout=5000)
        model = window.gallery.model
        qtbot.waitUntil(lambda: model.thumbnail(model.index(0)) is not None, timeout=5000)
        window.grab().save(str(artifacts_dir / "main-window-procedural.png"))
    finally:
        window.close()
        window.service.shutdown(timeout=10)
        history.close()


def test_install_and_uninstall_from_the_dialog(qtbot, plugin_window, plugin_sandbox):
    from studio.ui.plugins_dialog import PluginsDialog

    window = plugin_window
    host = window.service.plugins
    dialog = PluginsDialog(host, parent=window)
    qtbot.addWidget(dialog)
    asked: list[str] = []
    dialog.confirm = lambda title, text, action=None: asked.append(text) or True
    wheel = plugin_wheel(plugin_sandbox / "new", plugin_id="ui-new", package="studio_tp_new", generator_id="new-gen")
    task = window.actions_.run(dialog.install(wheel))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert task.result() == "Installed Test Plugin 1.0.0. Enable it to use it."
    assert "Test Plugin 1.0.0 (plugin id ui-new)" in asked[0] and "Installs no other packages." in asked[0]
    assert host.record("ui-new").status == DISABLED  # installing is not enabling
    assert dialog.tree.topLevelItemCount() == 2 and "Enable it to use it" in dialog.message.text()
    refused = window.actions_.run(dialog.install(plugin_sandbox / "nope.whl"))
    qtbot.waitUntil(refused.done, timeout=WAIT_MS)
    assert refused.result() is None and dialog.message.text()  # the sentence is shown
    task = window.actions_.run(dialog.uninstall("ui-new"))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert task.result() is True
    assert [r.id for r in host.records] == ["ui-plugin"]
    assert not (host.plugins_dir / "ui-new").exists()


def test_a_disk_error_while_installing_or_switching_is_a_sentence_and_the_buttons_come_back(  # noqa: ANN001
        qtbot, plugin_window, plugin_sandbox, monkeypatch):
    from studio.plugin_host import enabled_state as state_module
    from studio.plugin_host.installer import PluginInstaller
    from studio.ui.plugins_dialog import PluginsDialog

    window = plugin_window
    dialog = PluginsDialog(window.service.plugins, parent=window)
    qtbot.addWidget(dialog)

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(PluginInstaller, "plan", read_only)
    task = window.actions_.run(dialog.install(plugin_sandbox / "any.whl"))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert dialog.message.text() == f"Could not install into {dialog.host.plugins_dir}: Read-only file system."
    assert dialog.install_button.isEnabled() and dialog.index_button.isEnabled()  # not stuck at "Checking…"

    monkeypatch.setattr(state_module, "write_atomically", read_only)
    with pytest.raises(StudioError, match=r"^Could not save which plugins are on in .*: Read-only file system\.$"):
        dialog.host.set_enabled("ui-plugin", False)

    async def surprise() -> None:
        raise RuntimeError("nobody planned for this")

    dialog._busy("Working…")
    dialog.start(surprise())
    qtbot.waitUntil(lambda: dialog.message.text().startswith("That did not work"), timeout=5000)
    assert dialog.message.text() == "That did not work: nobody planned for this. Details are in studio.log."
    assert any(b.isEnabled() for b in dialog.action_buttons)


def test_the_index_address_is_asked_each_time_and_kept_only_once_it_worked(qtbot, plugin_window, tmp_path,  # noqa: ANN001
                                                                          monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    from studio.ui.plugins_dialog import PluginsDialog

    window = plugin_window
    dialog = PluginsDialog(window.service.plugins, index_url="https://example.invalid/index.json", parent=window)
    qtbot.addWidget(dialog)
    good = tmp_path / "index.json"
    good.write_text("[]")
    offered: list[str] = []
    answers = iter([str(tmp_path / "typo.json"), str(good)])
    monkeypatch.setattr(QInputDialog, "getText",
                        lambda *a, text="", **k: (offered.append(text), (next(answers), True))[1])
    for _ in range(2):
        task = window.actions_.run(dialog.browse_index())
        qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert offered == ["https://example.invalid/index.json", "https://example.invalid/index.json"]  # the typo: not kept
    assert dialog.index_url == str(good) and dialog.message.text() == f"The index {good} lists no plugins."


def test_update_says_which_index_entry_was_skipped_and_not_that_all_is_up_to_date(qtbot, plugin_window,  # noqa: ANN001
                                                                                tmp_path, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    from studio.ui.plugins_dialog import PluginsDialog

    window = plugin_window
    dialog = PluginsDialog(window.service.plugins, parent=window)
    qtbot.addWidget(dialog)
    index = tmp_path / "index.json"
    index.write_text(json.dumps([{"name": "ui-plugin", "version": "9.0", "url": "u.whl", "sha256": "12345"}]))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (str(index), True))
    task = window.actions_.run(dialog.update_all())
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert dialog.message.text() == (f"The plugin index {index}: entry 1 ('ui-plugin') was skipped because its "
                                     "sha256 is not 64 hexadecimal digits. No update was found in the entries that "
                                     "could be read.")


def test_the_install_question_shows_a_manifest_s_markup_as_text(qtbot):
    from studio.ui.task_dialog import question_box

    box = question_box(None, "Install plugin", "Install <b>Safe</b> 1.0<!--\nand 40 packages-->?")
    qtbot.addWidget(box)
    assert box.textFormat() == Qt.TextFormat.PlainText  # the text as written: nothing hidden, nothing restyled
    assert box.defaultButton() == box.button(QMessageBox.StandardButton.No)


PICTURE_GENERATOR = '''
from PIL import Image


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):
        colour = request.params["reference"].getpixel((0, 0)) if request.params["reference"] else (1, 2, 3)
        for i in range(request.batch_count):
            yield Image.new("RGB", (request.width, request.height), colour[:3])
'''

PICTURE_MANIFEST = '''
[[generators.parameters]]
name = "reference"
type = "image"
label = "Reference"
optional = true
'''


@pytest.fixture
def picture_window(qtbot, qt_loop, settings, plugin_sandbox):  # noqa: ANN001
    """A window whose plugin generator takes a picture."""
    yield from _plugin_window(qtbot, settings, plugin_sandbox, "ui-picture", "studio_tp_ui_picture", "ui-picture-gen",
                              PICTURE_GENERATOR, PICTURE_MANIFEST)


def test_a_plugin_generators_picture_file_is_read_off_the_window_thread_and_a_bad_one_is_said(
        qtbot, picture_window, tmp_path, monkeypatch):  # noqa: ANN001
    import threading
    import time

    window, panel = picture_window, picture_window.prompt_panel
    reference, bad = tmp_path / "reference.png", tmp_path / "bad.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(reference)
    bad.write_text("not a picture")
    real_open = Image.open
    read_on: list[bool] = []  # for each read of a chosen file: was it on the window's thread

    def opening(fp, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if Path(str(fp)) in (reference, bad):
            read_on.append(threading.current_thread() is threading.main_thread())
            time.sleep(0.2)  # a big file: a second Generate pressed meanwhile waits its turn
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", opening)
    _pick(panel, "Test generator")
    picker = panel.plugin_box.form().editor("reference")
    picker.set_path(reference)
    panel.prompt_edit.setPlainText("a green field")
    window.generate()
    picker.combo.setCurrentIndex(0)  # None: nothing to read, yet it goes after the one pressed first
    window.generate()
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == 2, timeout=WAIT_MS)
    assert read_on == [False]
    entries = sorted(window.history.search(), key=lambda e: e.id)
    assert [e.image_path and Image.open(e.image_path).getpixel((0, 0)) for e in entries] == [(10, 200, 30),
                                                                                           (1, 2, 3)]
    # A file that is no picture: the same sentence, nothing queued, the choice still there to change.
    picker.set_path(bad)
    window.generate()
    qtbot.waitUntil(panel.error_label.isVisible, timeout=WAIT_MS)
    assert panel.error_label.text() == "Reference: bad.png is not an image file Studio can read."
    assert read_on == [False, False] and len(window.queue_panel.job_ids("finished")) == 2
    assert picker.combo.currentData() == str(bad) and panel.prompt_edit.toPlainText() == "a green field"
    picker.set_path(reference)  # put right, it goes
    window.generate()
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == 3, timeout=WAIT_MS)
    assert not panel.error_label.isVisible()


def test_load_parameters_and_run_again_use_the_kept_copy_of_a_generator_s_picture(
        qtbot, picture_window, tmp_path):  # noqa: ANN001
    """A picture parameter was recorded as "<picture 32x32>": Load parameters showed it missing though its file was
    there, and Run again passed None and made another picture. The history now names a copy Studio kept: both use
    it, though the person's file is gone; an entry that only noted its picture is refused by Run again."""
    window, panel = picture_window, picture_window.prompt_panel
    blue = tmp_path / "blue.png"
    Image.new("RGB", (32, 24), (0, 0, 250)).save(blue)
    _pick(panel, "Test generator")
    picker = panel.plugin_box.form().editor("reference")
    picker.set_path(blue)
    panel.prompt_edit.setPlainText("a blue field")
    window.generate()
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == 1, timeout=WAIT_MS)
    (entry,) = window.history.search()
    blue.unlink()
    picker.combo.setCurrentIndex(0)  # None
    task = window.actions_.run(window.history_actions.load_parameters(entry))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert window.status.message_label.text() == "Loaded the parameters of that picture."
    assert panel.plugin_box.form().problems() == []
    chosen = panel.plugin_box.choices()["reference"]
    assert Image.open(chosen).getpixel((0, 0)) == (0, 0, 250)  # its kept copy, chosen again
    task = window.actions_.run(window.history_actions.run_again(entry))
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == 2, timeout=WAIT_MS)
    again = max(window.history.search(), key=lambda e: e.id)
    assert Image.open(again.image_path).getpixel((0, 0)) == (0, 0, 250)  # the same picture, not one made with None
    assert again.params["generator_params"] == entry.params["generator_params"] == {"reference": str(chosen)}

    entry.params["generator_params"] = {"reference": "<picture 32x24>"}  # as an older Studio recorded it
    task = window.actions_.run(window.history_actions.run_again(entry))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert window.status.message_label.text().startswith("The picture of its generator's parameter 'reference' was "
                                                         "not kept, so ")
    assert len(window.queue_panel.job_ids()) == 2  # nothing queued


def test_a_dropped_plugin_generator_picture_picks_its_generator_with_its_options(qtbot, plugin_window):
    # Its recipe names the generator's title as its model: the picker's "generator:ui-gen" was taken for a model
    # whose folder is gone, its steps 0 were refused, and Generate then ran the Stable Diffusion model kept.
    panel = plugin_window.prompt_panel
    _pick(panel, "Test generator")
    panel.plugin_box.form().editor("level").setValue(33)
    panel.prompt_edit.setPlainText("a red field")
    plugin_window.generate()
    qtbot.waitUntil(lambda: bool(plugin_window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    (entry,) = plugin_window.history.search()
    _pick(panel, "tiny-sd")
    panel.steps_spin.setValue(7)
    panel.prompt_edit.setPlainText("something else")
    panel.picture_dropped.emit(Path(entry.image_path))
    status = plugin_window.status.message_label
    name = Path(entry.image_path).name
    qtbot.waitUntil(lambda: f"Loaded the parameters of {name}" in status.text(), timeout=10_000)
    assert status.text() == f"Loaded the parameters of {name} (made by Studio)."
    assert panel.model_combo.currentText() == "Test generator" and panel.prompt_edit.toPlainText() == "a red field"
    assert panel.plugin_box.form().editor("level").value() == 33 and panel.steps_spin.value() == 7
    plugin_window.generate()
    qtbot.waitUntil(lambda: len(plugin_window.queue_panel.job_ids("finished")) == 2, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(plugin_window.history.search()) == 2, timeout=5000)
    assert plugin_window.history.search()[0].generator == "ui-gen"


def test_a_dropped_stable_diffusion_picture_of_a_model_not_listed_does_not_run_the_plugin_generator(
        qtbot, plugin_window, tmp_path):  # noqa: ANN001
    from PIL.PngImagePlugin import PngInfo

    panel = plugin_window.prompt_panel
    _pick(panel, "Test generator")
    text = PngInfo()
    text.add_text("parameters", "a castle\nSteps: 12, Sampler: Euler a, CFG scale: 6, Seed: 5, Size: 64x64, "
                                "Model: nowhere")
    Image.new("RGB", (64, 64)).save(tmp_path / "x.png", pnginfo=text)
    panel.picture_dropped.emit(tmp_path / "x.png")
    status = plugin_window.status.message_label
    qtbot.waitUntil(lambda: "Loaded the parameters of x.png" in status.text(), timeout=10_000)
    assert status.text() == ("Loaded the parameters of x.png (made by AUTOMATIC1111). The model 'nowhere' it names "
                             "is not in the model list, and Test generator would make another kind of picture, so "
                             "nothing is selected now; choose a model in the list above.")
    assert panel.model_combo.currentIndex() == -1
    plugin_window.generate()
    assert panel.error_label.text() == "Choose a model or generator in the list above first."
    assert not plugin_window.queue_panel.job_ids("queued") and not plugin_window.history.search()


def _gone_model(qtbot, window, tmp_path: Path) -> Path:  # noqa: ANN001
    """A model listed while it was there, its folder gone since; the plugin generator current."""
    from studio.core.model_library import ModelEntry

    qtbot.waitUntil(lambda: window.models._scanned, timeout=10_000)  # the first scan's list would replace it
    panel = window.prompt_panel
    gone = tmp_path / "models" / "gone model"
    panel.set_models([ModelEntry("gone model", gone)], "", str(tmp_path / "models"))
    _pick(panel, "Test generator")
    return gone


def _generate_asks_for_a_model(window) -> None:  # noqa: ANN001
    assert window.prompt_panel.model_combo.currentIndex() == -1
    window.generate()
    assert window.prompt_panel.error_label.text() == "Choose a model or generator in the list above first."
    assert not window.queue_panel.job_ids("queued") and not window.history.search()


def test_load_parameters_of_a_gone_model_s_picture_does_not_run_the_plugin_generator(  # noqa: ANN001
        qtbot, plugin_window, tmp_path):
    from studio.services.history_store import HistoryEntry

    gone = _gone_model(qtbot, plugin_window, tmp_path)
    entry = HistoryEntry("a gone-model dog", model_name="gone model", model_path=str(gone), seed=3, steps=4,
                         width=64, height=64, id=5)
    task = plugin_window.actions_.run(plugin_window.history_actions.load_parameters(entry))
    qtbot.waitUntil(task.done, timeout=10_000)
    assert plugin_window.status.message_label.text() == (
        f"Loaded the parameters of that picture. The model gone model is gone, and Test generator would make another "
        f"kind of picture, so nothing is selected now; {gone} no longer exists; choose a model in the list above.")
    _generate_asks_for_a_model(plugin_window)


def test_a_dropped_picture_of_a_gone_model_does_not_run_the_plugin_generator(qtbot, plugin_window, tmp_path):  # noqa: ANN001
    from PIL.PngImagePlugin import PngInfo

    gone = _gone_model(qtbot, plugin_window, tmp_path)
    text = PngInfo()
    text.add_text("parameters", "a castle\nSteps: 12, Sampler: Euler a, CFG scale: 6, Seed: 5, Size: 64x64, "
                                "Model: gone model")
    Image.new("RGB", (64, 64)).save(tmp_path / "x.png", pnginfo=text)
    plugin_window.prompt_panel.picture_dropped.emit(tmp_path / "x.png")
    status = plugin_window.status.message_label
    qtbot.waitUntil(lambda: "Loaded the parameters of x.png" in status.text(), timeout=10_000)
    assert status.text() == (
        f"Loaded the parameters of x.png (made by AUTOMATIC1111). The model gone model is gone, and Test generator "
        f"would make another kind of picture, so nothing is selected now; {gone} no longer exists; choose a model in "
        f"the list above.")
    _generate_asks_for_a_model(plugin_window)
