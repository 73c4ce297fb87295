"""A job's ControlNet pictures: kept once in the outputs' sources folder before the engine runs, named by the
picture's recipe and its history rows, used again by a rerun, and removed with the last entry that uses them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_testing import collect_until_done, control_registry, fake_request, make_env, run, running_service

from studio.core.control import CANNY, INVERT, ControlGuide
from studio.core.errors import InvalidRequest, StudioError
from studio.core.events import JobFailed, JobFinished
from studio.core.images import pixel_digest, read_recipe
from studio.core.requests import prepare_request
from studio.plugin_host.registry import GENERATOR
from studio.services.control_pictures import keep_control_pictures
from studio.services.history_reuse import request_for_entry
from studio.services.history_store import HistoryEntry, HistoryStore
from studio.services.outputs import OutputStore, is_kept_control


def noise(seed: int, size: tuple[int, int] = (40, 32)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


def guided_request(tmp_path: Path, photo: Image.Image, sketch: Image.Image, **kwargs):  # noqa: ANN003, ANN201
    """Three guides: two read one photo (two Image objects with the same pixels), one a sketch."""
    guides = (ControlGuide("canny-sd15", photo, CANNY, low_threshold=50, high_threshold=150,
                           image_path=str(tmp_path / "photo.png")),
              ControlGuide("depth-sd15", photo.copy(), weight=0.5, end=0.6, image_path=str(tmp_path / "photo.png")),
              ControlGuide(str(tmp_path / "lineart.safetensors"), sketch, INVERT, start=0.1))
    return fake_request(generator="diffusers", model=str(tmp_path), seed=30, controls=guides, **kwargs)


def run_jobs(tmp_path: Path, requests: list, store: HistoryStore | None = None,
             outputs: OutputStore | None = None) -> tuple[list, list, object]:
    """The requests through a JobService whose "diffusers" generator records what it is given."""
    registry, env = control_registry(), make_env(tmp_path)
    outputs = outputs or OutputStore(tmp_path / "outputs")

    async def scenario():  # noqa: ANN202
        async with running_service(env, registry, outputs=outputs, history=store) as service:
            stream = service.subscribe()
            jobs = [service.submit(r) for r in requests]
            return await collect_until_done(stream, jobs), jobs

    events, jobs = run(scenario())
    return events, jobs, registry.instance(GENERATOR, "diffusers", env)


def kept_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "outputs").glob("*/sources/*-control.png"))


@pytest.fixture
def guided(tmp_path: Path) -> dict:
    """One guided job of two pictures, recorded in a history."""
    photo, sketch = noise(1), noise(2, (24, 24))
    store = HistoryStore(tmp_path / "history.db")
    events, (job,), generator = run_jobs(tmp_path, [guided_request(tmp_path, photo, sketch, batch_count=2)], store)
    finished = next(e for e in events if isinstance(e, JobFinished | JobFailed) and e.job_id == job)
    assert isinstance(finished, JobFinished), finished
    yield {"photo": photo, "sketch": sketch, "store": store, "finished": finished, "generator": generator,
           "rows": list(reversed(store.search()))}
    store.close()


def test_each_distinct_control_picture_is_kept_once_before_the_engine_runs(tmp_path, guided):
    kept = kept_files(tmp_path)
    assert len(kept) == 2  # the photo once (two guides read it) and the sketch
    (seen,) = guided["generator"].requests
    paths = [g.image_path for g in seen.controls]
    assert paths[0] == paths[1] != paths[2]
    assert sorted({Path(p) for p in paths}) == kept and all(is_kept_control(p) for p in paths)
    with Image.open(paths[0]) as photo, Image.open(paths[2]) as sketch:
        assert same_pixels(photo, guided["photo"]) and same_pixels(sketch, guided["sketch"])
    # Only the picture's path changed; the engine got every guide as asked.
    asked = guided_request(tmp_path, guided["photo"], guided["sketch"]).controls
    assert seen.controls == tuple(replace(g, image_path=p) for g, p in zip(asked, paths))
    # The pictures' recipes name the kept copies, relative to the outputs folder: people share these pictures, and
    # no folder of their computer goes with them (the history, which stays on it, keeps the full paths).
    outputs = tmp_path / "outputs"
    for output in guided["finished"].outputs:
        written = [r["image"] for r in read_recipe(output.path).controls]
        assert written == [Path(p).relative_to(outputs).as_posix() for p in paths]
        assert all(w.count("/") == 2 and w.split("/")[1] == "sources" for w in written)
        assert str(tmp_path) not in read_recipe(output.path).to_json() and str(Path.home()) not in written[0]
        assert output.recipe.controls == read_recipe(output.path).controls  # the canvas's, for File → Save, alike


def test_the_history_records_the_guides_with_their_kept_pictures_and_the_models_hashes(guided):
    (seen,) = guided["generator"].requests
    rows = guided["rows"]
    assert len(rows) == 2
    for row in rows:
        assert row.params["controls"] == [g.to_record("c0ffee") for g in seen.controls]
        assert all(Path(r["image"]).is_absolute() and Path(r["image"]).is_file() for r in row.params["controls"])


def test_a_rerun_uses_the_kept_pictures(guided):
    (seen,) = guided["generator"].requests
    again = prepare_request(request_for_entry(guided["rows"][1])).request
    assert again.controls == seen.controls and again.seed == 31
    assert same_pixels(again.controls[0].image, guided["photo"])
    assert same_pixels(again.controls[1].image, guided["photo"])
    assert same_pixels(again.controls[2].image, guided["sketch"])


def test_a_rerun_shares_the_kept_pictures_instead_of_keeping_copies(tmp_path, guided):
    before = kept_files(tmp_path)
    again = prepare_request(request_for_entry(guided["rows"][1])).request
    store = guided["store"]
    run_jobs(tmp_path, [again], store)
    assert kept_files(tmp_path) == before  # no second copy of either picture
    newest = store.search()[0]
    assert [g["image"] for g in newest.params["controls"]] == [g.image_path for g in again.controls]
    for row in guided["rows"]:  # the first job's entries go: the rerun still uses their pictures
        store.delete(row.id)
    assert kept_files(tmp_path) == before
    assert prepare_request(request_for_entry(newest)).request.controls == again.controls


def test_a_rerun_whose_control_picture_is_gone_or_unrecorded_is_refused_in_one_sentence(guided):
    row = guided["rows"][0]
    gone = row.params["controls"][2]["image"]
    Path(gone).unlink()
    with pytest.raises(InvalidRequest) as caught:
        request_for_entry(row)
    assert str(caught.value) == f"The control picture {gone} of history entry {row.id} no longer exists."
    record = row.params["controls"][0]
    unkept = replace(row, params={**row.params, "controls": [{**record, "image": ""}]})
    with pytest.raises(InvalidRequest) as caught:
        request_for_entry(unkept)
    assert str(caught.value) == (f"The control picture of the control guide of history entry {row.id} was not "
                                 "kept, so it cannot be run again.")
    damaged = replace(row, params={**row.params, "controls": [record, {**record, "weight": "strong"}]})
    with pytest.raises(InvalidRequest) as caught:
        request_for_entry(damaged)
    assert str(caught.value) == f"The record of control guide 2 of history entry {row.id} is damaged, so it cannot " \
                                "be run again."


def test_deleting_the_last_entry_that_uses_a_kept_control_picture_removes_it(tmp_path, guided):
    store, (first, second) = guided["store"], guided["rows"]
    kept = kept_files(tmp_path)
    store.delete(first.id)
    assert kept_files(tmp_path) == kept  # the other picture of the job still uses them
    store.delete(second.id)
    assert kept_files(tmp_path) == []
    assert not Path(second.image_path).exists()


def test_a_picture_that_cannot_be_kept_is_a_note_and_the_guide_keeps_the_file_it_named(tmp_path):
    class FullDisk(OutputStore):
        def save_control(self, image: Image.Image) -> Path:
            raise StudioError("The control picture could not be saved in /full: No space left on device.")

    store = HistoryStore(tmp_path / "history.db")
    events, (job,), generator = run_jobs(tmp_path, [guided_request(tmp_path, noise(1), noise(2))], store,
                                         outputs=FullDisk(tmp_path / "outputs"))
    finished = next(e for e in events if isinstance(e, JobFinished | JobFailed) and e.job_id == job)
    assert isinstance(finished, JobFinished)
    said = ("could not be kept for the history: The control picture could not be saved in /full: No space left on "
            "device.")
    # One note per picture: the two guides that share the photo say it once.
    assert [n for n in finished.notes if "control picture" in n] == [
        f"The control picture of control guide 1 {said}", f"The control picture of control guide 3 {said}"]
    assert [g.image_path for g in generator.requests[0].controls] == [str(tmp_path / "photo.png")] * 2 + [""]
    # The picture's recipe names the person's own file by its name alone (no folder of their computer); the history
    # row, which stays on it, by its full path.
    (output,) = finished.outputs
    assert [r["image"] for r in read_recipe(output.path).controls] == ["photo.png", "photo.png", ""]
    assert str(tmp_path) not in read_recipe(output.path).to_json()
    (row,) = store.search()
    assert [r["image"] for r in row.params["controls"]] == [str(tmp_path / "photo.png")] * 2 + [""]
    store.close()


def test_a_failed_job_s_row_records_its_guides_and_their_kept_pictures(tmp_path):
    store = HistoryStore(tmp_path / "history.db")
    run_jobs(tmp_path, [guided_request(tmp_path, noise(1), noise(2), prompt="fail")], store)
    (row,) = store.search()
    assert row.outcome == "failed"
    images = [r["image"] for r in row.params["controls"]]
    assert sorted({Path(p) for p in images}) == kept_files(tmp_path) and len(images) == 3
    assert [r["hash"] for r in row.params["controls"]] == ["", "", ""]  # no picture: no recipe told the hashes
    store.close()


def test_without_an_outputs_folder_nothing_is_kept():
    request = fake_request(generator="diffusers", controls=(ControlGuide("canny", noise(1), image_path="/a.png"),))
    notes: list[str] = []
    assert keep_control_pictures(request, None, notes.append) is request
    assert notes == []


# -- deleting entries: which control pictures are Studio's to remove --------------------------------------

def kept_picture(folder: Path, name: str) -> str:
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    path = folder / "sources" / name
    Image.new("RGB", (8, 8)).save(path)
    return str(path)


def guided_entry(*images: str, prompt: str = "a castle") -> HistoryEntry:
    return HistoryEntry(prompt=prompt, params={"controls": [
        ControlGuide("canny", image_path=image).to_record() for image in images]})


def test_a_kept_control_picture_stays_while_another_entry_s_guide_uses_it(tmp_path):
    store = HistoryStore(tmp_path / "history.db")
    shared = kept_picture(tmp_path / "outputs" / "2026-01-02", "101010-0123456789-control.png")
    only_first = kept_picture(tmp_path / "outputs" / "2026-01-02", "101010-abcdefabcd-control.png")
    first = store.add(guided_entry(shared, only_first))
    second = store.add(guided_entry(shared))
    # Other text that holds a path (a prompt, a note in the params) is no use of it: only a guide is.
    store.add(HistoryEntry(prompt=f'"{only_first}"', params={"note": only_first}))
    store.delete(first)
    assert Path(shared).is_file() and not Path(only_first).exists()
    store.delete(second)
    assert not Path(shared).exists()
    store.close()


def test_a_guide_that_names_the_person_s_own_picture_never_removes_it(tmp_path):
    store = HistoryStore(tmp_path / "history.db")
    own = tmp_path / "photos" / "sources" / "castle.png"  # not a name Studio gives the pictures it keeps
    own.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(own)
    store.delete(store.add(guided_entry(str(own))))
    assert own.is_file()
    store.close()


# -- one kept copy per picture: named by its pixels, never written twice ------------------------------------------

def test_a_picture_given_again_in_another_job_is_the_same_kept_file_not_written_again(tmp_path):
    store = HistoryStore(tmp_path / "history.db")
    photo, sketch = noise(1), noise(2, (24, 24))
    run_jobs(tmp_path, [guided_request(tmp_path, photo, sketch)], store)
    kept = kept_files(tmp_path)
    assert sorted(p.name for p in kept) == sorted(f"{pixel_digest(i)}-control.png" for i in (photo, sketch))
    written = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept}
    # The same pixels again (new Image objects, as a file opened again gives), with another picture beside them.
    other = noise(3)
    again = guided_request(tmp_path, photo.copy(), other)
    run_jobs(tmp_path, [again], store)
    assert len(kept_files(tmp_path)) == 3 and set(kept) < set(kept_files(tmp_path))
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept} == written  # named, not written again
    first, second = reversed(store.search())
    assert [g["image"] for g in second.params["controls"]][:2] == [g["image"] for g in first.params["controls"]][:2]
    # A copy stays while any entry uses it: the first job's entry goes, the photo stays for the second's.
    store.delete(first.id)
    photo_copy, sketch_copy = (kept[0].parent / f"{pixel_digest(i)}-control.png" for i in (photo, sketch))
    assert photo_copy.is_file() and not sketch_copy.exists()
    store.delete(second.id)
    assert kept_files(tmp_path) == []
    store.close()


def test_a_kept_picture_removed_with_a_deleted_entry_while_a_job_used_it_is_kept_again(tmp_path, monkeypatch):
    """The person deletes the last entry that used a picture while a rerun of it runs: the rerun's row and pictures
    name that file, so it is written again where it was."""
    from studio_testing import ControlRecordingGenerator

    store = HistoryStore(tmp_path / "history.db")
    photo, sketch = noise(1), noise(2, (24, 24))
    run_jobs(tmp_path, [guided_request(tmp_path, photo, sketch)], store)
    (first,) = store.search()
    rerun = prepare_request(request_for_entry(first)).request
    made = ControlRecordingGenerator.generate

    def deleting_first(self, request, context):  # noqa: ANN001, ANN202
        store.delete(first.id)  # its kept pictures go: only it used them, as far as the history knows yet
        assert kept_files(tmp_path) == []
        yield from made(self, request, context)

    monkeypatch.setattr(ControlRecordingGenerator, "generate", deleting_first)
    run_jobs(tmp_path, [rerun], store)
    (row,) = store.search()
    paths = [g["image"] for g in row.params["controls"]]
    assert paths == [g.image_path for g in rerun.controls] and all(Path(p).is_file() for p in paths)
    with Image.open(paths[0]) as kept_photo, Image.open(paths[2]) as kept_sketch:
        assert same_pixels(kept_photo, photo) and same_pixels(kept_sketch, sketch)
    assert "notes" not in row.params
    store.close()


def test_a_picture_an_older_studio_kept_is_written_again_under_the_name_its_entry_records(tmp_path, monkeypatch):
    """Kept pictures were named by the time and a random number before they were named by their pixels: one of
    those removed while a rerun that names it runs is written again under that name, not its pixels' digest."""
    from studio_testing import ControlRecordingGenerator

    store = HistoryStore(tmp_path / "history.db")
    photo, sketch = noise(1), noise(2, (24, 24))
    run_jobs(tmp_path, [guided_request(tmp_path, photo, sketch)], store)
    (first,) = store.search()
    records = []
    for number, record in enumerate(first.params["controls"]):  # as an older Studio named and recorded them
        old = Path(record["image"]).with_name(f"101010-{number:010d}-control.png")
        if Path(record["image"]).exists():
            Path(record["image"]).rename(old)
        records.append({**record, "image": str(old) if old.exists() else records[0]["image"]})
    older = store.get(store.add(replace(first, id=0, params={**first.params, "controls": records})))
    store.delete(first.id)
    rerun = prepare_request(request_for_entry(older)).request
    assert [g.image_path for g in rerun.controls] == [r["image"] for r in records]
    made = ControlRecordingGenerator.generate

    def deleting_older(self, request, context):  # noqa: ANN001, ANN202
        store.delete(older.id)
        assert kept_files(tmp_path) == []
        yield from made(self, request, context)

    monkeypatch.setattr(ControlRecordingGenerator, "generate", deleting_older)
    run_jobs(tmp_path, [rerun], store)
    (row,) = store.search()
    paths = [g["image"] for g in row.params["controls"]]
    assert paths == [r["image"] for r in records] and all(Path(p).is_file() for p in paths)
    assert sorted(kept_files(tmp_path)) == sorted({Path(p) for p in paths})  # no copy under another name
    with Image.open(paths[0]) as kept_photo, Image.open(paths[2]) as kept_sketch:
        assert same_pixels(kept_photo, photo) and same_pixels(kept_sketch, sketch)
    store.close()


@pytest.mark.parametrize(("name", "kept"), [
    ("0123456789abcdef-control.png", True), ("101010-0123456789-control.png", True),  # today's names, and before
    ("0123456789abcdef-picture.png", True),  # a plugin's picture parameter's
    ("0123456789abcde-control.png", False), ("castle-control.png", False), ("0123456789abcdef-image.png", False)])
def test_only_the_names_studio_gives_kept_control_pictures_are_its_to_remove(name: str, kept: bool):
    assert is_kept_control(f"/outputs/2026-01-02/sources/{name}") is kept
    assert not is_kept_control(f"/photos/{name}")
