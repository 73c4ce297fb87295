"""Settings → Models in Memory… and Free Memory: the list of loaded models, freeing them, and the next job loading
its model again; while a job runs, the freeing waits for it to end."""

from __future__ import annotations

from PySide6.QtCore import Qt
from studio_testing import fake_request

from studio.core.held_memory import KEPT, HeldModel
from studio.plugin_host.registry import GENERATOR, Contribution
from studio.ui.memory_dialog import AFTER_THE_JOB

WAIT_MS = 60_000


def open_dialog(qtbot, window):  # noqa: ANN001, ANN201
    window.memory.models_action.trigger()
    dialog = window.memory.dialog
    qtbot.waitUntil(lambda: dialog.held is not None, timeout=WAIT_MS)
    return dialog


def rows(dialog) -> list[list[str]]:  # noqa: ANN001
    table = dialog.table
    return [[table.item(row, column).text() for column in range(table.columnCount())]
            for row in range(table.rowCount())]


def test_free_all_lets_the_model_in_use_go_and_the_next_job_loads_it_again(qtbot, window):  # noqa: ANN001
    messages: list[str] = []
    say = window.status.set_message
    window.status.set_message = lambda text, error=False: (messages.append(text), say(text, error))
    dialog = open_dialog(qtbot, window)
    ((name, role, device, precision, size),) = rows(dialog)
    assert (name, role, device, precision) == ("tiny-sd", "In use", "System memory", "float32")
    assert size.endswith("KB") and dialog.summary.text() == f"1 model loaded, {size} in all."

    qtbot.mouseClick(dialog.free_all_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.summary.text() == "No model is loaded.", timeout=WAIT_MS)
    assert rows(dialog) == [] and dialog.message.text() == f"Freed tiny-sd ({size})."
    assert window.status.message_label.text() == f"Freed tiny-sd ({size})."
    assert window.status.model_label.text() == "No model loaded" and window.windowTitle() == "Studio"

    window.generate()  # the model is read again, and the list follows when the job ends
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    assert "Loading tiny-sd…" in messages and window.status.model_label.text() == "tiny-sd"
    qtbot.waitUntil(lambda: [row[:2] for row in rows(dialog)] == [["tiny-sd", "In use"]], timeout=WAIT_MS)
    dialog.close()
    qtbot.waitUntil(lambda: window.memory.dialog is None, timeout=5000)


def test_while_a_job_runs_free_memory_waits_for_it_and_then_frees_every_model(qtbot, window):  # noqa: ANN001
    registry, service = window.service.registry, window.service
    registry.add(Contribution(GENERATOR, "gated", "Gated test generator", "studio_testing:GatedGenerator"))
    plugin = registry.instance(GENERATOR, "gated", service.env)  # a generator holding a model of its own
    plugin.held_models = lambda: [HeldModel("plugin model", KEPT, "cpu", "float32", 2**20)]
    plugin.release_memory = lambda in_use=False: plugin.held_models()
    assert window.memory.free_action.shortcut().toString() == "Ctrl+Shift+F"

    messages: list[str] = []
    say = window.status.set_message
    window.status.set_message = lambda text, error=False: (messages.append(text), say(text, error))

    service.submit(fake_request())
    qtbot.waitUntil(lambda: service.running() is not None, timeout=WAIT_MS)
    window.memory.models_action.trigger()
    dialog = window.memory.dialog
    assert dialog.summary.text() == "A job is running: the list fills in when it ends." and dialog.held is None
    window.memory.free_action.trigger()
    assert window.status.message_label.text() == AFTER_THE_JOB
    qtbot.mouseClick(dialog.free_kept_button, Qt.MouseButton.LeftButton)
    assert dialog.message.text() == AFTER_THE_JOB and not dialog.free_all_button.isEnabled()
    assert dialog.held is None and window.status.model_label.text() == "tiny-sd"

    plugin.release.set()  # the job ends; then Free Memory runs, then Free Kept Models
    qtbot.waitUntil(lambda: dialog.free_all_button.isEnabled(), timeout=WAIT_MS)
    assert dialog.message.text() == "Freed plugin model (1.0 MB)."  # all that was left: the plugin's (it never forgets)
    freed = [text for text in messages if text.startswith("Freed")]
    assert len(freed) == 2 and freed[0].startswith("Freed tiny-sd and plugin model (")
    assert freed[1] == dialog.message.text()
    assert window.status.model_label.text() == "No model loaded"
    qtbot.waitUntil(lambda: [row[:2] for row in rows(dialog)] == [["plugin model", "Kept for switching back"]],
                    timeout=WAIT_MS)


def test_free_memory_pressed_twice_keeps_the_first_answer_in_view(qtbot, window):  # noqa: ANN001
    qtbot.waitUntil(lambda: window.status.model_label.text() == "tiny-sd", timeout=WAIT_MS)  # loaded ahead of jobs
    window.memory.free_action.trigger()
    window.memory.free_action.trigger()
    qtbot.waitUntil(lambda: window.status.model_label.text() == "No model loaded", timeout=WAIT_MS)
    qtbot.wait(300)  # the second, empty answer has come too
    assert window.status.message_label.text().startswith("Freed tiny-sd (")
