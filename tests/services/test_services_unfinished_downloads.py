"""Downloads stopped half-way: listed with what of them is on disk, resumed by downloading again, deleted on request
(not while running). Against a fake hub on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock
from hub_server import isolated_hub_client
from unfinished_download import REPO, WEIGHTS, stop_half_way, vae_files, vae_hub

from studio.core.errors import InvalidRequest, JobCancelledError
from studio.core.units import format_size
from studio.services import unfinished_downloads as unfinished_module
from studio.services.download_folders import STAGING, WORK_DIR
from studio.services.download_progress import DownloadProgress
from studio.services.model_downloads import download_model, plan_download
from studio.services.unfinished_downloads import ASIDE, UnfinishedDownload, delete_unfinished, unfinished_downloads


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with isolated_hub_client(tmp_path / "hf-home", monkeypatch):
        yield


def test_a_stopped_download_is_listed_with_its_bytes_and_resumes(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert unfinished_downloads(models) == []  # no models folder yet: nothing
    with vae_hub() as hub:
        total = stop_half_way(hub, models)
        [stopped] = unfinished_downloads(models)
        folder = models / STAGING / "tester--tiny-vae"
        partial = sum(p.stat().st_size for p in (folder / "tiny-vae" / WORK_DIR).glob("*.incomplete"))
        assert partial >= 40_000
        assert stopped == UnfinishedDownload(REPO, folder, len(vae_files()["config.json"]) + partial, total)
        assert total == sum(map(len, vae_files().values()))
        assert stopped.progress == f"{format_size(stopped.done_bytes)} of {format_size(total)} downloaded"
        download_model(plan_download(REPO, models, endpoint=hub.url), endpoint=hub.url)  # resumes it
    assert unfinished_downloads(models) == []


def test_deleting_a_stopped_download_leaves_no_folder_and_a_running_one_is_not_deleted(tmp_path: Path) -> None:
    models = tmp_path / "models"
    with vae_hub() as hub:
        stop_half_way(hub, models)
    [stopped] = unfinished_downloads(models)
    lock = stopped.folder / "tiny-vae" / WORK_DIR / "lock"  # as a download running into it holds it
    with FileLock(str(lock)), pytest.raises(InvalidRequest, match=rf"^{REPO} is downloading now; cancel it"):
        delete_unfinished(stopped, models)
    assert stopped.folder.is_dir()
    delete_unfinished(stopped, models)
    assert not (models / STAGING).exists() and unfinished_downloads(models) == []
    with pytest.raises(InvalidRequest, match="is not an unfinished download in"):  # never another folder
        delete_unfinished(UnfinishedDownload(REPO, models, 0, None), models)
    assert models.is_dir()


def test_a_download_running_now_is_not_listed_to_remove(tmp_path: Path) -> None:
    """A download running (in this window, another, or `studio models download`) was listed with Remove beside it."""
    models = tmp_path / "models"
    listed_while_running: list[list[UnfinishedDownload]] = []

    def stop_at_40_kb(events: list[DownloadProgress]) -> bool:
        if events and events[-1].file == WEIGHTS and events[-1].file_done >= 40_000:
            listed_while_running.append(unfinished_downloads(models))
            return True
        return False

    with vae_hub() as hub:
        events: list[DownloadProgress] = []
        with pytest.raises(JobCancelledError):
            download_model(plan_download(REPO, models, endpoint=hub.url), progress=events.append, endpoint=hub.url,
                           cancelled=lambda: stop_at_40_kb(events))
    assert listed_while_running == [[]]
    assert [download.repo_id for download in unfinished_downloads(models)] == [REPO]  # stopped: listed now


def test_a_download_started_while_a_remove_deletes_is_not_refused_nor_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove held the download's lock while it deleted (gigabytes, for a while): Resume in another window was
    refused as "already running" meanwhile, and a download let in would have had its files deleted under it."""
    models = tmp_path / "models"
    rmtree = unfinished_module.shutil.rmtree
    with vae_hub() as hub:
        stop_half_way(hub, models)
        [stopped] = unfinished_downloads(models)

        def download_then_delete(path: Path, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            monkeypatch.setattr(unfinished_module.shutil, "rmtree", rmtree)
            download_model(plan_download(REPO, models, endpoint=hub.url), endpoint=hub.url)  # all of it, anew
            rmtree(path, *args, **kwargs)

        monkeypatch.setattr(unfinished_module.shutil, "rmtree", download_then_delete)
        delete_unfinished(stopped, models)
    assert unfinished_downloads(models) == [] and not (models / STAGING).exists()
    [config] = models.rglob("config.json")  # the new download, whole, filed in the library
    assert config.read_bytes() == vae_files()["config.json"]
    assert (config.parent / WEIGHTS).read_bytes() == vae_files()[WEIGHTS]


def test_what_a_remove_left_half_deleted_is_deleted_by_the_window_s_listing_not_by_a_read_only_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Studio stopped while Remove deleted the folder it had moved aside: nothing listed what was left there. The
    window, where Removes are made, finishes it as it lists the downloads; `studio models list` (which lists them
    through ``unfinished_downloads``) deleted it silently, and now only reads."""
    from studio.ui.models_dialog import _scan

    models = tmp_path / "models"
    with vae_hub() as hub:
        stop_half_way(hub, models)
        stop_half_way(hub, models / "other")  # another unfinished download, in another models folder
    [stopped] = unfinished_downloads(models)

    def stopped_while_deleting(path: Path, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise KeyboardInterrupt  # as far as the delete got when Studio stopped

    monkeypatch.setattr(unfinished_module.shutil, "rmtree", stopped_while_deleting)
    with pytest.raises(KeyboardInterrupt):
        delete_unfinished(stopped, models)
    monkeypatch.undo()
    [leftover] = (models / STAGING / ASIDE).iterdir()
    assert next(leftover.rglob("*.incomplete")).stat().st_size > 0
    (models / "kept.txt").write_text("the person's")  # beside the staging area: never touched
    assert unfinished_downloads(models) == []
    assert (models / STAGING / ASIDE / leftover.name).is_dir()  # a listing deletes nothing
    assert _scan(models, []) == ([], [])
    assert not (models / STAGING).exists() and (models / "kept.txt").is_file()
    assert [d.repo_id for d in unfinished_downloads(models / "other")] == [REPO]


def test_a_state_without_a_total_says_the_bytes_alone(tmp_path: Path) -> None:
    """A download started by a Studio that did not record its size."""
    assert UnfinishedDownload(REPO, tmp_path, 2048, None).progress == "2.0 KB downloaded"


def test_a_remove_also_deletes_what_an_earlier_remove_left_half_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    with vae_hub() as hub:
        stop_half_way(hub, models)
    [stopped] = unfinished_downloads(models)
    leftover = models / STAGING / ASIDE / "owner--gone-0123abcd"
    (leftover / "tiny-vae").mkdir(parents=True)
    (leftover / "tiny-vae" / "part.incomplete").write_bytes(b"x" * 64)
    delete_unfinished(stopped, models)
    assert not (models / STAGING).exists()
