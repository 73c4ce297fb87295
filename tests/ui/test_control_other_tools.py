"""Control guides of pictures other tools made, brought back in the window: AUTOMATIC1111's guides name
preprocessors Studio does not have; the guide is kept, with its picture used as it is, and the person is told."""

from __future__ import annotations

from pathlib import Path

from test_control_window import WAIT_MS, _drop_on_the_prompt, _library, a1111_picture

from studio.core.control import NONE


def test_a_dropped_a1111_picture_s_guide_with_a_preprocessor_studio_lacks_is_kept_and_said(  # noqa: ANN001
        qtbot, window, tiny_model_dir, tmp_path: Path):
    _library(window, tiny_model_dir)
    a1111 = tmp_path / "a1111.png"
    a1111_picture(a1111, "Module: depth_midas, Model: control_v11p_sd15_lineart [5c23b17d], Weight: 0.6, "
                         "Guidance Start: 0.2, Guidance End: 1")
    box = window.prompt_panel.control_box
    _drop_on_the_prompt(window, a1111)
    qtbot.waitUntil(lambda: len(box.rows) == 1 and box.rows[0].model() == "control_v11p_sd15_lineart",
                    timeout=WAIT_MS)
    (only,) = box.rows
    assert (only.preprocessor(), only.weight_spin.value(), only.start_spin.value()) == (NONE, 0.6, 0.2)
    said = window.status.message_label.text()
    assert ("Its control guide was made with the depth_midas preprocessor, which Studio does not have: its picture "
            "is used as it is, so give it one made already (a depth map, a pose, lines).") in said
    assert "It names no picture for its control guide; choose one." in said
