"""What the window says when a job is cancelled: how many of a batch's pictures were kept, and where."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from studio.core.events import GeneratedImage, JobCancelled, JobQueued
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest

WAIT_MS = 60_000


def test_a_cancelled_batch_says_how_many_pictures_were_kept_and_where(qtbot, window) -> None:  # noqa: ANN001
    panel = window.prompt_panel
    panel.prompt_edit.setPlainText("a batch to cancel")
    panel.batch_spin.setValue(4)
    panel.steps_spin.setValue(60)
    window.generate()
    progress = lambda: window.status._last_progress  # noqa: E731
    qtbot.waitUntil(lambda: progress() is not None and progress().image_index >= 2, timeout=WAIT_MS)
    window.jobs.cancel_current()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("cancelled")), timeout=WAIT_MS)
    saved = sorted(window.settings.outputs_dir.rglob("*.png"))
    assert 2 <= len(saved) < 4
    said = window.status.message_label.text()
    assert re.fullmatch(rf"Cancelled: {len(saved)} of 4 pictures kept\. Saved to .+\.", said), said
    assert str(saved[0].parent) in said
    row = window.queue_panel._items[window.queue_panel.job_ids("cancelled")[0]].text()
    assert row.startswith(f"Cancelled · {len(saved)} of 4 kept · #"), row


def _output(path: Path | None) -> GeneratedImage:
    return GeneratedImage(Image.new("RGB", (8, 8)), Recipe("x", "", 4, "Euler", 7, 1, 8, 8, "tiny-sd"), path)


def test_a_cancel_says_what_it_left_of_the_job(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    label = window.status.message_label
    batch = GenerationRequest(model="tiny-sd", prompt="x", batch_count=3)
    window.handle_event(JobQueued(21, batch))
    window.handle_event(JobCancelled(21, was_running=True))
    assert label.text() == "Cancelled: none of the 3 pictures was kept."
    during = "Cancelled during Blur: the picture was kept without Blur."
    window.handle_event(JobQueued(22, batch))
    window.handle_event(JobCancelled(22, was_running=True, outputs=(_output(tmp_path / "a.png"),), message=during,
                                     notes=("Everything fits on the GPU.",)))
    assert label.text() == f"{during} 1 of 3 pictures kept. Saved to {tmp_path}. Everything fits on the GPU."
    window.handle_event(JobQueued(23, GenerationRequest(model="tiny-sd", prompt="x")))
    window.handle_event(JobCancelled(23, was_running=True, outputs=(_output(None),)))
    assert label.text() == "Cancelled: the picture was kept."
    window.handle_event(JobCancelled(24, was_running=True))  # a job the window never heard queued
    assert label.text() == "Cancelled."


def test_a_job_that_finished_with_a_problem_marks_its_queue_row(qtbot, window) -> None:  # noqa: ANN001
    """A picture the full disk could not keep was on the canvas only, yet its row said "Done in 0.64 s" with a
    tick and no tooltip: now it has the warning sign, and the problem on hover; a job without one keeps the tick."""
    from studio.core.events import JobFinished
    from studio.ui.theme import WARNING, icon

    unsaved = ("The image could not be saved in /full/outputs: File too large. The picture is only on the canvas: "
               "keep it with Save Canvas As… in the File menu.")
    request = GenerationRequest(model="tiny-sd", prompt="x")
    window.handle_event(JobQueued(31, request))
    window.handle_event(JobFinished(31, (_output(None),), 0.64, warnings=(unsaved,)))
    assert window.status.message_label.text().startswith(unsaved)
    assert window.status.message_label.property("error") is True
    window.handle_event(JobQueued(32, request))
    window.handle_event(JobFinished(32, (_output(None),), 0.5))
    rows = window.queue_panel._items
    assert rows[31].text().startswith("Done in 0.64 s")
    assert rows[31].icon().cacheKey() == icon("alert", WARNING).cacheKey()
    assert rows[31].toolTip() and unsaved in rows[31].toolTip().replace("\n", " ")
    assert rows[32].icon().cacheKey() == icon("check").cacheKey() and rows[32].toolTip() == ""


def test_a_cancelled_job_s_queue_row_says_how_many_pictures_were_kept(qtbot, window, tmp_path) -> None:  # noqa: ANN001
    queue = window.queue_panel
    row = lambda job_id: queue._items[job_id].text().split(" · #")[0]  # noqa: E731
    batch = GenerationRequest(model="tiny-sd", prompt="x", batch_count=4)
    for job_id, outputs in ((31, ()), (32, (_output(tmp_path / "a.png"), _output(tmp_path / "b.png")))):
        window.handle_event(JobQueued(job_id, batch))
        window.handle_event(JobCancelled(job_id, was_running=True, outputs=outputs))
    # The row and the status line say it in the same words: "none of the 4 pictures was kept" (it said
    # "0 of 4 kept" beside "none of the 4 pictures was finished").
    assert (row(31), row(32)) == ("Cancelled · none of 4 kept", "Cancelled · 2 of 4 kept")
    assert window.status.message_label.text().startswith("Cancelled: 2 of 4 pictures kept.")
    window.handle_event(JobQueued(35, batch))
    window.handle_event(JobCancelled(35, was_running=True))
    assert (row(35), window.status.message_label.text()) == ("Cancelled · none of 4 kept",
                                                             "Cancelled: none of the 4 pictures was kept.")
    single = GenerationRequest(model="tiny-sd", prompt="x")
    for job_id, outputs in ((33, ()), (34, (_output(None),))):
        window.handle_event(JobQueued(job_id, single))
        window.handle_event(JobCancelled(job_id, was_running=True, outputs=outputs))
    assert (row(33), row(34)) == ("Cancelled", "Cancelled · picture kept")


def test_while_a_plugin_generator_s_job_runs_the_status_bar_names_it_not_the_model(qtbot, window) -> None:  # noqa: ANN001
    from studio.core.events import EngineStatus, JobFinished, JobStarted

    label = window.status.model_label
    window.handle_event(EngineStatus(model="tiny-sd"))
    window.handle_event(JobQueued(41, GenerationRequest(model="", prompt="x", generator="tp-maker")))
    window.handle_event(JobStarted(41))
    assert label.text() == "tp-maker"  # the registry's title (its id, where no plugin ever listed it)
    assert "tiny-sd stays loaded" in label.toolTip()
    window.handle_event(EngineStatus(model="tiny-sd"))  # the model said again meanwhile does not take its place
    assert label.text() == "tp-maker"
    window.handle_event(JobFinished(41, (), 0.1))
    assert label.text() == "tiny-sd"
    window.handle_event(JobQueued(42, GenerationRequest(model="tiny-sd", prompt="x")))
    window.handle_event(JobStarted(42))
    assert label.text() == "tiny-sd"
