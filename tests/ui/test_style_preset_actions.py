"""Prompt styles, and generation presets: the model, size, sampling and post-processing chain saved under a name,
applied later without touching the prompt, and kept in the settings file."""

from __future__ import annotations

from studio.core.paths import studio_paths
from studio.core.settings import load_settings
from studio.core.settings_sections import PostStepSetting


def test_a_preset_keeps_settings_and_chain_but_not_the_prompt(qtbot, window, settings, tmp_path):
    panel, actions = window.prompt_panel, window.history_actions
    panel.set_size(256, 192)
    panel.steps_spin.setValue(7)
    panel.scheduler_combo.setCurrentText("DPM++ 2M Karras")
    reference = tmp_path / "ref.png"
    settings.generation.post = [PostStepSetting(processor="histogram", params={"style": str(reference)},
                                                strength=0.4)]
    panel.prompt_edit.setPlainText("a saved prompt")
    actions.add_preset("Small DPM")
    menu_items = [a.text() for a in panel.presets_button.menu().actions()]
    assert menu_items[0] == "Small DPM" and "Save Current Settings as Preset…" in menu_items

    panel.set_size(512, 512)
    panel.steps_spin.setValue(30)
    panel.scheduler_combo.setCurrentText("Euler")
    window.plugin_actions.set_chain([])
    panel.prompt_edit.setPlainText("a new prompt")
    panel.seed_edit.setText("77")
    (preset,) = settings.presets
    actions.apply_preset(preset)
    assert (panel.width_spin.value(), panel.height_spin.value(), panel.steps_spin.value()) == (256, 192, 7)
    assert panel.scheduler_combo.currentText() == "DPM++ 2M Karras"
    assert panel.prompt_edit.toPlainText() == "a new prompt" and panel.seed_edit.text() == "77"
    assert [(s.processor, s.strength) for s in settings.generation.post] == [("histogram", 0.4)]
    assert window.plugin_actions.chain_action.text().endswith("(1)")

    saved = load_settings(studio_paths())  # written to the settings file, chain included
    assert [p.name for p in saved.presets] == ["Small DPM"]
    assert saved.presets[0].generation.post[0].params == {"style": str(reference)}
    assert saved.presets[0].generation.prompt == ""  # a preset is not a prompt
    actions.delete_preset(preset)
    assert settings.presets == [] and load_settings(studio_paths()).presets == []


def test_a_name_with_an_ampersand_shows_as_written(qtbot, window):  # noqa: ANN001
    window.history_actions.add_preset("Black & White")
    (action,) = [a for a in window.prompt_panel.presets_button.menu().actions() if "White" in a.text()]
    assert action.text() == "Black && White"  # Qt shows "&&" as one "&" ("&" alone marks a shortcut key)
    assert action.iconText() == "Black & White"


def test_a_preset_whose_plugin_generator_is_gone_says_so_and_keeps_the_model(qtbot, window, settings):  # noqa: ANN001
    from studio.core.settings_sections import GenerationPreset

    panel = window.prompt_panel
    model = panel.model_combo.currentText()
    steps = panel.defaults().model_copy(update={"generator": "gone-gen", "steps": 9})
    window.history_actions.apply_preset(GenerationPreset(name="Red plugin", generation=steps))
    assert panel.model_combo.currentText() == model and panel.steps_spin.value() == 9
    assert window.status.message_label.text() == ("Applied the preset 'Red plugin'. The generator 'gone-gen' is not "
                                                  "installed and enabled; kept the current one.")


def _answering(monkeypatch, name: str, answer) -> list[str]:  # noqa: ANN001
    """The name dialog answers ``name``; each yes/no question is recorded and answered ``answer``."""
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    asked: list[str] = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (name, True))
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a: asked.append(text) or answer)
    return asked


def _started(window, monkeypatch) -> list:  # noqa: ANN001
    """The tasks the window starts from here on, to wait for one that ends changing nothing."""
    tasks: list = []
    run = window.actions_.run
    monkeypatch.setattr(window.actions_, "run", lambda coro: tasks.append(run(coro)) or tasks[-1])
    return tasks


def _menu_action(button, text: str):  # noqa: ANN001, ANN202
    return next(a for a in button.menu().actions() if a.text() == text)


def _delete_action(button, name: str):  # noqa: ANN001, ANN202
    (submenu,) = [a.menu() for a in button.menu().actions() if a.text().startswith("Delete")]
    return next(a for a in submenu.actions() if a.text() == name)


