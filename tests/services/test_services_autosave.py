"""The autosave: the document on disk at once after a change, the latest state only, and gone after a clean exit."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from studio.core import document_io
from studio.core.document_io import DocumentSnapshot, load_document
from studio.services import autosave
from studio.services.autosave import Autosaver, find_recoverable


class Work:
    """A document whose revision moves on, as the window's does."""

    def __init__(self) -> None:
        self.revision = 0

    def change(self) -> None:
        self.revision += 1

    def snapshot(self) -> DocumentSnapshot:
        picture = Image.new("RGB", (32, 24), (self.revision * 20 % 256, 0, 0))
        return DocumentSnapshot(picture, np.zeros((24, 32), dtype=np.uint8), None, self.revision)


def test_saves_that_pile_up_behind_a_slow_one_write_the_latest_state_once(tmp_path: Path, monkeypatch):  # noqa: ANN001
    work = Work()
    writing = threading.Event()
    written: list[int] = []
    real_save = document_io.save_document

    def slow_save(snapshot: DocumentSnapshot, folder: Path) -> None:
        writing.wait(5)  # a 4096x4096 picture took 1.3 s
        written.append(snapshot.revision)
        real_save(snapshot, folder)

    monkeypatch.setattr(autosave, "save_document", slow_save)

    async def scenario() -> list[bool]:
        saver = Autosaver(tmp_path / "autosave", work.snapshot, interval=3600)
        work.change()
        first = asyncio.ensure_future(saver.save_now())
        await asyncio.sleep(0.05)
        waiting = []
        for _ in range(3):  # three results land while the first is written
            work.change()
            waiting.append(asyncio.ensure_future(saver.save_now()))
        await asyncio.sleep(0.05)
        writing.set()
        results = await asyncio.gather(first, *waiting)
        assert load_document(saver.folder).image.getpixel((0, 0)) == (80, 0, 0)  # revision 4's picture
        assert not find_recoverable(tmp_path / "autosave")  # this Studio holds its lock
        saver.close()
        return results

    results = asyncio.run(scenario())
    assert written == [1, 4] and results == [True, True, False, False]
    assert not (tmp_path / "autosave").exists() or not any((tmp_path / "autosave").iterdir())


def test_a_failing_autosave_says_so_once_and_again_after_it_worked(tmp_path: Path, monkeypatch):  # noqa: ANN001
    work = Work()
    told: list[str] = []
    broken = [True]
    real_save = document_io.save_document

    def save(snapshot: DocumentSnapshot, folder: Path) -> None:
        if broken[0]:
            raise OSError(28, "No space left on device")
        real_save(snapshot, folder)

    monkeypatch.setattr(autosave, "save_document", save)

    async def scenario() -> list[bool]:
        saver = Autosaver(tmp_path / "autosave", work.snapshot, interval=3600, on_failure=told.append)
        results = []
        for fixed in (False, False, True, False):
            broken[0] = not fixed
            work.change()
            results.append(await saver.save_now())
        saver.close()
        return results

    assert asyncio.run(scenario()) == [False, False, True, False]
    assert told == ["Autosave failed (No space left on device); until it works again, save your work "
                    "yourself."] * 2  # once when it began failing, once more when it failed again after working


def test_older_autosaves_are_kept_as_pictures_unless_they_cannot_be_written(tmp_path: Path):
    work = Work()
    for name in ("a", "b"):
        work.change()
        document_io.save_document(work.snapshot(), tmp_path / "autosave" / name)
    found = find_recoverable(tmp_path / "autosave")
    (tmp_path / "blocked").write_text("a file where the folder would go")
    assert autosave.keep_as_pictures(found, tmp_path / "blocked" / "Recovered") == []
    assert len(find_recoverable(tmp_path / "autosave")) == 2  # kept, to be found again at the next start
    written = autosave.keep_as_pictures(found, tmp_path / "Recovered")
    assert len(written) == 2 and len(set(written)) == 2  # the same second: numbered, not overwritten
    assert not [p for p in written if "mask" in p.name] and find_recoverable(tmp_path / "autosave") == []
    assert sorted(Image.open(p).getpixel((0, 0)) for p in written) == [(20, 0, 0), (40, 0, 0)]


def test_a_damaged_autosave_never_stops_the_others_from_being_recovered(tmp_path: Path):
    """Valid JSON of the wrong shape raised past find_recoverable, so no autosave was offered at all, at every start."""
    import json

    from studio.core.metadata import Recipe
    from studio.services.autosave import keep_as_pictures

    snapshot = DocumentSnapshot(Image.new("RGB", (16, 16), (9, 9, 9)), np.zeros((16, 16), np.uint8),
                                Recipe("p", "", 20, "Euler", 7, 1, 16, 16, "m"), 1)
    damage = {
        "a list": lambda meta: [],
        "a recipe without a field": lambda meta: {**meta, "recipe": {k: v for k, v in meta["recipe"].items()
                                                                    if k != "model_name"}},
        "a recipe that is a string": lambda meta: {**meta, "recipe": "oops"},
        "a time that is words": lambda meta: {**meta, "saved_at": "yesterday"},
        "a time past any clock": lambda meta: {**meta, "saved_at": float("inf")},
    }
    for name, change in damage.items():
        root = tmp_path / name
        document_io.save_document(snapshot, root / "good")
        document_io.save_document(snapshot, root / "damaged")
        meta = json.loads((root / "damaged" / "document.json").read_text())
        (root / "damaged" / "document.json").write_text(json.dumps(change(meta)))
        found = find_recoverable(root)
        assert any(doc.folder.name == "good" and doc.recipe is not None for doc in found), name
        assert len(keep_as_pictures(found, tmp_path / "Recovered" / name)) == len(found), name


