"""A picture's model is found in the model list by its exact name, else by its bare file name, else by its hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.hashing import controlnet_hash, model_hash
from studio.core.model_match import bare_model_name, listed_model_hash, matching_model

LISTED = [("dreamshaper_8", "a"), ("realisticVisionV51_v51VAE", "b"), ("sd15", "c"), ("SD15", "d")]


def no_hash(value: str, length: int) -> None:
    return None


@pytest.mark.parametrize(("name", "found"), [
    ("dreamshaper_8", "a"), ("dreamshaper_8.safetensors", "a"), ("DreamShaper_8.CKPT", "a"),
    ("SD15/realisticVisionV51_v51VAE.safetensors", "b"), ("SD15\\realisticVisionV51_v51VAE.safetensors", "b"),
    ("SD15", "d"),  # the exact name first
    ("sd15.safetensors", None),  # two listed models are named so but for case: neither is guessed
    ("dreamshaper_9", None), ("", None), ("dreamshaper_8.png", None),
])
def test_a_model_is_found_by_its_exact_or_its_bare_name(name, found):  # noqa: ANN001
    assert matching_model(name, "", LISTED, no_hash) == found


def test_older_a1111_s_folder_joined_name_finds_the_checkpoint_in_that_folder():
    """A1111 before 1.6 wrote ``Model: SD15_realisticVisionV51_v51VAE`` for
    models/Stable-diffusion/SD15/realisticVisionV51_v51VAE.safetensors (its model_name), and nothing was found."""
    a1111 = "/a1111/models/Stable-diffusion"
    listed = [("realisticVisionV51_v51VAE", f"{a1111}/SD15/realisticVisionV51_v51VAE.safetensors"),
              ("dreamshaper_8", f"{a1111}/SD 1.5/Dream, v8/dreamshaper_8.safetensors"),
              ("x", f"{a1111}/x.safetensors")]
    assert matching_model("SD15_realisticVisionV51_v51VAE", "", listed, no_hash) == listed[0][1]
    assert matching_model("SD 1.5_Dream v8_dreamshaper_8", "", listed, no_hash) == listed[1][1]  # "," left out
    assert matching_model("XL_realisticVisionV51_v51VAE", "", listed, no_hash) is None  # another folder
    twice = [*listed, ("realisticVisionV51_v51VAE", "/comfy/models/checkpoints/SD15/realisticVisionV51_v51VAE.ckpt")]
    assert matching_model("SD15_realisticVisionV51_v51VAE", "", twice, no_hash) is None  # which one: not guessed


def test_two_models_of_the_same_exact_name_are_told_apart_by_their_hash_alone():
    listed = [("ink", "/models/a/ink.safetensors"), ("ink", "/models/b/ink.safetensors"), ("other", "/o.ckpt")]
    assert matching_model("ink", "", listed, no_hash) is None  # which one: not guessed
    hashes = {listed[0][1]: "1111111111", listed[1][1]: "2222222222", listed[2][1]: "3333333333"}
    assert matching_model("ink", "2222222222", listed, lambda v, n: hashes[v]) == listed[1][1]


def test_bare_names_lose_folders_weights_extensions_and_case():
    assert bare_model_name("C:\\models\\SD15/Real.v5.safetensors") == "real.v5"
    assert bare_model_name("model.v1.5") == "model.v1.5"  # not a weights extension


def test_a_renamed_model_is_found_by_its_hash_when_only_one_listed_model_has_it():
    hashes = {"a": "0c89ecbe23", "b": "1111111111", "c": "0C89ECBE23"}
    listed = LISTED[:3]
    assert matching_model("DreamShaper_8_pruned", "0C89ECBE23", listed[:2], lambda v, n: hashes[v]) == "a"
    assert matching_model("DreamShaper_8_pruned", "0c89ecbe23", listed, lambda v, n: hashes[v]) is None  # two have it
    assert matching_model("DreamShaper_8_pruned", "2222222222", listed, lambda v, n: hashes[v]) is None
    assert matching_model("DreamShaper_8_pruned", "", listed, lambda v, n: "") is None
    invokeai = "sha256:0C89ECBE23" + "0" * 54  # InvokeAI's whole SHA-256 of the file
    assert matching_model("stable-diffusion-1.5", invokeai, listed[:2], lambda v, n: hashes[v]) == "a"


def test_listed_hashes_are_the_cache_s_autov2_or_the_old_8_digit_hash_never_a_fresh_full_read(tmp_path: Path):
    model = tmp_path / "dreamshaper_8.safetensors"
    model.write_bytes(bytes(range(256)) * 5000)
    cache = tmp_path / "model-hashes.json"
    hash_of = listed_model_hash(cache)
    assert hash_of(str(model), 10) is None  # not hashed yet: a drop does not read every model whole
    assert not cache.exists()
    digest = model_hash(model, cache)
    assert hash_of(str(model), 10) == digest
    assert hash_of(str(model), 8) == controlnet_hash(model)
    assert hash_of(str(tmp_path / "gone.safetensors"), 8) is None
    assert hash_of(str(tmp_path / "gone.safetensors"), 10) is None
    listed = [("renamed", str(model))]
    assert matching_model("DreamShaper_8_pruned", digest, listed, hash_of) == str(model)
