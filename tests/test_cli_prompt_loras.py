"""``studio generate --prompt "<lora:ink:0.8> …"``: A1111's LoRA tags, applied as ``--lora`` applies a LoRA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_testing import requests_run, run_studio, studio_here
from test_cli import assert_refused_without_torch, parameters_of

from studio.core.hashing import lora_hash
from studio.core.images import read_recipe


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "studio-home"


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.int16)


def test_a_prompt_s_lora_tag_makes_the_picture_the_lora_option_makes(tiny_model_dir, home, tmp_path):
    """The tag's LoRA is found by name as --lora's is (here in a linked A1111 folder), applied at the tag's weight,
    and the tag is not encoded as words; the picture records the prompt as encoded, so a rerun makes it again."""
    from tiny_loras import lora_state, save_lora, tiny_unet

    a1111 = tmp_path / "stable-diffusion-webui"
    lora = save_lora(lora_state(tiny_unet(tiny_model_dir)), a1111 / "models" / "Lora" / "ink.safetensors")
    (a1111 / "models" / "Stable-diffusion").mkdir()
    assert run_studio(home, "models", "link", str(a1111)).returncode == 0
    base = ["generate", "--model", str(tiny_model_dir), "--seed", "3", "--steps", "2", "--size", "64x64"]
    out = {name: tmp_path / f"{name}.png" for name in ("tagged", "chosen", "plain", "again")}

    tagged = run_studio(home, *base, "--prompt", "<lora:ink:0.8> a fox", "-o", str(out["tagged"]))
    assert tagged.returncode == 0, tagged.stderr
    assert "note: LoRAs from the prompt: ink (0.8).\n" in tagged.stderr
    for args, name in ((["--lora", "ink:0.8"], "chosen"), ([], "plain")):
        done = run_studio(home, *base, "--prompt", "a fox", *args, "-o", str(out[name]))
        assert done.returncode == 0, done.stderr
    assert np.array_equal(pixels(out["tagged"]), pixels(out["chosen"]))
    assert np.abs(pixels(out["tagged"]) - pixels(out["plain"])).max() > 8  # the LoRA changed the picture

    recipe = read_recipe(out["tagged"])
    assert recipe.prompt == "a fox"  # as encoded; the tag is the recipe's LoRA
    assert [(r.name, r.hash, r.weight) for r in recipe.loras] == [("ink", lora_hash(lora), 0.8)]
    text = parameters_of(out["tagged"])  # the A1111 text says the same, and gives the LoRA back once
    assert (text.prompt, text.loras) == (recipe.prompt, recipe.loras)

    again = run_studio(home, "history", "rerun", "1", "-o", str(out["again"]))
    assert again.returncode == 0, again.stderr
    assert np.array_equal(pixels(out["again"]), pixels(out["tagged"]))


def test_a_tag_and_the_same_lora_option_make_one_lora_at_the_option_s_weight(tiny_model_dir, home, tmp_path):
    from tiny_loras import lora_state, save_lora, tiny_unet

    lora = save_lora(lora_state(tiny_unet(tiny_model_dir)), home / "data" / "models" / "loras" / "ink.safetensors")
    done = run_studio(home, "generate", "--model", str(tiny_model_dir), "--seed", "3", "--steps", "1", "--size",
                      "64x64", "--prompt", "a fox, <lora:ink:0.8>", "--lora", "ink:0.5", "-o", str(tmp_path / "f.png"))
    assert done.returncode == 0, done.stderr
    assert ("note: The LoRA ink is chosen at 0.5 and tagged in the prompt as <lora:ink:0.8>; it is applied once, at "
            "the chosen 0.5.") in done.stderr
    recipe = read_recipe(tmp_path / "f.png")
    assert recipe.prompt == "a fox"
    assert [(r.name, r.hash, r.weight) for r in recipe.loras] == [("ink", lora_hash(lora), 0.5)]


def test_a_bad_tag_exits_2_with_one_sentence_before_loading_torch(tiny_model_dir, home, tmp_path):
    models = (home / "data" / "models").resolve()
    (models / "loras").mkdir(parents=True)
    (models / "loras" / "detail.safetensors").write_bytes(b"never read: the request is refused first")
    base = ["generate", "--model", str(tiny_model_dir), "-o", str(tmp_path / "never.png")]
    cases = {
        "unknown name": (["--prompt", "a fox <lora:nowhere:0.5>"],
                         "No LoRA named 'nowhere' (the prompt's <lora:nowhere:0.5>) was found: Studio looked for "
                         f"{models / 'loras' / 'nowhere.safetensors'} and for a file at nowhere."),
        "weight not a number": (["--prompt", "<lora:detail:heavy> a fox"],
                                "The tag <lora:detail:heavy> in the prompt has the weight 'heavy', which is not a "
                                "number; write <lora:NAME:WEIGHT>, e.g. <lora:detail:0.8>."),
        "tagged twice": (["--prompt", " ".join(f"<lora:detail:{i / 10}>" for i in range(2)) + " fox"],
                     "The prompt tags the LoRA detail twice, as <lora:detail:0.0> and <lora:detail:0.1>; keep one "
                     "tag, with one weight."),
    }
    assert_refused_without_torch(home, base, cases)


def test_a_prompt_s_hypernet_tag_is_left_out_with_a_note(tiny_model_dir, studio_home, tmp_path, monkeypatch, capsys):
    # <hypernet:anime:0.6> stayed in the prompt the model encoded, as words, without a word said.
    ran = requests_run(monkeypatch)
    done = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "<hypernet:anime:0.6> a fox",
                       "--size", "64x64", "-o", str(tmp_path / "fox.png"))
    assert done.returncode == 0, done.stderr
    assert "note: Hypernetworks are not supported; <hypernet:anime:0.6> left out." in done.stderr.splitlines()
    assert [request.prompt for request in ran] == ["a fox"]


def _fox_with_ink_tags(tiny_model_dir, studio_home, tmp_path, capsys):  # noqa: ANN001, ANN202
    """`studio generate` with the LoRA ink tagged in the prompt (a LoRA) and in the negative prompt (words)."""
    from tiny_loras import lora_state, save_lora, tiny_unet

    save_lora(lora_state(tiny_unet(tiny_model_dir)), studio_home / "data" / "models" / "loras" / "ink.safetensors")
    return studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--seed", "3", "--steps", "1", "--size",
                       "64x64", "--prompt", "<lora:ink:0.8> a fox", "--negative", "<lora:ink:1> blur", "-o",
                       str(tmp_path / "f.png"))


def test_the_prompt_s_loras_are_said_once(tiny_model_dir, studio_home, tmp_path, capsys):
    # "LoRAs from the prompt: ink (0.8)." was said before the job and again after "Saved".
    done = _fox_with_ink_tags(tiny_model_dir, studio_home, tmp_path, capsys)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert notes == ["note: LoRAs from the prompt: ink (0.8).",
                     "note: The negative prompt's <lora:ink:1> is read as words, as A1111 reads them: LoRAs are taken "
                     "from the prompt only."]


def test_a_rerun_says_the_prompt_s_notes_once(tiny_model_dir, studio_home, tmp_path, capsys):
    # history rerun said the notes of its entry's prompts before the job, and the job said them again after "Saved".
    made = _fox_with_ink_tags(tiny_model_dir, studio_home, tmp_path, capsys)
    assert made.returncode == 0, made.stderr
    again = studio_here(capsys, "history", "rerun", "1", "-o", str(tmp_path / "again.png"))
    assert again.returncode == 0, again.stderr
    notes = [line for line in again.stderr.splitlines() if line.startswith("note: ")]
    assert notes == ["note: The negative prompt's <lora:ink:1> is read as words, as A1111 reads them: LoRAs are taken "
                     "from the prompt only."]


def test_a_lora_in_a_linked_folder_is_found_by_its_name_in_another_case(tiny_model_dir, home, tmp_path):
    """The command line finds ``--lora INK`` in a linked AUTOMATIC1111 folder as the window matches it."""
    from tiny_loras import lora_state, save_lora, tiny_unet

    from studio.cli_addon_files import find_files
    from studio.core.requests import LoraChoice
    from studio.core.settings import Settings

    a1111 = tmp_path / "stable-diffusion-webui"
    lora = save_lora(lora_state(tiny_unet(tiny_model_dir)), a1111 / "models" / "Lora" / "ink.safetensors")
    (a1111 / "models" / "Stable-diffusion").mkdir()
    settings = Settings(models_dir=home / "models", outputs_dir=home / "outputs", extra_model_paths=[a1111])
    (found,), _, _, _ = find_files((LoraChoice("INK", 0.8),), "", (), settings)
    assert found.name == str(lora)


def test_a_tag_naming_a_lora_s_alias_finds_it_and_a_missing_name_says_where_it_was_looked_for(home, tmp_path):
    # <lora:zelda_v2:0.8> (A1111's alias, the file's ss_output_name) was refused "No LoRA named 'zelda_v2' … Studio
    # looked for …/loras/zelda_v2.safetensors and for a file at zelda_v2.", leaving out the linked folder it searched.
    from model_files import aliased_lora

    from studio.cli_addon_files import find_files
    from studio.core.errors import ModelError
    from studio.core.requests import LoraChoice
    from studio.core.settings import Settings

    a1111 = tmp_path / "stable-diffusion-webui"
    zelda = aliased_lora(a1111 / "models" / "Lora" / "chars" / "princess_zelda.safetensors", "zelda_v2")
    (a1111 / "models" / "Stable-diffusion").mkdir()
    settings = Settings(models_dir=home / "models", outputs_dir=home / "outputs", extra_model_paths=[a1111])
    (found,), _, _, _ = find_files((LoraChoice("zelda_v2", 0.8, tag="<lora:zelda_v2:0.8>"),), "", (), settings)
    assert found.name == str(zelda)
    with pytest.raises(ModelError) as refused:
        find_files((LoraChoice("link", 0.8, tag="<lora:link:0.8>"),), "", (), settings)
    assert str(refused.value) == (
        f"No LoRA named 'link' (the prompt's <lora:link:0.8>) was found: Studio looked for "
        f"{home / 'models' / 'loras' / 'link.safetensors'} and for a file at link, and for a LoRA of that name or "
        f"alias in the linked folder {a1111}.")
