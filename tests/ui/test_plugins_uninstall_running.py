"""Uninstalling a plugin from the window while its job runs: the question says so and what happens to the job (it
is cancelled first), and what the window says afterwards calls it removed, not switched off."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_plugins_ui import GENERATOR, MANIFEST_EXTRA, WAIT_MS, _pick, _plugin_window

WAITS_FOR_CANCEL = GENERATOR.replace("return Image.eval(image, lambda v: 255 - v)", """import time
        while not context.is_cancelled():
            time.sleep(0.01)
        context.check_cancelled()""")


@pytest.fixture
def window(qtbot, qt_loop, settings, plugin_sandbox):  # noqa: ANN001
    yield from _plugin_window(qtbot, settings, plugin_sandbox, "ui-plugin", "studio_tp_ui", "ui-gen",
                              WAITS_FOR_CANCEL, MANIFEST_EXTRA)


def test_uninstalling_a_plugin_whose_job_runs_asks_cancels_it_and_says_removed(qtbot, window):  # noqa: ANN001
    _pick(window.prompt_panel, "Test generator")
    window.document.set_image(Image.fromarray(np.full((32, 32, 3), 20, np.uint8)), "Open")
    job = window.plugin_actions.apply(window.service.registry.get("postprocessor", "ui-invert"), {})
    qtbot.waitUntil(lambda: window.queue_panel.state(job) == "running", timeout=WAIT_MS)
    window.plugin_actions.open_dialog()
    dialog = window.plugin_actions.dialog
    asked: list[str] = []
    dialog.confirm = lambda title, text, action=None: asked.append(text) or True
    task = window.actions_.run(dialog.uninstall("ui-plugin"))
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    assert task.result() is True
    assert asked == ["Remove Test Plugin 1.0.0 and its files? Its job 'Filter: Invert colours' is running; "
                     "uninstalling cancels it first (the canvas keeps its picture)."]
    qtbot.waitUntil(lambda: window.queue_panel.state(job) == "cancelled", timeout=WAIT_MS)
    assert window.document.image.getpixel((0, 0)) == (20, 20, 20)
    assert dialog.message.text() == ("Removed Test Plugin. Its job 'Filter: Invert colours' was cancelled. Its "
                                     "modules stay loaded until Studio restarts.")
    qtbot.waitUntil(lambda: window.prompt_panel.model_combo.findText("Test generator") < 0, timeout=5000)
    assert window.status.message_label.text().startswith(
        "The plugin Test Plugin was removed, so its generator Test generator left the model list;")
    dialog.reject()
