"""The depth model's download: huggingface_hub's resumable transfer into the folder the Depth preprocessor reads
(the models folder's annotators/), against a fake hub on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_server import FakeHub, FakeRepo, isolated_hub_client

from studio.core.annotators import DEPTH_FOLDER, DEPTH_REPO, find_depth_model
from studio.core.errors import InvalidRequest
from studio.core.starter_models import STARTER_MODELS
from studio.services.model_downloads import download_model, plan_download

FILES = {"config.json": json.dumps({"model_type": "depth_anything"}).encode(), "README.md": b"# Depth",
         "model.safetensors": b"\x08\0\0\0\0\0\0\0{}      " + bytes(9000), "preprocessor_config.json": b"{}",
         ".gitattributes": b"*.safetensors filter=lfs", "pytorch_model.bin": b"never"}


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with isolated_hub_client(tmp_path / "hf-home", monkeypatch):
        yield


@pytest.fixture
def hub():
    with FakeHub({DEPTH_REPO: FakeRepo(FILES)}) as server:
        yield server


def test_the_depth_model_lands_where_the_depth_preprocessor_finds_it(hub, tmp_path):
    models = tmp_path / "models"
    plan = plan_download(DEPTH_REPO, models, endpoint=hub.url)
    assert plan.target == (models / DEPTH_FOLDER).resolve()
    assert {path for path, _ in plan.files} == {"config.json", "model.safetensors", "preprocessor_config.json"}
    assert find_depth_model(models) is None
    download_model(plan, endpoint=hub.url)
    assert find_depth_model(models) == models / DEPTH_FOLDER
    depth = next(m for m in STARTER_MODELS if m.repo_id == DEPTH_REPO)  # in `studio models recommended` too
    assert depth.size_label == "about 99 MB"


def test_files_put_there_by_hand_are_completed_and_another_download_s_folder_is_not_taken(hub, tmp_path):
    models = tmp_path / "models"
    (models / DEPTH_FOLDER).mkdir(parents=True)
    (models / DEPTH_FOLDER / "config.json").write_bytes(FILES["config.json"])  # a copy that stopped half-way
    download_model(plan_download(DEPTH_REPO, models, endpoint=hub.url), endpoint=hub.url)
    assert find_depth_model(models) == models / DEPTH_FOLDER
    (models / DEPTH_FOLDER / ".studio-source.json").write_text(json.dumps({"repo_id": "someone/else"}))
    with pytest.raises(InvalidRequest, match="holds another download; move it away"):
        plan_download(DEPTH_REPO, models, endpoint=hub.url)
