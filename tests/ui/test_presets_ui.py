"""Generation presets: the model, size, sampling and post-processing chain saved under a name, applied
later without touching the prompt, and kept in the settings file."""

from __future__ import annotations

from studio.core.paths import studio_paths
from studio.core.settings import PostStepSetting, load_settings


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
    from studio.core.settings import GenerationPreset

    panel = window.prompt_panel
    model = panel.model_combo.currentText()
    steps = panel.defaults().model_copy(update={"generator": "gone-gen", "steps": 9})
    window.history_actions.apply_preset(GenerationPreset(name="Red plugin", generation=steps))
    assert panel.model_combo.currentText() == model and panel.steps_spin.value() == 9
    assert window.status.message_label.text() == ("Applied the preset 'Red plugin'. The generator 'gone-gen' is not "
                                                  "installed and enabled; kept the current one.")
