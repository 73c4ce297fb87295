"""Run again and Load parameters name each LoRA, VAE and ControlNet that is missing or another file now, by the
hashes the entry's picture (or its guides' records) kept; the checkpoint's own warning stays as it was."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import Image
from recorded_files import CONTROLNET_BYTES, made_with_files, weights_file

import studio.core.hashing
from studio.core.hashing import controlnet_hash, lora_hash, model_hash
from studio.core.images import read_recipe, save_image
from studio.core.metadata import Recipe
from studio.core.weight_files import check_weights_file
from studio.services.changed_files import changed_file_warnings, picture_file_warnings
from studio.services.history_store import HistoryEntry


@pytest.fixture
def models(tmp_path):
    return tmp_path / "models"


def test_the_same_files_say_nothing(models, tmp_path):
    entry = made_with_files(models, tmp_path / "out")
    assert changed_file_warnings(entry, models, tmp_path / "hashes.json") == []


def test_a_lora_with_other_content_under_its_name_is_named_with_both_hashes(models, tmp_path):
    entry = made_with_files(models, tmp_path / "out")
    then = lora_hash(models / "loras" / "ink.safetensors")
    now = lora_hash(weights_file(models / "loras" / "ink.safetensors", 9))
    assert changed_file_warnings(entry, models, tmp_path / "hashes.json") == [
        f"The LoRA 'ink' is not the file this picture was made with (hash {then}, now {now}): the result will differ."]


def test_a_vae_with_other_content_under_its_name_is_named(models, tmp_path):
    entry = made_with_files(models, tmp_path / "out")
    then = model_hash(models / "vae" / "soft.safetensors")
    now = model_hash(weights_file(models / "vae" / "soft.safetensors", 9))
    assert changed_file_warnings(entry, models, tmp_path / "hashes.json") == [
        f"The VAE 'soft' is not the file this picture was made with (hash {then}, now {now}): the result will differ."]


def test_a_controlnet_with_other_content_under_its_name_is_named(models, tmp_path):
    entry = made_with_files(models, tmp_path / "out")
    then = controlnet_hash(models / "controlnet" / "canny.safetensors")
    now = controlnet_hash(weights_file(models / "controlnet" / "canny.safetensors", 9, CONTROLNET_BYTES))
    assert changed_file_warnings(entry, models, tmp_path / "hashes.json") == [(
        f"The ControlNet 'canny' is not the file this picture was made with (hash {then}, now {now}): the result "
        "will differ.")]


def test_each_missing_file_is_named_in_a_sentence_of_its_own(models, tmp_path):
    entry = made_with_files(models, tmp_path / "out")
    digests = {"LoRA": lora_hash(models / "loras" / "ink.safetensors"),
               "VAE": model_hash(models / "vae" / "soft.safetensors"),
               "ControlNet": controlnet_hash(models / "controlnet" / "canny.safetensors")}
    for path in models.rglob("*.safetensors"):
        path.unlink()
    assert changed_file_warnings(entry, models) == [
        f"The {kind} {name!r} this picture was made with (hash {digests[kind]}) is missing, so it cannot be made the "
        "same way again." for kind, name in (("LoRA", "ink"), ("VAE", "soft"), ("ControlNet", "canny"))]


def test_the_checkpoint_warning_comes_first_and_is_as_before(models, tmp_path, tiny_model_dir):
    entry = replace(made_with_files(models, tmp_path / "out", vae=False, controlnet=False),
                    id=4, model_path=str(tiny_model_dir), model_hash="0000000000")
    weights_file(models / "loras" / "ink.safetensors", 9)
    first, lora = changed_file_warnings(entry, models)
    assert first.startswith("The model file changed since history entry 4 was made (hash 0000000000 then, ")
    assert lora.startswith("The LoRA 'ink' is not the file")


def test_entries_recorded_without_hashes_say_nothing(models, tmp_path):
    bare = HistoryEntry(prompt="a fox", params={"loras": [{"name": "ink", "weight": 1.0}], "vae": "soft",
                                                "controls": [{"model": "canny", "hash": ""}]})
    assert changed_file_warnings(bare, models) == []  # no picture, so no recipe: nothing to compare, even missing
    entry = made_with_files(models, tmp_path / "out", controlnet=False)
    weights_file(models / "loras" / "ink.safetensors", 9)
    gone = replace(entry, image_path=str(tmp_path / "deleted.png"))  # its picture (with the hashes) deleted
    assert changed_file_warnings(gone, models) == []


def test_a_lora_chosen_by_its_path_is_looked_up_there(models, tmp_path):
    entry = made_with_files(models, tmp_path / "out", vae=False, controlnet=False)
    mine = (models / "loras" / "ink.safetensors").rename(tmp_path / "ink.safetensors")
    entry = replace(entry, params={"loras": [{"name": str(mine), "weight": 0.7}]})
    assert changed_file_warnings(entry, models) == []
    weights_file(mine, 9)
    assert changed_file_warnings(entry, models)[0].startswith("The LoRA 'ink' is not the file")


def test_an_old_ten_digit_lora_hash_is_compared_as_the_whole_file_s(models, tmp_path):
    # Studio first recorded a LoRA's AutoV2 hash (of the whole file), as it does a checkpoint's.
    entry = made_with_files(models, tmp_path / "out", vae=False, controlnet=False)
    picture = tmp_path / "out" / "fox.png"
    recipe = read_recipe(picture)
    old = (replace(recipe.loras[0], hash=model_hash(models / "loras" / "ink.safetensors")),)
    save_image(Image.new("RGB", (8, 8)), picture, replace(recipe, loras=old))
    assert changed_file_warnings(entry, models) == []
    weights_file(models / "loras" / "ink.safetensors", 9)
    assert "is not the file this picture was made with" in changed_file_warnings(entry, models)[0]


def test_hashes_come_from_the_shared_cache_once_a_file_was_hashed(models, tmp_path, monkeypatch):
    # A big LoRA or VAE is hashed once (by the library, the engine or a first rerun), not on every rerun.
    entry = made_with_files(models, tmp_path / "out", controlnet=False)
    cache = tmp_path / "hashes.json"
    assert changed_file_warnings(entry, models, cache) == []
    hashed: list = []
    for name in ("file_sha256", "tensor_sha256"):
        monkeypatch.setattr(studio.core.hashing, name, lambda path, *a, name=name: hashed.append(path) or "x" * 64)
    assert changed_file_warnings(entry, models, cache) == []
    assert hashed == []


def test_a_lora_that_cannot_be_read_now_is_said_so(models, tmp_path):
    entry = made_with_files(models, tmp_path / "out", vae=False, controlnet=False)
    (models / "loras" / "ink.safetensors").write_bytes(b"not weights any more")
    [warning] = changed_file_warnings(entry, models)
    assert warning.startswith("The LoRA 'ink' this picture was made with cannot be read now (")
    assert warning.endswith("): the result will differ.")


# -- a picture dropped on the prompt box: its recipe's hashes, and the model its parameters chose by name ---------

def test_a_dropped_picture_names_its_lora_and_vae_that_are_other_files_now(models, tmp_path):
    picture = made_with_files(models, tmp_path / "out", controlnet=False).image_path
    assert picture_file_warnings(picture, None, models, tmp_path / "hashes.json") == []
    lora_then = lora_hash(models / "loras" / "ink.safetensors")
    vae_then = model_hash(models / "vae" / "soft.safetensors")
    lora_now = lora_hash(weights_file(models / "loras" / "ink.safetensors", 9))
    vae_now = model_hash(weights_file(models / "vae" / "soft.safetensors", 9))
    assert picture_file_warnings(picture, None, models, tmp_path / "hashes.json") == [
        f"The LoRA 'ink' is not the file this picture was made with (hash {lora_then}, now {lora_now}): the result "
        "will differ.",
        f"The VAE 'soft' is not the file this picture was made with (hash {vae_then}, now {vae_now}): the result "
        "will differ."]


@pytest.mark.parametrize("digits", [10, 8], ids=["whole-file hash", "A1111's old hash"])
def test_a_dropped_picture_names_the_model_chosen_by_its_name_when_it_is_another_file(models, tmp_path, digits):
    checkpoint = weights_file(models / "checkpoints" / "dream.safetensors", 1, CONTROLNET_BYTES)
    digest = model_hash(checkpoint) if digits == 10 else controlnet_hash(checkpoint)
    recipe = Recipe("a fox", "", 2, "Euler", 5, 7, 8, 8, "dream", model_hash=digest)
    picture = save_image(Image.new("RGB", (8, 8)), tmp_path / "fox.png", recipe)
    assert picture_file_warnings(picture, checkpoint, models, tmp_path / "hashes.json") == []
    weights_file(checkpoint, 2, CONTROLNET_BYTES)
    now = model_hash(checkpoint) if digits == 10 else controlnet_hash(checkpoint)
    assert len(now) == digits
    assert picture_file_warnings(picture, checkpoint, models, tmp_path / "hashes.json") == [
        f"The model 'dream' in the list is not the file this picture was made with (hash {digest} then, {now} now): "
        "the picture may come out different."]


def test_a_dropped_picture_without_a_recipe_says_nothing(models, tmp_path):
    picture = save_image(Image.new("RGB", (8, 8)), tmp_path / "plain.png")
    assert picture_file_warnings(picture, None, models) == []
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    assert picture_file_warnings(tmp_path / "broken.png", None, models) == []


# -- files in a linked folder (an AUTOMATIC1111 install): looked for where the library looks --------------------

def _a1111_files(webui):  # noqa: ANN001, ANN202 - an AUTOMATIC1111 install's LoRA, VAE and ControlNet, as the library sees them
    from model_files import controlnet, lora, write

    for folder in ("Stable-diffusion", "Lora", "VAE", "ControlNet"):
        (webui / "models" / folder).mkdir(parents=True, exist_ok=True)
    vae = write(webui / "models" / "VAE" / "soft.safetensors",
                {"encoder.conv_in.weight": (8, 3, 3, 3), "decoder.conv_in.weight": (8, 4, 3, 3)})
    return (lora(webui / "models" / "Lora" / "detail" / "add_detail.safetensors"), vae,
            controlnet(webui / "models" / "ControlNet" / "canny.safetensors"))


def test_a_dropped_picture_s_files_in_a_linked_folder_are_not_missing(models, tmp_path):
    # They were said to be missing: only the models folder's loras/, vae/ and controlnet/ were looked in.
    from studio.core.metadata import LoraRecord

    webui = tmp_path / "sd-webui"
    lora, vae, canny = _a1111_files(webui)
    models.mkdir()
    recipe = Recipe("a fox", "", 2, "Euler", 5, 7, 8, 8, "dream", loras=(LoraRecord("add_detail", lora_hash(lora), 1),),
                    vae_name="soft.safetensors", vae_hash=model_hash(vae),
                    controls=({"model": "canny", "hash": controlnet_hash(canny)},))
    picture = save_image(Image.new("RGB", (8, 8)), tmp_path / "fox.png", recipe)
    assert picture_file_warnings(picture, None, models, tmp_path / "hashes.json", linked=[webui]) == []
    [lora_missing, vae_missing, canny_missing] = picture_file_warnings(picture, None, models, tmp_path / "h.json")
    assert lora_missing.startswith("The LoRA 'add_detail' this picture was made with (hash ")  # not linked: missing
    from model_files import write

    write(lora, {key: (4, 8) if "down" in key else (8, 4) for key in check_weights_file(lora).tensors}, 9)  # another
    # LoRA under its name in the linked folder: that is said, not "missing"
    [changed] = picture_file_warnings(picture, None, models, tmp_path / "hashes.json", linked=[webui])
    assert changed.startswith("The LoRA 'add_detail' is not the file this picture was made with")


def test_an_entry_s_files_in_a_linked_folder_are_not_missing(models, tmp_path):
    webui = tmp_path / "sd-webui"
    lora, vae, _ = _a1111_files(webui)
    models.mkdir()
    params = {"loras": [{"name": "add_detail", "weight": 0.7, "hash": lora_hash(lora)}], "vae": "soft",
              "vae_hash": model_hash(vae)}  # the picture is gone: the hashes the history recorded
    entry = HistoryEntry(prompt="a fox", seed=7, steps=2, params=params)
    assert changed_file_warnings(entry, models, linked=[webui]) == []
    assert len(changed_file_warnings(entry, models)) == 2


def test_a_picture_s_lora_recorded_by_its_alias_or_renamed_since_is_found_by_alias_then_by_hash(models, tmp_path):
    # A1111 with "use alias" records "Lora hashes: zelda_v2: …" for princess_zelda.safetensors (ss_output_name
    # zelda_v2): it was said to be missing, as was a LoRA renamed since the picture was made.
    from model_files import aliased_lora

    from studio.core.metadata import LoraRecord

    webui = tmp_path / "sd-webui"
    zelda = aliased_lora(webui / "models" / "Lora" / "princess_zelda.safetensors", "zelda_v2")
    renamed = aliased_lora(models / "loras" / "ink_final.safetensors", "", fill=5)
    records = (LoraRecord("zelda_v2", lora_hash(zelda), 0.8), LoraRecord("ink", lora_hash(renamed), 0.5),
               LoraRecord("gone", "0123456789ab", 1))
    recipe = Recipe("a fox", "", 2, "Euler", 5, 7, 8, 8, "dream", loras=records)
    picture = save_image(Image.new("RGB", (8, 8)), tmp_path / "fox.png", recipe)
    assert picture_file_warnings(picture, None, models, tmp_path / "hashes.json", linked=[webui]) == [
        "The LoRA 'gone' this picture was made with (hash 0123456789ab) is missing, so it cannot be made the same way "
        "again."]