def test_an_autosave_past_the_pixel_limit_is_still_recovered(tmp_path: Path, monkeypatch):  # noqa: ANN001
    """open_image refuses pictures past MAX_PIXELS; an autosave's own files are Studio's, so a canvas made that
    large (before Studio refused to make one) is recovered, not skipped and lost."""
    from studio.core import images

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # open_image sets Pillow's: put back
    monkeypatch.setattr(images, "MAX_PIXELS", 40 * 40)
    mask = np.zeros((40, 48), np.uint8)
    mask[5:9, 5:9] = 255
    document_io.save_document(DocumentSnapshot(Image.new("RGB", (48, 40), (9, 8, 7)), mask, None, 1),
                              tmp_path / "big")
    [found] = find_recoverable(tmp_path)
    assert found.image.size == (48, 40) and np.array_equal(found.mask, mask)


def test_a_snapshot_taken_partly_in_a_worker_is_awaited(tmp_path: Path):
    """The window copies the mask in a worker thread: its snapshot is a coroutine."""
    work = Work()

    async def snapshot() -> DocumentSnapshot:
        await asyncio.sleep(0)
        return work.snapshot()

    async def scenario() -> tuple[bool, bool]:
        saver = Autosaver(tmp_path / "autosave", snapshot, interval=3600)
        work.change()
        saved = await saver.save_now(), await saver.save_now()
        assert load_document(saver.folder).image.getpixel((0, 0)) == (20, 0, 0)
        saver.close()
        return saved

    assert asyncio.run(scenario()) == (True, False)  # the second: nothing changed since


def test_a_save_under_way_at_a_clean_exit_leaves_nothing_to_recover(tmp_path: Path, monkeypatch):  # noqa: ANN001
    """Closed while a save awaits its snapshot (the mask copied in a worker), or while its picture is being written:
    the folder is removed and stays removed, so the next start offers nothing."""
    image, mask = Image.new("RGB", (64, 64)), np.zeros((64, 64), np.uint8)

    async def snapshot() -> DocumentSnapshot:
        return DocumentSnapshot(image, await asyncio.to_thread(mask.copy), None, 1)

    async def close_while_copying() -> bool:
        saver = Autosaver(tmp_path / "a", snapshot)
        save = asyncio.ensure_future(saver.save_now())
        await asyncio.sleep(0)
        saver.close()
        return await save

    assert asyncio.run(close_while_copying()) is False
    assert find_recoverable(tmp_path / "a") == [] and not any((tmp_path / "a").iterdir())

    writing, real = threading.Event(), autosave.save_document

    def slow_write(snapshot: DocumentSnapshot, folder: Path) -> None:
        writing.set()
        time.sleep(0.3)
        real(snapshot, folder)

    monkeypatch.setattr(autosave, "save_document", slow_write)

    async def close_while_writing() -> bool:
        saver = Autosaver(tmp_path / "b", snapshot)
        save = asyncio.ensure_future(saver.save_now())
        await asyncio.to_thread(writing.wait, 5)
        saver.close()  # waits for the write, then removes the folder
        return await save

    asyncio.run(close_while_writing())
    assert find_recoverable(tmp_path / "b") == [] and not any((tmp_path / "b").iterdir())


def test_an_unreadable_autosave_is_set_aside_where_it_can_be_and_left_where_it_cannot(tmp_path: Path):
    from studio.services.autosave import scan_autosaves

    root = tmp_path / "autosave"
    (root / "bad").mkdir(parents=True)
    (root / "bad" / "document.json").write_text('{"format": 1, "ima')
    assert scan_autosaves(root) == ([], [])  # nowhere given to move it: left, and not reported
    (tmp_path / "outputs").write_text("a file where the outputs folder should be")
    [stuck] = scan_autosaves(root, tmp_path / "outputs" / "Recovered")[1]
    assert (stuck.folder, stuck.moved) == (root / "bad", False) and (root / "bad" / "document.json").is_file()
    (tmp_path / "outputs").unlink()
    [aside] = scan_autosaves(root, tmp_path / "outputs" / "Recovered")[1]
    assert (aside.folder, aside.moved) == (tmp_path / "outputs" / "Recovered" / "damaged-bad", True)
    assert (aside.folder / "document.json").read_text() == '{"format": 1, "ima' and not (root / "bad").exists()
    assert scan_autosaves(root, tmp_path / "outputs" / "Recovered") == ([], [])  # said once: gone from there


