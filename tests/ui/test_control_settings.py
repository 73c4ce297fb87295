"""Control guides kept in the settings: one set up before a ControlNet could be chosen (an SDXL checkpoint and only
SD 1.5 ControlNets in the library) comes back at the next start with its picture and values, asking for a model."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from test_control_box import CANNY15, MODELS, SD15, SDXL, WAIT_MS

from studio.core.control import ControlGuide
from studio.core.errors import InvalidRequest
from studio.core.models import ModelEntry
from studio.core.settings_sections import GenerationDefaults
from studio.ui.prompt_panel import PromptPanel


def _panel(qtbot, model: str) -> PromptPanel:  # noqa: ANN001
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.set_models([ModelEntry(i.name, i.path, i.label) for i in (SD15, SDXL)], model, str(MODELS))
    panel.control_box.set_library([SD15, SDXL, CANNY15])
    return panel


def test_a_guide_with_no_controlnet_chosen_yet_is_kept_in_the_settings(qtbot, qt_loop, tmp_path: Path):  # noqa: ANN001
    panel = _panel(qtbot, str(SDXL.path))  # only an SD 1.5 ControlNet: none fits, none is chosen
    row = panel.control_box.add()
    picture = tmp_path / "sketch.png"
    Image.new("RGB", (64, 64), "white").save(picture)
    row.picture.use_file(picture)
    row.weight_spin.setValue(0.4)
    qtbot.waitUntil(lambda: row.picture.state == "ready", timeout=WAIT_MS)
    assert row.model() == ""
    saved = GenerationDefaults.model_validate(panel.defaults().model_dump())  # as the settings file reads it back
    assert [(c["model"], c["weight"], c["image"]) for c in saved.controls] == [("", 0.4, str(picture))]
    again = _panel(qtbot, str(SDXL.path))  # the next start
    again.load_defaults(saved)
    (restored,) = again.control_box.rows
    qtbot.waitUntil(lambda: restored.picture.state == "ready", timeout=WAIT_MS)
    assert (restored.model_combo.currentText(), restored.weight_spin.value(), restored.picture.path) == (
        "Choose a ControlNet…", 0.4, str(picture))
    with pytest.raises(InvalidRequest, match="has no ControlNet model chosen"):
        again.build_request(None)
    # Only the settings keep such a guide: a picture's recipe or a history entry names the ControlNet it used.
    assert ControlGuide.from_record(saved.controls[0]) is None
