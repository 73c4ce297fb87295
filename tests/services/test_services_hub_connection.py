"""The hub's address and its failures, each one sentence: no web address, unreachable, offline mode, unknown or gated
repos, and mirrors that answer without the hub's error codes (against a fake hub on 127.0.0.1)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hub_server import FakeHub, FakeRepo, isolated_hub_client
from huggingface_hub import constants

from studio.core.errors import InvalidRequest, ModelError
from studio.services.hub_connection import HubUnavailable
from studio.services.model_downloads import download_model, plan_download

REPO = "tester/tiny"


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No real HF home, token or endpoint."""
    with isolated_hub_client(tmp_path / "hf-home", monkeypatch):
        yield


@pytest.fixture
def hub():
    with FakeHub({REPO: FakeRepo({"model.safetensors": b"w" * 64}, sha="1" * 40)}) as server:
        yield server


@pytest.mark.parametrize("bad", ["notaurl", "huggingface.co", "ftp://mirror.example", "http://", "http://[::1",
                                 "https://hub:port"])
def test_a_hub_address_that_is_no_web_address_is_said_before_anything_is_tried(bad: str, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # It was tried, and "notaurl" was "Could not reach the model hub at notaurl; Studio may be offline."
    with pytest.raises(InvalidRequest) as given:
        plan_download(REPO, tmp_path, endpoint=bad)
    assert str(given.value) == f"The hub address {bad!r} is not a web address: give one that starts with http:// or " \
                               "https:// and names a host, such as https://huggingface.co."
    monkeypatch.setenv("HF_ENDPOINT", bad)
    with pytest.raises(InvalidRequest, match=r"^The hub address .* \(from HF_ENDPOINT\) is not a web address"):
        plan_download(REPO, tmp_path)
    assert not any(tmp_path.iterdir())


def test_unreachable_hub_is_an_offline_sentence_that_names_no_command(tmp_path: Path) -> None:
    # It ended "Import a file you already have with `studio models import PATH`.", in the window too: each front end
    # adds its own way (HubUnavailable says it is this case).
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(HubUnavailable) as unreachable:
        plan_download(REPO, tmp_path, endpoint=f"http://127.0.0.1:{port}")
    assert str(unreachable.value) == f"Could not reach the model hub at http://127.0.0.1:{port}; Studio may be offline."


def test_offline_mode_is_its_own_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnavailable) as offline:
        plan_download(REPO, tmp_path, endpoint="http://127.0.0.1:9")
    assert str(offline.value) == ("Hub downloads are switched off (HF_HUB_OFFLINE is set), so Studio cannot fetch "
                                  f"{REPO}; unset it to download.")


def test_unknown_and_gated_repos(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match=r"^The hub has no model repository tester/xyz \(or it is private or gated"):
        plan_download("tester/xyz", tmp_path, endpoint=hub.url)
    with pytest.raises(ModelError, match="has no such revision"):
        plan_download(REPO, tmp_path, endpoint=hub.url, revision="v9")
    hub.repos["tester/gated"] = FakeRepo({"model.safetensors": b"x" * 10}, gated=True)
    plan = plan_download("tester/gated", tmp_path, endpoint=hub.url)
    with pytest.raises(ModelError, match="tester/gated is gated on the hub"):
        download_model(plan, endpoint=hub.url)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)  # the endpoint from the environment when none is given
    assert plan_download(REPO, tmp_path).revision == "1" * 40


def test_a_mirror_without_the_hubs_error_codes_gets_sentences_that_say_what_it_answered(
        hub: FakeHub, tmp_path: Path) -> None:
    hub.bare_errors = True
    with pytest.raises(ModelError, match=r"^The hub has no model repository tester/xyz \(or it is private"):
        plan_download("tester/xyz", tmp_path, endpoint=hub.url)
    # The repo is there, the revision is not: a bare 404 cannot tell which, and it said the repo was missing.
    with pytest.raises(ModelError) as unknown:
        plan_download(REPO, tmp_path, endpoint=hub.url, revision="dev")
    assert str(unknown.value) == (f"The hub has no model repository {REPO}, or no revision dev in it (or it is private "
                                  "or gated; log in with a token).")
    hub.repos["tester/gated"] = FakeRepo({"model.safetensors": b"x" * 10}, gated=True)
    plan = plan_download("tester/gated", tmp_path, endpoint=hub.url)
    with pytest.raises(ModelError, match=rf"^The model hub at {hub.url} refused access to "
                                         r"tester/gated/model\.safetensors \(HTTP 403\); it may be private or gated"):
        download_model(plan, endpoint=hub.url)
    hub.repos["tester/gone"] = FakeRepo({"model.safetensors": b"x" * 10})
    plan = plan_download("tester/gone", tmp_path, endpoint=hub.url)
    del hub.repos["tester/gone"].files["model.safetensors"]  # taken down between the plan and the download
    with pytest.raises(ModelError, match=rf"^The model hub at {hub.url} has no tester/gone/model\.safetensors "
                                         r"\(HTTP 404\); check the mirror"):
        download_model(plan, endpoint=hub.url)


@pytest.mark.parametrize("content_type, body", [
    ("text/html", b"<html>login portal</html>"),  # a captive portal, a mistyped mirror
    ("application/json", b'{"id": "x", "siblings": "nope"}'),
    ("application/json", b'{"id": "x", "sha": "1111", "siblings": [{"rfilename": 7}]}'),
    ("application/json", b'[1, 2]'),
])
def test_an_address_that_answers_with_no_hub_listing_is_one_sentence(content_type: str, body: bytes, hub: FakeHub,
                                                                      tmp_path: Path) -> None:
    # It was a JSONDecodeError's (HTML) or a TypeError's (JSON of another shape) traceback.
    hub.odd_listing = (content_type, body)
    with pytest.raises(ModelError) as given:
        plan_download(REPO, tmp_path, endpoint=hub.url)
    assert str(given.value) == (f"The address {hub.url} did not answer like a Hugging Face model hub when asked for "
                                f"{REPO} (a login page, or a mistyped mirror?); check the address, or sign in to the "
                                "network in a browser first.")
    assert not any(tmp_path.iterdir())
