"""Load parameters sets up what Generate needs to make the picture again: the post-processing chain it was made
with (none for one made without), and it says when the model it names is gone."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from studio.core.model_library import ModelEntry
from studio.core.settings_sections import PostStepSetting
from studio.services.history_store import HistoryEntry


def _load(qtbot, window, entry: HistoryEntry) -> str:  # noqa: ANN001
    task = window.actions_.run(window.history_actions.load_parameters(entry))
    qtbot.waitUntil(task.done, timeout=10_000)
    return window.status.message_label.text()


def _chain(window) -> list[tuple[str, dict, float]]:  # noqa: ANN001
    return [(s.processor, s.params, s.strength) for s in window.settings.generation.post]


def test_load_parameters_sets_the_chain_the_picture_was_made_with(qtbot, window, tmp_path):  # noqa: ANN001
    reference = tmp_path / "cmyk.png"
    Image.new("RGB", (16, 16), (0, 160, 220)).save(reference)
    chained = HistoryEntry("chained", seed=6, steps=4, width=64, height=64, id=2, params={
        "post": [{"processor": "histogram", "params": {"style": str(reference)}, "strength": 0.5}]})
    plain = HistoryEntry("plain", seed=5, steps=4, width=64, height=64, id=1, params={"mode": "txt2img"})
    window.plugin_actions.set_chain([PostStepSetting(processor="color", params={})])

    # Made without a chain: so is the remake, and the line says the one set up is gone.
    assert _load(qtbot, window, plain) == "Loaded the parameters of that picture; the post-processing chain was " \
                                          "cleared."
    assert _chain(window) == [] and window.plugin_actions.post_steps() == ()

    said = _load(qtbot, window, chained)
    assert said == "Loaded the parameters of that picture; the post-processing chain is now Colour Transfer " \
                   "(Histogram)."
    assert _chain(window) == [("histogram", {"style": str(reference)}, 0.5)]
    steps = window.plugin_actions.post_steps()  # what the next Generate asks for
    assert [(s.processor, s.strength) for s in steps] == [("histogram", 0.5)]
    assert "Post-processing &Chain… (1)" == window.plugin_actions.chain_action.text()

    # The same chain again: nothing changed, nothing more is said.
    assert _load(qtbot, window, chained) == "Loaded the parameters of that picture."
    assert _chain(window) == [("histogram", {"style": str(reference)}, 0.5)]


def test_a_chain_step_that_cannot_run_here_is_said(qtbot, window):  # noqa: ANN001
    """A plugin's step whose plugin is gone or off is left out; Neural Style Transfer without its weight files is
    set up (importing them makes it run) and its missing files are named."""
    entry = HistoryEntry("styled", seed=1, steps=4, width=64, height=64, id=4, params={"post": [
        {"processor": "sharpen-plus", "params": {"amount": 2}, "strength": 1.0},
        {"processor": "neural", "params": {}, "strength": 1.0}]})
    said = _load(qtbot, window, entry)
    assert said.startswith("Loaded the parameters of that picture; the post-processing chain is now Neural Style "
                           "Transfer. Its post-processing step 'sharpen-plus' was left out of the chain: no installed "
                           "and enabled plugin provides it. Its Neural Style Transfer step needs vgg19.safetensors, "
                           "missing in ")
    assert _chain(window) == [("neural", {}, 1.0)]


def test_load_parameters_says_the_model_is_gone(qtbot, window, tmp_path, tiny_model_dir):  # noqa: ANN001
    """The model list was read while the model was there: it still names it, and selecting it made the next
    Generate refuse "The model folder … does not exist"."""
    gone = tmp_path / "models" / "gone model"
    panel = window.prompt_panel
    panel.set_models([ModelEntry("tiny-sd", Path(tiny_model_dir)), ModelEntry("gone model", gone)],
                     str(tiny_model_dir), str(tmp_path / "models"))
    assert panel.model_picker.combo.findData(str(gone)) >= 0  # listed all the same
    entry = HistoryEntry("a gone-model dog", model_name="gone model", model_path=str(gone), seed=3, steps=4,
                         width=64, height=64, id=5)
    said = _load(qtbot, window, entry)
    assert said == (f"Loaded the parameters of that picture. The model gone model is gone, so the current one was "
                    f"kept; {gone} no longer exists.")
    assert panel.selected_model() == str(tiny_model_dir)
    assert panel.prompt_edit.toPlainText() == "a gone-model dog"  # the rest is loaded all the same


def test_load_parameters_of_a_gone_model_with_no_model_selected_does_not_say_one_was_kept(  # noqa: ANN001
        qtbot, window, tmp_path):
    gone = tmp_path / "models" / "gone model"
    panel = window.prompt_panel
    panel.set_models([ModelEntry("gone model", gone)], "", str(tmp_path / "models"))
    panel.model_combo.setCurrentIndex(-1)
    entry = HistoryEntry("a gone-model dog", model_name="gone model", model_path=str(gone), seed=3, steps=4,
                         width=64, height=64, id=5)
    said = _load(qtbot, window, entry)
    assert said == (f"Loaded the parameters of that picture. The model gone model is gone, and no model is "
                    f"selected; {gone} no longer exists; choose one in the list above.")
    assert panel.selected_model() == ""
