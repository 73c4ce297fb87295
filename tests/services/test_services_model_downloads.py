"""Hub downloads against a fake hub on 127.0.0.1: file choice, progress, resume, cancel, refusals."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from filelock import FileLock
from hub_server import FakeHub, FakeRepo, isolated_hub_client
from huggingface_hub import constants

from studio.core.errors import InvalidRequest, JobCancelledError, ModelError
from studio.core.model_library import read_source
from studio.core.starter_models import STARTER_MODELS
from studio.services import model_downloads
from studio.services.hub_files import select_files
from studio.services.model_downloads import (
    DownloadPlan,
    DownloadProgress,
    download_model,
    plan_download,
)

REPO = "tester/tiny-sd"
BIG = "unet/diffusion_pytorch_model.fp16.safetensors"


def _bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _pipeline_files() -> dict[str, bytes]:
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "PNDMScheduler"],
             "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
             "feature_extractor": ["transformers", "CLIPImageProcessor"], "image_encoder": [None, None]}
    return {
        "model_index.json": json.dumps(index).encode(),
        "README.md": b"# tiny", ".gitattributes": b"*.safetensors filter=lfs",
        "v1-5-pruned-emaonly.safetensors": _bytes(1, 5000),  # a single-file copy at the root: skipped
        "unet/config.json": b'{"sample_size": 8}',
        "unet/diffusion_pytorch_model.safetensors": _bytes(2, 9000),
        BIG: _bytes(3, 300_000),
        "unet/diffusion_pytorch_model.non_ema.safetensors": _bytes(4, 9000),
        "unet/diffusion_pytorch_model.bin": _bytes(5, 900),
        "unet/diffusion_flax_model.msgpack": _bytes(6, 900),
        "vae/config.json": b'{"latent_channels": 4}',
        "vae/diffusion_pytorch_model.safetensors": _bytes(7, 4000),
        "vae/diffusion_pytorch_model.fp16.safetensors": _bytes(8, 2000),
        "vae_decoder/config.json": b"{}", "vae_decoder/model.onnx": _bytes(9, 700),  # not a component
        "text_encoder/config.json": b'{"hidden_size": 32}',
        "text_encoder/model.safetensors": _bytes(10, 6000),
        "text_encoder/model.fp16.safetensors": _bytes(11, 3000),
        "text_encoder/pytorch_model.bin": _bytes(12, 600),
        "tokenizer/vocab.json": b'{"a": 0}', "tokenizer/merges.txt": b"#version: 0.2\n",
        "tokenizer/tokenizer_config.json": b"{}", "tokenizer/special_tokens_map.json": b"{}",
        "scheduler/scheduler_config.json": b'{"num_train_timesteps": 1000}',
        "safety_checker/config.json": b"{}", "safety_checker/model.safetensors": _bytes(13, 800),
        "feature_extractor/preprocessor_config.json": b"{}",
    }


EXPECTED = {"model_index.json", "unet/config.json", BIG, "vae/config.json",
            "vae/diffusion_pytorch_model.fp16.safetensors", "text_encoder/config.json",
            "text_encoder/model.fp16.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt",
            "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
            "scheduler/scheduler_config.json", "feature_extractor/preprocessor_config.json"}


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No real HF home, token or endpoint; chunks of 4 KB so progress and cancel happen inside tiny files."""
    with isolated_hub_client(tmp_path / "hf-home", monkeypatch):
        yield


@pytest.fixture
def hub():
    with FakeHub({REPO: FakeRepo(_pipeline_files(), sha="1" * 40)}) as server:
        yield server


def _listing(files: dict[str, bytes]) -> list[tuple[str, int]]:
    return [(path, len(data)) for path, data in files.items()]


def test_select_files_takes_one_fp16_variant_and_no_pickles_or_safety_checker() -> None:
    components = {"unet", "vae", "text_encoder", "tokenizer", "scheduler", "safety_checker", "feature_extractor"}
    chosen = {path for path, _ in select_files(REPO, _listing(_pipeline_files()), components)}
    assert chosen == EXPECTED


