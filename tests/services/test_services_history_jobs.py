"""JobService records every job in the history: each image saved first, then its row; failures and cancels too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_testing import collect_until_done, fake_registry, fake_request, make_env, run, running_service, terminal

from studio import __version__
from studio.core.errors import JobCancelledError, ModelError
from studio.core.events import JobCancelled, JobFailed, JobFinished, JobProgress
from studio.core.images import read_recipe
from studio.core.metadata import Recipe
from studio.core.inpaint import InpaintOptions
from studio.core.settings import load_settings
from studio.plugin_host.registry import GENERATOR, Contribution
from studio.services.history_recording import generator_version
from studio.services.history_reuse import request_for_entry
from studio.services.history_errors import HistoryLocked
from studio.services.history_query import HistoryQuery
from studio.services.history_store import HistoryEntry, HistoryStore
from studio.services.outputs import OutputStore


class CheckingStore(HistoryStore):
    """Asserts, at the moment a row is written, that its image file is already complete on disk."""

    def add(self, entry: HistoryEntry) -> int:
        if entry.image_path is not None:
            with Image.open(entry.image_path) as img:
                img.load()
        for path in (entry.source_image_path, entry.source_mask_path):
            assert path is None or Path(path).is_file()
        return super().add(entry)


class LockedStore(HistoryStore):
    def add(self, entry: HistoryEntry) -> int:
        raise HistoryLocked("The history database is locked by another program; close it and try again.")


def submit_all(tmp_path: Path, requests: list, store: HistoryStore, on_event=None, release: bool = True):  # noqa: ANN001, ANN201
    registry, env = fake_registry(), make_env(tmp_path)
    if release:
        registry.instance(GENERATOR, "gated", env).release.set()
    outputs = OutputStore(tmp_path / "outputs")

    async def scenario():
        async with running_service(env, registry, outputs=outputs, history=store) as service:
            stream = service.subscribe()
            jobs = [service.submit(r) for r in requests]
            handler = (lambda event: on_event(service, event)) if on_event else None
            return await collect_until_done(stream, jobs, on_event=handler), jobs

    return run(scenario())


def test_each_image_is_saved_then_recorded_with_everything_needed_to_run_it_again(tmp_path):
    store = CheckingStore(tmp_path / "history.db")
    request = fake_request(seed=40, batch_count=2, prompt="a red fox", negative_prompt="blurry", steps=3,
                           cfg_scale=6.5, scheduler="DDIM", width=72, height=64)
    events, (job,) = submit_all(tmp_path, [request], store)
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished)
    rows = store.search()
    assert [r.seed for r in rows] == [41, 40]  # newest first
    for row, output in zip(reversed(rows), finished.outputs):
        assert row.image_path == str(output.path)
        assert read_recipe(row.image_path) == output.recipe
        assert (row.prompt, row.negative_prompt, row.steps, row.cfg_scale, row.sampler) == (
            "a red fox", "blurry", 3, 6.5, "DDIM")
        assert (row.width, row.height, row.strength) == (72, 64, None)
        assert (row.model_name, row.model_path, row.generator) == ("gated", "unused", "gated")
        assert row.generator_version == __version__  # the gated fake is registered as built-in
        assert row.outcome == "ok" and row.message == "" and row.postprocess == []
        assert row.elapsed is not None and row.elapsed >= 0
        assert row.source_image_path is None and row.source_mask_path is None
    assert [r.params for r in reversed(rows)] == [
        {"mode": "txt2img", "batch_index": i, "batch_count": 2, "job_seed": 40,
         "studio_version": f"Studio {__version__}"}
        for i in range(2)]
    again = request_for_entry(rows[0])
    assert (again.seed, again.batch_count, again.scheduler, again.width, again.cfg_scale) == (41, 1, "DDIM", 72, 6.5)
    store.close()


def test_run_again_runs_the_way_the_person_s_settings_say(studio_home):
    # A rerun once ran with the request's defaults (speed "fast": bf16 on a CPU) whatever the person had chosen,
    # and the picture came out different from the one their "eager" setting makes.
    entry = HistoryEntry(prompt="a fox", model_path="", generator="gated", seed=3, steps=2)
    settings = load_settings()
    settings.memory, settings.speed = "low", "eager"
    again = request_for_entry(entry, settings)
    assert (again.memory, again.speed, again.seed) == ("low", "eager", 3)
    settings.memory, settings.speed = "high", "compile"
    assert (request_for_entry(entry, settings).memory, request_for_entry(entry, settings).speed) == ("high", "compile")


def test_an_inpaint_job_keeps_its_source_picture_and_mask_once(tmp_path):
    store = CheckingStore(tmp_path / "history.db")
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8), "RGB")
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (10, 10, 30, 30))
    options = InpaintOptions(masked_only=False, padding=12, fill="noise", feather=3.0)
    request = fake_request(seed=5, batch_count=2, init_image=picture, mask=mask, strength=0.6, inpaint=options)
    img2img = fake_request(seed=9, init_image=picture, strength=0.3)
    events, jobs = submit_all(tmp_path, [request, img2img], store)
    assert all(isinstance(terminal(events, j), JobFinished) for j in jobs)
    later, *inpainted = store.search()
    assert len(inpainted) == 2
    sources = {(r.source_image_path, r.source_mask_path) for r in inpainted}
    assert len(sources) == 1  # one copy per job, shared by its rows
    source, mask_path = sources.pop()
    assert Path(source).parent == tmp_path / "outputs" / Path(inpainted[0].image_path).parent.name / "sources"
    with Image.open(source) as saved:
        assert np.array_equal(np.asarray(saved), np.asarray(picture))
    with Image.open(mask_path) as saved:
        assert np.array_equal(np.asarray(saved), np.asarray(mask))
    assert inpainted[0].params["inpaint"] == {"masked_only": False, "padding": 12, "fill": "noise", "feather": 3.0}
    assert inpainted[0].params["mode"] == "inpaint"
    # img2img keeps its source picture, no mask.
    assert later.params["mode"] == "img2img" and later.source_mask_path is None
    assert later.source_image_path not in (None, source)
    # The whole inpaint comes back from its entry.
    again = request_for_entry(inpainted[-1])
    assert again.is_inpaint and again.inpaint == options and again.seed == 5
    assert np.array_equal(np.asarray(again.init_image), np.asarray(picture))
    assert np.array_equal(np.asarray(again.mask), np.asarray(mask))
    # Deleting the entries removes the kept sources with the last one.
    store.delete(inpainted[0].id)
    assert Path(source).is_file()
    store.delete(inpainted[1].id)
    assert not Path(source).exists() and not Path(mask_path).exists()
    store.close()


def test_failed_and_cancelled_jobs_get_one_row_each(tmp_path):
    store = HistoryStore(tmp_path / "history.db")
    failing = fake_request(generator="failing", seed=3, prompt="broken")
    missing = fake_request(generator="missing", seed=4, prompt="no plugin")
    cancelled = fake_request(seed=5, prompt="stopped", batch_count=3)

    def on_event(service, event) -> None:  # noqa: ANN001
        if isinstance(event, JobProgress):
            service.cancel(event.job_id)

    events, jobs = submit_all(tmp_path, [failing, missing, cancelled], store, on_event=on_event, release=False)
    assert [type(terminal(events, j)) for j in jobs] == [JobFailed, JobFailed, JobCancelled]
    rows = {r.prompt: r for r in store.search()}
    assert set(rows) == {"broken", "no plugin", "stopped"}
    assert rows["broken"].outcome == "failed"
    # A plugin's job without a picture is named by its generator's title, as its pictures are (it had no model).
    assert (rows["broken"].model_name, rows["no plugin"].model_name) == ("Failing test generator", "Missing generator")
    assert rows["broken"].message == "The plugin Test Plugins failed (KeyError: 'no such layer')."
    assert rows["no plugin"].message.startswith("The generator 'Missing generator' from broken-plugin could not")
    assert rows["stopped"].outcome == "cancelled" and rows["stopped"].seed == 5
    assert all(r.image_path is None and r.elapsed is not None for r in rows.values())
    assert store.count(HistoryQuery(outcome="ok")) == 0
    store.close()


def test_a_history_that_cannot_be_written_does_not_fail_the_job(tmp_path):
    store = LockedStore(tmp_path / "history.db")
    events, (job,) = submit_all(tmp_path, [fake_request(seed=8)], store)
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished)
    assert finished.outputs[0].path.is_file()  # the picture is safe
    assert any("could not be added to the history" in note and "locked" in note for note in finished.notes)
    store.close()


def test_a_picture_neither_saved_nor_recorded_is_not_said_to_be_saved(tmp_path):
    """A full disk: the outputs folder could not keep the picture and the history could not be written. The note
    said "The image could not be saved … The image was saved, but it could not be added to the history"."""
    (tmp_path / "outputs").write_text("a file where the outputs folder should be")
    store = LockedStore(tmp_path / "history.db")
    events, (job,) = submit_all(tmp_path, [fake_request(seed=8)], store)
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished) and finished.outputs[0].path is None
    said = " ".join([*finished.warnings, *finished.notes])
    assert "could not be saved in" in said and "was saved" not in said, said
    assert ("The picture could not be added to the history yet either: the history database is locked by another "
            "program. Studio keeps the entry and adds it once the lock is gone.") in said, said
    assert "try again" not in said  # there is nothing left to try: the entry is kept and added later
    store.close()


def test_generator_version_comes_from_the_plugin_or_studio():
    registry = fake_registry()
    registry.add(Contribution(GENERATOR, "versioned", "Versioned", "x:y", plugin_id="acme", plugin_version="2.0.1"))
    assert generator_version(registry, "diffusers") == __version__
    assert generator_version(registry, "versioned") == "2.0.1"
    assert generator_version(registry, "gated") == __version__  # the test fake is registered as built-in
    assert generator_version(registry, "not-installed") == ""


def test_rows_point_at_the_image_the_output_store_wrote(tmp_path):
    """The image of a row is complete on disk before the row exists (CheckingStore), and it is the same
    picture the job produced."""
    store = CheckingStore(tmp_path / "history.db")
    submit_all(tmp_path, [fake_request(seed=200)], store)
    (row,) = store.search()
    with Image.open(row.image_path) as saved:
        assert saved.getpixel((0, 0)) == (200, 0, 0)  # GatedGenerator's colour for seed 200
    store.close()


def test_a_history_removed_before_a_job_s_row_is_started_again_and_the_job_says_so(tmp_path):
    store = HistoryStore(tmp_path / "history.db")
    store.add(HistoryEntry(prompt="before"))
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"history.db{suffix}").unlink(missing_ok=True)
    events, (job,) = submit_all(tmp_path, [fake_request(seed=8, prompt="after")], store)
    finished = terminal(events, job)
    assert any("was removed while Studio ran; a new one was started" in note for note in finished.notes)
    assert [e.prompt for e in store.search()] == ["after"]
    store.close()


def test_a_row_the_lock_kept_out_is_kept_and_added_with_the_next_job(tmp_path):
    import sqlite3

    store = HistoryStore(tmp_path / "history.db", busy_timeout=0.1)
    locker = sqlite3.connect(store.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another program's write lock, held longer than busy_timeout
    events, (job,) = submit_all(tmp_path, [fake_request(seed=8, prompt="while locked")], store)
    notes = terminal(events, job).notes
    assert any("could not be added to the history yet" in note and "Studio keeps the entry and adds it once the "
               "lock is gone." in note for note in notes)
    assert store.pending_count() == 1
    locker.execute("ROLLBACK")
    locker.close()
    events, (job,) = submit_all(tmp_path, [fake_request(seed=9, prompt="after")], store)
    assert ("The history database is free again: 1 entry kept while it was locked was added to the history."
            in terminal(events, job).notes)
    assert [e.prompt for e in store.search()] == ["after", "while locked"]
    store.close()


def test_the_wait_for_a_locked_history_is_not_counted_in_the_job_or_picture_times(tmp_path):
    import sqlite3

    wait = 1.5  # each of the two rows waits this long for the lock: 3 s in all, far more than the fake job takes
    store = HistoryStore(tmp_path / "history.db", busy_timeout=wait)
    locker = sqlite3.connect(store.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another program's write lock, held longer than busy_timeout
    events, (job,) = submit_all(tmp_path, [fake_request(seed=8, batch_count=2, prompt="while locked")], store)
    finished = terminal(events, job)
    assert isinstance(finished, JobFinished) and store.pending_count() == 2
    assert finished.elapsed < wait, finished.elapsed  # "Finished in …" was 3 s and more
    locker.execute("ROLLBACK")
    locker.close()
    store.add_pending()
    kept = store.search()
    assert len(kept) == 2 and all(e.elapsed < wait for e in kept), [e.elapsed for e in kept]  # the 2nd had 1.5 s
    store.close()


class OneThenStopped:
    """Makes the first picture of a batch, then stops: cancelled (Ctrl+C or the window's Cancel between pictures)
    or failed (the device out of memory on the second, say), as the request's prompt says."""

    def __init__(self, env) -> None:  # noqa: ANN001
        pass

    def generate(self, request, context):  # noqa: ANN001, ANN201
        yield Image.new("RGB", (request.width, request.height)), Recipe(
            request.prompt, "", request.steps, request.scheduler, request.cfg_scale, request.seed, request.width,
            request.height, "one-then-stopped", generator=request.generator)
        if request.prompt == "cancelled":
            raise JobCancelledError()
        raise ModelError("The device ran out of memory.")


@pytest.mark.parametrize(("how", "ended", "message"), [
    ("cancelled", JobCancelled, "The job was cancelled after 1 of 3 pictures."),
    ("failed", JobFailed, "The device ran out of memory. The job failed after 1 of 3 pictures.")])
def test_a_job_that_stops_after_some_of_its_pictures_records_why_too(tmp_path, how, ended, message):
    # Its history held the one "ok" picture and no word of the cancel or failure that cost the other two.
    store = HistoryStore(tmp_path / "history.db")
    registry, env = fake_registry(), make_env(tmp_path)
    registry.add(Contribution(GENERATOR, "one", "One then stopped", "test_services_history_jobs:OneThenStopped"))

    async def scenario():  # noqa: ANN202
        async with running_service(env, registry, outputs=OutputStore(tmp_path / "outputs"), history=store) as service:
            stream = service.subscribe()
            job = service.submit(fake_request(generator="one", seed=7, prompt=how, batch_count=3))
            return await collect_until_done(stream, [job]), job

    events, job = run(scenario())
    assert isinstance(terminal(events, job), ended)
    rows = store.search()
    assert [(r.outcome, r.message) for r in rows] == [(how, message), ("ok", "")]
    assert rows[1].image_path is not None and rows[0].image_path is None
    store.close()
