"""Settings → Models in Memory… and Free Memory: the list of loaded models, freeing them, and the next job loading
its model again; while a job runs, the freeing waits for it to end."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from studio_testing import fake_request
from tiny_depth import depth_model_in

from studio.core.control import DEPTH
from studio.core.held_memory import KEPT, HeldModel
from studio.engine import depth_maps
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
    assert dialog.held is None and window.status.model_label.text() == "Gated test generator"  # the job's

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


def test_the_list_follows_a_guide_s_thumbnail_loading_the_depth_model(qtbot, window, tmp_path):  # noqa: ANN001
    """A Depth guide's thumbnail loads the depth model's copy for the CPU in a worker thread, outside the engine's
    jobs: the open list showed it only after the next job, Free or load."""
    depth_maps.forget()
    depth = window.prompt_panel.control_box.depth
    depth_model_in(depth.models_dir)
    window.actions_.run(depth.look())
    qtbot.waitUntil(lambda: depth.folder is not None, timeout=WAIT_MS)
    dialog = open_dialog(qtbot, window)
    assert [row[0] for row in rows(dialog)] == ["tiny-sd"]

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photo)
    row = window.prompt_panel.control_box.add()
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData(DEPTH))
    row.picture.use_file(photo)
    qtbot.waitUntil(lambda: row.picture.preview is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(rows(dialog)) == 2, timeout=WAIT_MS)
    (name, role, device, precision, _), = [r for r in rows(dialog) if r[0] != "tiny-sd"]
    assert (name, role, device, precision) == ("Depth model depth-anything-v2-small", "Cached", "System memory",
                                               "float32")
    assert dialog.summary.text().startswith("1 model loaded and 1 cached part, ")
    depth_maps.forget()


def test_the_fast_path_s_graphs_and_vae_copy_are_listed_with_their_sizes_and_freed_with_the_kept_models(
        qtbot, window, monkeypatch):  # noqa: ANN001
    """On a GPU the fast path keeps, beside the model in use, its CUDA graphs of the UNet step (their memory pool) and
    SDXL's bfloat16 VAE copy: listed with their sizes, and let go by Free Kept Models while the model stays loaded.
    A pretend Ampere GPU whose captures and memory snapshot are stood in for."""
    from pretend_gpu import fast_path_on_pretend_gpu

    fast_path_on_pretend_gpu(monkeypatch, pool_bytes=24 * 2**20, bfloat16_vae=True)
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    dialog = open_dialog(qtbot, window)
    listed = rows(dialog)
    assert [row[:4] for row in listed] == [
        ["tiny-sd", "In use", "System memory", "float32"],
        ["bfloat16 VAE copy of tiny-sd", "Cached", "System memory", "bfloat16"],  # where the pretend GPU's are
        ["CUDA graphs of tiny-sd's UNet step", "Cached", "GPU (CUDA)", "float32"]]
    assert listed[1][4].endswith("KB") and listed[2][4] == "24.0 MB"
    assert dialog.summary.text().startswith("1 model loaded and 2 cached parts, ")  # parts, not models of their own

    qtbot.mouseClick(dialog.free_kept_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Freed"), timeout=WAIT_MS)
    assert dialog.message.text().startswith("Freed bfloat16 VAE copy of tiny-sd and CUDA graphs of tiny-sd's UNet step")
    qtbot.waitUntil(lambda: [row[0] for row in rows(dialog)] == ["tiny-sd"], timeout=WAIT_MS)
    assert window.status.model_label.text() == "tiny-sd"
    dialog.close()
    qtbot.waitUntil(lambda: window.memory.dialog is None, timeout=5000)