def test_select_files_for_vae_single_file_and_sharded_repos() -> None:
    vae_repo = [("config.json", 600), ("diffusion_pytorch_model.safetensors", 100), ("diffusion_pytorch_model.bin", 100),
                ("sdxl.vae.safetensors", 200), ("sdxl_vae.safetensors", 200), ("README.md", 10)]
    assert [p for p, _ in select_files("o/vae", vae_repo, None)] == ["config.json", "diffusion_pytorch_model.safetensors"]
    single = [("model.ckpt", 9), ("model.safetensors", 8), ("model.fp16.safetensors", 4), ("model.ema.safetensors", 8)]
    assert [p for p, _ in select_files("o/ckpt", single, None)] == ["model.fp16.safetensors"]
    sharded = [("unet/config.json", 1), ("unet/diffusion_pytorch_model.safetensors.index.json", 1),
               ("unet/diffusion_pytorch_model-00001-of-00002.safetensors", 5),
               ("unet/diffusion_pytorch_model-00002-of-00002.safetensors", 5),
               ("unet/diffusion_pytorch_model.safetensors.index.fp16.json", 1),
               ("unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", 3),
               ("unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors", 3), ("model_index.json", 1)]
    assert {p for p, _ in select_files("o/x", sharded, {"unet"})} == {
        "model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
        "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors"}


def test_select_files_refuses_pickle_only_repos() -> None:
    with pytest.raises(ModelError, match="only ships pickle weights.*safetensors version"):
        select_files("o/old", [("model.ckpt", 9), ("config.json", 1)], None)
    with pytest.raises(ModelError, match="The text_encoder part of o/mixed only ships pickle weights"):
        select_files("o/mixed", [("model_index.json", 1), ("unet/a.safetensors", 1), ("text_encoder/pytorch_model.bin", 1)],
                     {"unet", "text_encoder"})


@pytest.mark.parametrize("bad", ["sd-turbo", "a/b/c", "../x", "owner/..", "", "owner/name--x", "http://x/y"])
def test_plan_refuses_malformed_repo_ids(bad: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="owner/name form"):
        plan_download(bad, tmp_path, endpoint="http://127.0.0.1:9")


def test_plan_lists_the_files_sizes_and_target(hub: FakeHub, tmp_path: Path) -> None:
    plan = plan_download(REPO, tmp_path / "models", endpoint=hub.url)
    files = _pipeline_files()
    assert plan.repo_id == REPO and plan.revision == "1" * 40
    assert {path for path, _ in plan.files} == EXPECTED
    assert all(size == len(files[path]) for path, size in plan.files)
    assert plan.total_bytes == sum(len(files[path]) for path in EXPECTED)
    # Fetched out of the library's sight, then filed by kind, as an import is.
    assert plan.target == (tmp_path / "models" / ".downloads" / "tester--tiny-sd" / "tiny-sd").resolve()
    assert plan.file_into == plan.destination == (tmp_path / "models").resolve() and plan.already_bytes == 0
    assert [r.path for r in hub.file_gets()] == [f"/{REPO}/resolve/{'1' * 40}/model_index.json"]


def test_an_earlier_download_of_the_repo_is_completed_where_it_is_and_another_repos_folder_is_not_taken(
        hub: FakeHub, tmp_path: Path) -> None:
    models = tmp_path / "models"
    for place in (models / "tiny-sd", models / "checkpoints" / "tiny-sd"):  # where older Studios put it, its kind's
        place.mkdir(parents=True)
        (place / ".studio-source.json").write_text(json.dumps({"source": "hub", "repo_id": "other/tiny-sd"}))
        assert plan_download(REPO, models, endpoint=hub.url).file_into is not None
        (place / ".studio-source.json").write_text(json.dumps({"source": "hub", "repo_id": REPO}))
        plan = plan_download(REPO, models, endpoint=hub.url)
        assert plan.target == place.resolve() and plan.file_into is None
        (place / ".studio-source.json").unlink()


