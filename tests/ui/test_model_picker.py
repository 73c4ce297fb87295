"""The model picker when what was picked leaves the list (a plugin switched off, a model removed): it goes to the
last model used, else the first model, else to nothing, and never to a plugin generator nobody picked. When nothing
was ever picked (a first run), the first entry is current, a plugin generator too."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_wheels import DEFAULT_GENERATOR, plugin_wheel
from studio_testing import unpack_plugin

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest
from studio.core.model_library import ModelEntry
from studio.core.paths import studio_paths
from studio.core.settings import load_settings
from studio.plugin_host.host import MAX_FAILURES, PluginHost
from studio.plugin_host.registry import GENERATOR, Contribution
from studio.services.history_store import HistoryStore
from studio.services.jobs import JobService
from studio.services.outputs import OutputStore
from studio.ui.prompt_panel import PromptPanel

WAIT_MS = 60_000
RAISER = DEFAULT_GENERATOR.replace("yield Image.new", "raise RuntimeError('boom')\n            yield Image.new")
CHOOSE = "Choose a model or generator in the list above first."


def _generator(plugin_id: str) -> Contribution:
    return Contribution(GENERATOR, f"{plugin_id}-gen", plugin_id.title(), "x:y", plugin_id=plugin_id)


def test_a_generator_leaving_the_list_gives_way_to_the_last_model_used(qtbot, qt_loop, tmp_path):  # noqa: ANN001
    panel = PromptPanel()
    qtbot.addWidget(panel)
    alpha, bravo = ModelEntry("alpha", tmp_path / "alpha"), ModelEntry("bravo", tmp_path / "bravo")
    panel.set_models([alpha, bravo], str(bravo.path), str(tmp_path))
    one, two = _generator("one"), _generator("two")
    panel.set_generators([one, two])
    assert panel.model_picker.select_generator("one-gen")
    panel.set_generators([two])  # one's plugin was switched off
    assert panel.selected_generator() is None and panel.selected_model() == str(bravo.path)
    panel.set_generators([one, two])  # on again, before anything else was picked: the person's pick is back
    assert panel.selected_generator().id == "one-gen"


def test_a_generator_whose_plugin_failed_stays_current_marked_off_and_comes_back(  # noqa: ANN001
        qtbot, qt_loop, tmp_path):
    panel = PromptPanel()
    qtbot.addWidget(panel)
    alpha = ModelEntry("alpha", tmp_path / "alpha")
    panel.set_models([alpha], str(alpha.path), str(tmp_path))
    one, two = _generator("one"), _generator("two")
    panel.set_generators([one, two])
    assert panel.model_picker.select_generator("one-gen")
    why = "The plugin One was switched off until Studio restarts because it failed 3 times."
    panel.set_generators([two], {"one": why})
    assert panel.model_combo.currentText() == "One (switched off)" and panel.selected_model() == ""
    panel.prompt_edit.setPlainText("x")
    with pytest.raises(InvalidRequest) as err:  # not Stable Diffusion in its place
        panel.build_request(None)
    assert str(err.value) == f"One cannot run now. {why} Choose another model or generator in the list above."
    panel.set_generators([one, two])  # fixed and on again: the person's pick is back
    assert panel.selected_generator().id == "one-gen"


def test_without_models_a_generator_leaving_the_list_leaves_nothing_picked(qtbot, qt_loop, tmp_path):  # noqa: ANN001
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.set_models([], "", str(tmp_path))
    panel.set_generators([_generator("one"), _generator("two")])
    assert panel.model_picker.select_generator("one-gen")
    panel.set_generators([_generator("two")])
    assert panel.model_combo.currentIndex() == -1 and panel.selected_generator() is None
    assert panel.model_combo.placeholderText() == "Choose a model or generator"
    panel.prompt_edit.setPlainText("x")
    with pytest.raises(InvalidRequest) as err:
        panel.build_request(None)
    assert str(err.value) == CHOOSE


def test_a_generator_switched_off_for_failing_is_not_replaced_by_another_plugin_s(  # noqa: ANN001
        qtbot, qt_loop, studio_home: Path, plugin_sandbox: Path):
    paths = studio_paths()
    window, service, history, _host = _window_with_plugins(
        qtbot, paths, plugin_sandbox, ("boom-plugin", "other-plugin"),
        installed=(("boom-plugin", RAISER), ("other-plugin", DEFAULT_GENERATOR)))
    window.show()
    window.start()
    service.start()
    try:
        panel = window.prompt_panel
        assert panel.model_picker.select_generator("boom-plugin-gen")
        panel.prompt_edit.setPlainText("x")
        for failed in range(1, MAX_FAILURES + 1):
            window.generate()
            qtbot.waitUntil(lambda n=failed: len(window.queue_panel.job_ids("failed")) == n, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: not panel.model_picker.lists_generator("boom-plugin-gen"), timeout=WAIT_MS)
        assert panel.model_picker.lists_generator("other-plugin-gen")
        # Still listed, marked off, current, greyed (not pickable again), and why in its tooltip.
        combo = panel.model_combo
        assert combo.currentText().endswith(" (switched off)")
        assert panel.selected_generator() is None and panel.selected_model() == ""
        assert not combo.model().item(combo.currentIndex()).isEnabled()
        why = f"was switched off until Studio restarts because it failed {MAX_FAILURES} times"
        assert why in combo.toolTip()
        window.generate()  # nothing runs: neither the other plugin nobody picked nor a model
        assert why in panel.error_label.text() and "Choose another model or generator" in panel.error_label.text()
        assert window.queue_panel.job_ids("finished") == [] and len(window.queue_panel.job_ids("failed")) == 3
        assert panel.model_picker.select_generator("other-plugin-gen")  # picking another one is refused no more
        assert not panel.model_picker.switched_off_refusal()
    finally:
        window.close()
        service.cancel_all()
        service.shutdown(timeout=10)
        history.close()


def _window_with_plugins(qtbot, paths, plugin_sandbox: Path, enabled: tuple[str, ...],  # noqa: ANN001, ANN202
                         installed: tuple[tuple[str, str], ...] = (("other-plugin", DEFAULT_GENERATOR),)):
    """A main window on fresh settings (no model ever chosen, no models) with ``installed`` (plugin id, its
    generator's code) installed, ``enabled`` of them on."""
    from studio.ui.main_window import MainWindow

    for plugin_id, code in installed:
        wheel = plugin_wheel(plugin_sandbox / "wheels" / plugin_id, plugin_id=plugin_id,
                             package=f"studio_tp_{plugin_id.split('-')[0]}", generator_id=f"{plugin_id}-gen",
                             generator_code=code)
        unpack_plugin(paths.plugins_dir, wheel, plugin_id)
    host = PluginHost(paths.plugins_dir, scan_environment=False)
    host.refresh()
    for plugin_id in enabled:
        host.set_enabled(plugin_id, True)
    settings = load_settings(paths)
    settings.generation.width = settings.generation.height = 64
    history = HistoryStore(paths.data_dir / "history.db")
    service = JobService(None, GeneratorEnvironment("cpu", paths.data_dir, paths.cache_dir),
                         OutputStore(settings.outputs_dir), history=history, plugins=host)
    window = MainWindow(settings, service, paths.data_dir, history, paths.cache_dir)
    qtbot.addWidget(window)
    return window, service, history, host


def test_first_run_with_no_models_picks_the_one_plugin_generator(  # noqa: ANN001
        qtbot, qt_loop, studio_home: Path, plugin_sandbox: Path):
    paths = studio_paths()
    window, service, history, _host = _window_with_plugins(qtbot, paths, plugin_sandbox, ("other-plugin",))
    assert window.settings.generation.model == "" and window.settings.generation.generator == "diffusers"
    window.show()
    window.start()
    service.start()
    try:
        panel = window.prompt_panel
        qtbot.waitUntil(lambda: panel.model_picker.lists_generator("other-plugin-gen"), timeout=WAIT_MS)
        window.models.refresh()  # the library scan answers with no models: the pick stays
        qtbot.waitUntil(lambda: panel.model_picker.hint.isVisibleTo(panel), timeout=WAIT_MS)
        assert panel.selected_generator().id == "other-plugin-gen"
        assert panel.model_combo.currentText() == "Test generator"
        panel.prompt_edit.setPlainText("x")
        window.generate()
        qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
        assert panel.error_label.text() == ""
    finally:
        window.close()
        service.cancel_all()
        service.shutdown(timeout=10)
        history.close()


def test_enabling_a_plugin_with_no_models_picks_its_generator(  # noqa: ANN001
        qtbot, qt_loop, studio_home: Path, plugin_sandbox: Path):
    paths = studio_paths()
    window, service, history, host = _window_with_plugins(qtbot, paths, plugin_sandbox, ())
    window.show()
    window.start()
    try:
        panel = window.prompt_panel
        assert panel.model_combo.count() == 0 and not panel.model_combo.isEnabled()
        host.set_enabled("other-plugin", True)  # as the Plugins dialog does
        qtbot.waitUntil(lambda: panel.model_picker.lists_generator("other-plugin-gen"), timeout=WAIT_MS)
        assert panel.selected_generator().id == "other-plugin-gen" and panel.model_combo.isEnabled()
        panel.prompt_edit.setPlainText("x")
        assert panel.build_request(None).generator == "other-plugin-gen"
    finally:
        window.close()
        service.shutdown(timeout=10)
        history.close()


def test_with_nothing_wanted_the_first_entry_is_current(qtbot, qt_loop, tmp_path):  # noqa: ANN001
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.set_models([], "", str(tmp_path))
    assert panel.model_combo.currentIndex() == -1
    panel.set_generators([_generator("one"), _generator("two")])
    assert panel.selected_generator().id == "one-gen"
    alpha = ModelEntry("alpha", tmp_path / "alpha")
    panel.set_models([alpha], "", str(tmp_path))  # a library scan keeps what is shown
    assert panel.selected_generator().id == "one-gen"


def test_a_model_listed_after_a_no_model_refusal_clears_it(  # noqa: ANN001
        qtbot, qt_loop, studio_home: Path, plugin_sandbox: Path):
    """First run: Generate with no model is refused; once a model is imported (a scan lists it and the picker
    selects it) the refusal no longer holds and goes. A rescan that keeps the pick keeps a refusal that still does."""
    paths = studio_paths()
    window, service, history, _host = _window_with_plugins(qtbot, paths, plugin_sandbox, (), installed=())
    window.show()
    window.start()
    service.start()
    try:
        panel = window.prompt_panel
        panel.prompt_edit.setPlainText("a cat")
        window.generate()
        assert "No model is selected" in panel.error_label.text() and panel.error_label.isVisible()
        model = window.settings.models_dir / "tiny-sd"
        model.mkdir(parents=True)
        (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
        window.models.refresh()  # as the Model Library does once an import or download is done
        qtbot.waitUntil(lambda: panel.selected_model() == str(model), timeout=WAIT_MS)
        assert not panel.error_label.isVisible()
        panel.seed_edit.setText("9" * 40)
        window.generate()
        assert panel.error_label.isVisible()
        refusal = panel.error_label.text()
        with qtbot.waitSignal(panel.model_picker.selection_changed, timeout=WAIT_MS):
            window.models.refresh()  # the same model stays picked: the seed is still too large
        assert panel.selected_model() == str(model)
        assert panel.error_label.isVisible() and panel.error_label.text() == refusal
    finally:
        window.close()
        service.cancel_all()
        service.shutdown(timeout=10)
        history.close()


def test_first_run_without_models_says_to_add_one_until_one_is_listed(  # noqa: ANN001
        qtbot, qt_loop, studio_home: Path, plugin_sandbox: Path):
    """With nothing to generate with, "press Generate" would only be refused: the status line and the empty canvas
    say the first step (add a model) instead, until a model is listed. The engine, up without a model, shows its
    device in place of "Engine starting…"."""
    from studio.ui.canvas_painting import EMPTY_CANVAS_HINT, NO_MODEL_CANVAS_HINT
    from studio.ui.model_actions import ADD_A_MODEL_FIRST
    from studio.ui.status_bar import ENGINE_STARTING

    paths = studio_paths()
    window, service, history, _host = _window_with_plugins(qtbot, paths, plugin_sandbox, (), installed=())
    window.show()
    window.start()
    service.start()
    try:
        status, canvas = window.status, window.canvas
        qtbot.waitUntil(lambda: status.message_label.text() == ADD_A_MODEL_FIRST, timeout=WAIT_MS)
        assert canvas.empty_hint == NO_MODEL_CANVAS_HINT
        qtbot.waitUntil(lambda: status.device_label.text() != ENGINE_STARTING, timeout=WAIT_MS)
        assert status.device_label.text().startswith("CPU")
        model = window.settings.models_dir / "tiny-sd"
        model.mkdir(parents=True)
        (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
        window.models.refresh()
        qtbot.waitUntil(lambda: canvas.empty_hint == EMPTY_CANVAS_HINT, timeout=WAIT_MS)
        assert status.message_label.text() == "tiny-sd is in the model list: write a prompt and press Generate " \
                                              "(Ctrl+Enter)."
    finally:
        window.close()
        service.cancel_all()
        service.shutdown(timeout=10)
        history.close()


def test_a_model_deleted_since_the_list_was_read_goes_from_the_list_as_it_opens(  # noqa: ANN001
        qtbot, qt_loop, studio_home: Path, plugin_sandbox: Path):
    """Nothing watches the models folders: a deleted model stayed listed until a Generate with it was refused. The
    listed models are checked (a stat each, off the window's thread) as the list opens, and one found gone has the
    library scanned again (it stayed in the lists filled from the scan until the next one)."""
    import shutil

    paths = studio_paths()
    window, service, history, _host = _window_with_plugins(qtbot, paths, plugin_sandbox, (), installed=())
    window.show()
    window.start()
    try:
        panel = window.prompt_panel
        kept, doomed = (window.settings.models_dir / name for name in ("kept", "doomed"))
        for model in (kept, doomed):
            model.mkdir(parents=True)
            (model / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
        window.models.refresh()
        qtbot.waitUntil(lambda: panel.model_combo.findData(str(doomed)) >= 0, timeout=WAIT_MS)
        assert panel.model_picker.select_model(str(doomed))
        shutil.rmtree(doomed)
        scans = window.models._library_scans
        panel.model_combo.showPopup()
        qtbot.waitUntil(lambda: panel.model_combo.findData(str(doomed)) < 0, timeout=WAIT_MS)
        panel.model_combo.hidePopup()
        assert panel.selected_model() == str(kept)
        assert window.status.message_label.text() == "The model doomed is gone; removed it from the list."
        # A stat of the ones listed as it opens; one found gone has the library looked through again, so the other
        # lists from its scan (LoRAs, VAEs, guides, upscalers) lose what went with it, as Generate's refusal does.
        assert window.models._library_scans == scans + 1
        qtbot.waitUntil(lambda: str(doomed) not in panel.model_picker.listed_model_paths(), timeout=WAIT_MS)
    finally:
        window.close()
        service.shutdown(timeout=10)
        history.close()


def test_a_stable_diffusion_recipe_whose_model_is_not_listed_never_leaves_a_plugin_generator_current(  # noqa: ANN001
        qtbot, qt_loop, tmp_path):
    # Loaded while the only item was a plugin generator, "kept the current one" left it current, and Generate made
    # that generator's picture of the prompt; with nothing listed, "the current one" was none.
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.prompt_edit.setPlainText("x")
    panel.set_models([], "", str(tmp_path))
    assert panel.fill(model_path=str(tmp_path / "tiny-sd")) == [
        "The model tiny-sd is not in the model list, and no model is selected; add it in the Model Library (the "
        "folder button above), or choose one."]
    panel.set_generators([_generator("one")])
    assert panel.selected_generator().id == "one-gen"  # a first run: the only item is current
    assert panel.fill(model_path=str(tmp_path / "tiny-sd"), steps=12) == [
        "The model tiny-sd is not in the model list, and One would make another kind of picture, so nothing is "
        "selected now; choose a model in the list above."]
    assert panel.selected_generator() is None and panel.model_combo.currentIndex() == -1
    with pytest.raises(InvalidRequest, match=CHOOSE):
        panel.build_request(None)
    alpha = ModelEntry("alpha", tmp_path / "alpha")
    panel.set_models([alpha], str(alpha.path), str(tmp_path))
    assert panel.fill(model_path=str(tmp_path / "tiny-sd")) == [
        "The model tiny-sd is not in the model list; kept the current one."]
    assert panel.selected_model() == str(alpha.path)