def test_the_plugin_running_when_studio_died_is_named_once_and_a_clean_close_names_none(tmp_path: Path):
    from studio.services.autosave import RunningPlugin, take_running_plugins

    root = tmp_path / "autosave"
    running = RunningPlugin("hp-bad", "Hostile Bad", "1.0.0", "Hostile post")
    died = Autosaver(root, lambda: None, interval=3600)
    died.mark_plugin(running)
    assert take_running_plugins(root) == []  # its Studio still runs (holds the lock): not a crash
    died._lock.release()  # as the OS does when the process dies (os._exit, a native crash): no close
    closed = Autosaver(root, lambda: None, interval=3600)
    closed.mark_plugin(running)
    closed.close(keep=True)  # closed while the plugin ran: nothing crashed
    assert take_running_plugins(root) == [running]
    assert take_running_plugins(root) == []  # said once
    finished = Autosaver(root, lambda: None, interval=3600)
    finished.mark_plugin(running)
    finished.mark_plugin(None)  # the job ended
    finished._lock.release()
    assert take_running_plugins(root) == []


def test_a_generation_running_when_studio_died_is_counted_once_and_a_clean_close_or_its_end_leaves_none(
        tmp_path: Path):
    from studio.services.autosave import take_running_jobs, take_running_plugins

    root = tmp_path / "autosave"
    died = Autosaver(root, lambda: None, interval=3600)
    died.mark_job(True)
    assert take_running_jobs(root) == 0  # its Studio still runs (holds the lock): not a crash
    died._lock.release()  # killed mid-job: no close
    closed = Autosaver(root, lambda: None, interval=3600)
    closed.mark_job(True)
    closed.close(keep=True)  # closed while it ran (its jobs are cancelled): nothing crashed
    finished = Autosaver(root, lambda: None, interval=3600)
    finished.mark_job(True)
    finished.mark_job(False)  # the job ended
    finished._lock.release()
    assert take_running_plugins(root) == []  # not taken for a plugin's marker
    assert take_running_jobs(root) == 1
    assert take_running_jobs(root) == 0  # said once


def test_markers_that_cannot_be_removed_or_locked_never_stop_the_others_being_taken(tmp_path: Path, monkeypatch):  # noqa: ANN001
    """A read-only data folder: the marker's removal fails, or its folder's lock file cannot be made. Neither
    escapes (the window asks this first, then whether to restore): each is logged and the other folders read."""
    import filelock

    from studio.services.autosave import RUNNING_PLUGIN, RunningPlugin, take_running_plugins

    root = tmp_path / "autosave"
    plugins = [RunningPlugin(f"hp-{n}", "Hostile", "1.0.0", f"Post {n}") for n in range(3)]
    for running in plugins:
        died = Autosaver(root, lambda: None, interval=3600)
        died.mark_plugin(running)
        died._lock.release()  # killed: no close
    real_unlink, real_acquire = Path.unlink, filelock.FileLock.acquire
    locked_out = sorted(root.iterdir())[0]

    def unlink(path: Path, missing_ok: bool = False) -> None:
        if path.name == RUNNING_PLUGIN:
            raise PermissionError(13, "Read-only file system", str(path))
        real_unlink(path, missing_ok=missing_ok)

    def acquire(lock, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if Path(lock.lock_file).parent == locked_out:
            raise PermissionError(13, "Permission denied", lock.lock_file)
        return real_acquire(lock, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)
    monkeypatch.setattr(filelock.FileLock, "acquire", acquire)
    taken = take_running_plugins(root)
    assert len(taken) == 2 and set(taken) < set(plugins)
    monkeypatch.undo()
    assert len(take_running_plugins(root)) == 3  # their locks were let go; the markers could not be removed


def test_a_job_marker_does_not_wait_for_a_canvas_being_written(tmp_path: Path, monkeypatch):  # noqa: ANN001
    """mark_job runs on the window's thread as a job starts and ends; it took the lock a whole canvas's encoding and
    writing holds, so a large autosave under way stalled the window for as long."""
    writing, release = threading.Event(), threading.Event()

    def slow_save(snapshot: DocumentSnapshot, folder: Path) -> None:  # noqa: ARG001
        writing.set()
        release.wait(10)

    monkeypatch.setattr(autosave, "save_document", slow_save)
    snapshot = DocumentSnapshot(Image.new("RGB", (8, 8)), np.zeros((8, 8), np.uint8), None, 1)
    saver = Autosaver(tmp_path / "autosave", lambda: snapshot, interval=3600)
    writer = threading.Thread(target=saver._write, args=(snapshot,))
    writer.start()
    try:
        assert writing.wait(10)
        started = time.perf_counter()
        saver.mark_job(True)
        assert time.perf_counter() - started < 1.0
        assert (saver.folder / autosave.RUNNING_JOB).exists()
    finally:
        release.set()
        writer.join()
        saver.close()