def test_download_writes_the_files_progress_and_source(tmp_path: Path) -> None:
    files = _pipeline_files()
    with FakeHub({REPO: FakeRepo(files, sha="1" * 40)}, cdn_host="localhost") as hub:
        plan = plan_download(REPO, tmp_path, endpoint=hub.url, token="hf_test")
        events: list[DownloadProgress] = []
        folder = download_model(plan, progress=events.append, endpoint=hub.url, token="hf_test")
        for path in EXPECTED:
            assert (folder / path).read_bytes() == files[path]
        assert not (folder / "safety_checker").exists() and not (folder / ".cache").exists()
        done = [e.done_bytes for e in events]
        assert done == sorted(done) and done[-1] == plan.total_bytes == events[-1].total_bytes
        assert events[-1].files_done == events[-1].files_total == len(EXPECTED)
        assert any(0 < e.file_done < e.file_total for e in events if e.file == BIG)  # per chunk, not per file
        source = read_source(folder)
        assert source is not None and source["source"] == "hub" and source["repo_id"] == REPO
        assert source["revision"] == "1" * 40 and set(source["files"]) == EXPECTED and source["variant"] == "fp16"
        assert source["downloaded_at"].startswith("20")
        # LFS files come from the "CDN" (another origin): the token stays on the hub.
        assert all(not r.authorized for r in hub.file_gets() if r.path.startswith("/cdn/"))
        assert any(r.authorized for r in hub.requests if r.method == "HEAD")
        hub.requests.clear()
        again = plan_download(REPO, tmp_path, endpoint=hub.url)
        assert again.already_bytes == again.total_bytes
        download_model(again, endpoint=hub.url)  # everything is there: nothing is fetched again
        assert [r.path for r in hub.file_gets()] == [f"/{REPO}/resolve/{'1' * 40}/model_index.json"]


def test_a_cut_download_fails_clearly_and_the_next_call_resumes(hub: FakeHub, tmp_path: Path) -> None:
    hub.cut_after[BIG] = 100_000
    plan = plan_download(REPO, tmp_path, endpoint=hub.url)
    with pytest.raises(ModelError, match=f"broke while fetching {REPO}/{BIG}.*run the download again to resume"):
        download_model(plan, endpoint=hub.url)
    partials = list((plan.target / ".cache" / "studio-download").glob("*.incomplete"))
    assert len(partials) == 1 and 0 < (kept := partials[0].stat().st_size) <= 100_000
    resumed = plan_download(REPO, tmp_path, endpoint=hub.url)
    assert resumed.already_bytes > kept  # the small files before it are finished too
    folder = download_model(resumed, endpoint=hub.url)
    assert hub.file_gets(BIG)[-1].range == f"bytes={kept}-"
    assert (folder / BIG).read_bytes() == _pipeline_files()[BIG]