def test_saving_a_style_or_preset_over_one_of_the_same_name_asks_first(qtbot, window, monkeypatch):  # noqa: ANN001
    from PySide6.QtWidgets import QMessageBox

    panel, actions = window.prompt_panel, window.history_actions
    tasks = _started(window, monkeypatch)
    actions.add_style("Ink", "ink {prompt}", "color")
    panel.steps_spin.setValue(7)
    actions.add_preset("Fast")
    panel.prompt_edit.setPlainText("pencil {prompt}")
    panel.steps_spin.setValue(12)
    for answer, style_prompt, preset_steps in ((QMessageBox.StandardButton.No, "ink {prompt}", 7),
                                               (QMessageBox.StandardButton.Yes, "pencil {prompt}", 12)):
        asked = _answering(monkeypatch, "Ink", answer)
        _menu_action(panel.styles_button, "Save Current Prompt as Style…").trigger()
        qtbot.waitUntil(lambda: len(asked) == 1, timeout=5000)
        assert asked == ["A style named 'Ink' exists; replace it?"]
        qtbot.waitUntil(lambda: all(t.done() for t in tasks), timeout=5000)
        assert [s.prompt for s in window.settings.styles] == [style_prompt]

        asked = _answering(monkeypatch, "Fast", answer)
        _menu_action(panel.presets_button, "Save Current Settings as Preset…").trigger()
        qtbot.waitUntil(lambda: len(asked) == 1, timeout=5000)
        assert asked == ["A preset named 'Fast' exists; replace it?"]
        qtbot.waitUntil(lambda: all(t.done() for t in tasks), timeout=5000)
        assert [p.generation.steps for p in window.settings.presets] == [preset_steps]
    asked = _answering(monkeypatch, "New", QMessageBox.StandardButton.No)  # a new name is not asked about
    _menu_action(panel.presets_button, "Save Current Settings as Preset…").trigger()
    qtbot.waitUntil(lambda: len(window.settings.presets) == 2, timeout=5000)
    assert asked == []


def _answering_delete(monkeypatch, answer: bool) -> list[tuple[str, str]]:  # noqa: ANN001
    """Each "Delete?" question is recorded (title, text) and answered ``answer`` (True: the Delete button)."""
    from studio.ui import delete_question

    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(delete_question, "ask_to_delete", lambda parent, title, text: asked.append((title, text))
                        or answer)
    return asked


def test_deleting_a_style_or_preset_asks_first(qtbot, window, monkeypatch):  # noqa: ANN001
    panel, actions = window.prompt_panel, window.history_actions
    tasks = _started(window, monkeypatch)
    actions.add_style("Ink", "ink {prompt}", "")
    actions.add_preset("Fast")
    for button, kind, names in ((panel.styles_button, "style", lambda: [s.name for s in window.settings.styles]),
                                (panel.presets_button, "preset", lambda: [p.name for p in window.settings.presets])):
        name = names()[0]
        asked = _answering_delete(monkeypatch, False)
        _delete_action(button, name).trigger()
        qtbot.waitUntil(lambda: len(asked) == 1, timeout=5000)
        qtbot.waitUntil(lambda: all(t.done() for t in tasks), timeout=5000)
        assert asked == [(f"Delete {kind.title()}", f"Delete the {kind} {name!r}? This cannot be undone.")]
        assert names() == [name]
        asked = _answering_delete(monkeypatch, True)
        _delete_action(button, name).trigger()
        qtbot.waitUntil(lambda: names() == [], timeout=5000)
        assert load_settings(studio_paths()).model_dump()[f"{kind}s"] == []


def test_a_style_name_differing_only_in_case_is_asked_about_and_saving_says_so(qtbot, window, monkeypatch):  # noqa: ANN001
    """"Second" and "second" were kept as two styles, and saving a style said nothing (a preset said "Saved")."""
    from PySide6.QtWidgets import QMessageBox

    panel, actions = window.prompt_panel, window.history_actions
    tasks = _started(window, monkeypatch)
    actions.add_style("Second", "ink {prompt}", "")
    assert window.status.message_label.text() == "Saved the style 'Second'."
    panel.prompt_edit.setPlainText("pencil {prompt}")
    asked = _answering(monkeypatch, "second", QMessageBox.StandardButton.Yes)
    _menu_action(panel.styles_button, "Save Current Prompt as Style…").trigger()
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=5000)
    qtbot.waitUntil(lambda: all(t.done() for t in tasks), timeout=5000)
    assert asked == ["A style named 'Second' exists; replace it?"]
    assert [(s.name, s.prompt) for s in window.settings.styles] == [("second", "pencil {prompt}")]
    assert window.status.message_label.text() == "Saved the style 'second'."
    actions.add_preset("Fast")
    actions.add_preset("FAST")
    assert [p.name for p in window.settings.presets] == ["FAST"]