def test_a_hub_that_goes_away_mid_download_is_said_as_a_stop_to_resume_and_its_log_lines_stay_off_the_terminal(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """huggingface_hub's "Trying to resume download..." reached the terminal five times, then "Could not reach the
    model hub ...; Studio may be offline", though the partial file was kept and the next call resumed it."""
    hub = FakeHub({REPO: FakeRepo(_pipeline_files(), sha="1" * 40)}, chunk=4096, delay=0.002,
                  cut_after={BIG: 100_000}, cut_with_reset=False)
    with hub:
        plan = plan_download(REPO, tmp_path, endpoint=hub.url)
        url = hub.url

        def hub_dies(event: DownloadProgress) -> None:  # its listening socket closes, then the transfer
            if event.file == BIG and event.file_done and hub._server is not None:
                hub.__exit__()
                hub._server = None

        with pytest.raises(ModelError) as err:
            download_model(plan, progress=hub_dies, endpoint=url)
    assert str(err.value) == (f"The connection to the model hub broke while fetching {REPO}/{BIG} (Connection "
                              "refused), so the download stopped; run the download again to resume where it stopped.")
    assert 0 < next((plan.target / ".cache" / "studio-download").glob("*.incomplete")).stat().st_size < 300_000
    assert "Trying to resume download" in caplog.text  # to Studio's log, and not to the terminal:
    assert not [h for h in logging.getLogger("huggingface_hub").handlers if type(h) is logging.StreamHandler]

def test_a_disk_that_fills_up_mid_download_is_a_sentence_and_the_next_call_resumes(
        hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_download(REPO, tmp_path, endpoint=hub.url)
    real_write, writes = model_downloads.write_json, []

    def full_after_one_file(path: Path, data: dict) -> None:
        writes.append(path)
        if len(writes) == 2:  # the state after the first finished file
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(model_downloads, "write_json", full_after_one_file)
    with pytest.raises(ModelError) as err:
        download_model(plan, endpoint=hub.url)
    assert str(err.value) == (f"The download of {REPO} into {plan.target} stopped: No space left on device. Fix "
                              "that and run it again to resume.")
    monkeypatch.setattr(model_downloads, "write_json", real_write)
    folder = download_model(plan_download(REPO, tmp_path, endpoint=hub.url), endpoint=hub.url)
    assert (folder / BIG).read_bytes() == _pipeline_files()[BIG]


def test_cancel_mid_file_keeps_the_partial_and_resume_completes(hub: FakeHub, tmp_path: Path) -> None:
    hub.chunk, hub.delay = 4096, 0.002
    plan = plan_download(REPO, tmp_path, endpoint=hub.url)
    events: list[DownloadProgress] = []
    with pytest.raises(JobCancelledError):
        download_model(plan, progress=events.append, endpoint=hub.url,
                       cancelled=lambda: bool(events) and events[-1].file == BIG and events[-1].file_done >= 40_000)
    partial = next((plan.target / ".cache" / "studio-download").glob("*.incomplete"))
    kept = partial.stat().st_size
    assert 40_000 <= kept < 300_000 and not (plan.target / BIG).exists()
    hub.delay = 0.0
    folder = download_model(plan, endpoint=hub.url)
    assert hub.file_gets(BIG)[-1].range == f"bytes={kept}-"
    assert (folder / BIG).read_bytes() == _pipeline_files()[BIG]


def test_progress_and_cancel_come_at_least_every_megabyte(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 10 * 1024**2)  # huggingface_hub's own
    files = {**_pipeline_files(), BIG: _bytes(7, 3 * 1024**2 + 5)}
    with FakeHub({REPO: FakeRepo(files, sha="1" * 40)}) as hub:
        plan = plan_download(REPO, tmp_path, endpoint=hub.url)
        events: list[DownloadProgress] = []
        download_model(plan, progress=events.append, endpoint=hub.url)
    steps = [e.file_done for e in events if e.file == BIG]
    assert max(b - a for a, b in zip(steps, steps[1:], strict=False)) <= 1024**2 and steps[-1] == len(files[BIG])


def test_a_file_that_does_not_match_the_hub_checksum_is_deleted(hub: FakeHub, tmp_path: Path) -> None:
    hub.cut_after[BIG] = 100_000
    plan = plan_download(REPO, tmp_path, endpoint=hub.url)
    with pytest.raises(ModelError):
        download_model(plan, endpoint=hub.url)
    hub.repos[REPO].files[BIG] = b"z" * 300_000  # the kept bytes no longer belong to what the hub serves
    with pytest.raises(ModelError, match="did not match the hub's checksum, so Studio deleted it"):
        download_model(plan, endpoint=hub.url)
    assert not list((plan.target / ".cache" / "studio-download").glob("*.incomplete"))
    assert not (plan.target / BIG).exists()


def test_a_second_download_into_the_same_folder_is_refused(hub: FakeHub, tmp_path: Path) -> None:
    plan = plan_download(REPO, tmp_path, endpoint=hub.url)
    work = plan.target / ".cache" / "studio-download"
    work.mkdir(parents=True)
    with FileLock(str(work / "lock")), pytest.raises(InvalidRequest, match="already running"):
        download_model(plan, endpoint=hub.url)


def test_disk_space_is_checked_before_any_request(hub: FakeHub, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_download(REPO, tmp_path, endpoint=hub.url)
    hub.requests.clear()
    monkeypatch.setattr(model_downloads.shutil, "disk_usage", lambda _path: SimpleNamespace(free=400 * 2**20))
    with pytest.raises(InvalidRequest) as refused:
        download_model(plan, endpoint=hub.url)
    # It said "needs about 0.0 GB more ..., but only 0.4 GB is free", neither the size nor the 512 MB reserve.
    assert str(refused.value) == (f"{REPO} needs {plan.total_bytes / 1024:.1f} KB more in {plan.target}, and Studio "
                                  "keeps 512.0 MB free for itself and the system; only 400.0 MB is free there. Make "
                                  "room or choose another models folder.")
    assert hub.requests == [] and not plan.target.exists()


def test_path_escapes_are_refused_and_nothing_lands_outside(hub: FakeHub, tmp_path: Path) -> None:
    hub.repos["tester/evil"] = FakeRepo({"../evil.safetensors": b"x" * 10, "model.safetensors": b"y" * 10})
    models = tmp_path / "models"
    with pytest.raises(ModelError, match=r"unsafe file path '\.\./evil\.safetensors'"):
        plan_download("tester/evil", models, endpoint=hub.url)
    # A symlinked sub-folder pointing out of the target is refused too, before any request.
    outside = tmp_path / "outside"
    outside.mkdir()
    target = models / "linked"
    target.mkdir(parents=True)
    (target / "unet").symlink_to(outside)
    plan = DownloadPlan(REPO, "1" * 40, ((BIG, 300_000),), 300_000, target, 0)
    hub.requests.clear()
    with pytest.raises(ModelError, match="would land outside"):
        download_model(plan, endpoint=hub.url)
    assert hub.requests == [] and list(outside.iterdir()) == [] and not (tmp_path / "evil.safetensors").exists()


def test_read_source_is_none_without_a_download(tmp_path: Path) -> None:
    assert read_source(tmp_path) is None


def test_starter_models_are_well_formed() -> None:
    assert 5 <= len(STARTER_MODELS) <= 7
    assert len({m.repo_id for m in STARTER_MODELS}) == len(STARTER_MODELS)
    for model in STARTER_MODELS:
        assert model.repo_id.count("/") == 1 and model.title and model.kind and model.why
        assert 1_000_000 < model.approx_bytes < 20_000_000_000


def test_a_download_is_filed_by_kind_as_an_import_is_and_the_same_model_is_not_kept_twice(
        hub: FakeHub, tmp_path: Path) -> None:
    # It went to models/<repo name>/ whatever it was: a pipeline beside checkpoints/, a LoRA in models/lora/ beside
    # the same LoRA in loras/, and a name two models had (`--model tiny-sd`: "2 models are named 'tiny-sd'").
    from model_files import lora

    from studio.core.model_library import scan_library

    models = tmp_path / "models"
    ink = lora(tmp_path / "ink.safetensors").read_bytes()
    hub.repos["tester/ink-lora"] = FakeRepo({"ink.safetensors": ink, "README.md": b"# ink"})
    hub.repos["someone/ink-copy"] = FakeRepo({"ink.safetensors": ink})
    folder = download_model(plan_download(REPO, models, endpoint=hub.url), endpoint=hub.url)
    assert folder == (models / "checkpoints" / "tiny-sd").resolve() and (folder / BIG).is_file()
    notes: list[str] = []
    file = download_model(plan_download("tester/ink-lora", models, endpoint=hub.url), endpoint=hub.url, notes=notes)
    assert file == (models / "loras" / "ink.safetensors").resolve() and file.read_bytes() == ink and notes == []
    again = download_model(plan_download("someone/ink-copy", models, endpoint=hub.url), endpoint=hub.url,
                           notes=notes)
    assert again == file and notes == [f"someone/ink-copy is the same model as {file}, which is in the library "
                                       "already; the download was not kept twice."]
    items = {item.name: item for item in scan_library(models)}
    assert sorted(items) == ["ink", "tiny-sd"] and not (models / ".downloads").exists()
    assert items["ink"].source == "Hugging Face: tester/ink-lora" and items["ink"].kind == "lora"
    assert items["tiny-sd"].source == f"Hugging Face: {REPO}"
    # Another model of the name: told apart by the repo's owner, so a name picks one.
    hub.repos["other/tiny-sd"] = FakeRepo({**_pipeline_files(), BIG: _bytes(99, 300_000)})
    notes.clear()
    other = download_model(plan_download("other/tiny-sd", models, endpoint=hub.url), endpoint=hub.url, notes=notes)
    assert other == (models / "checkpoints" / "other--tiny-sd").resolve()
    assert notes == ["The library has another model named tiny-sd, so other/tiny-sd is listed as other--tiny-sd."]
    assert sorted(item.name for item in scan_library(models)) == ["ink", "other--tiny-sd", "tiny-sd"]


def test_a_download_that_fails_before_a_byte_came_leaves_nothing_behind(hub: FakeHub, tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "loras").mkdir(parents=True)
    hub.repos["tester/gated"] = FakeRepo({"model.safetensors": b"x" * 10}, gated=True)
    with pytest.raises(ModelError, match="is gated on the hub"):
        download_model(plan_download("tester/gated", models, endpoint=hub.url), endpoint=hub.url)
    assert [p.name for p in models.iterdir()] == ["loras"]  # not an empty models/gated/.cache/
