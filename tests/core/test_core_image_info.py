"""Reading how an image was made: Studio's own files exactly, metadata text pulled out of the file with limits
(sizes, bombs, damage), and what the prompt panel can take from it. Other tools' files:
test_core_other_tools_metadata.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from metadata_images import (
    A1111_TEXT,
    RECIPE,
    a1111_user_comment,
    chunk,
    comfy_graph,
    comfy_png,
    exif_jpeg,
    fields_of,
    itext,
    pillow_png,
    png_file,
    text,
    ztext,
)
from PIL import Image
from sd_parsers import ParserManager
from sd_parsers.data import Generators

from studio.core.errors import ImageError
from studio.core.image_info import JSON_KEYS, ImageInfo, escape_text, recipe_fields, refused_values
from studio.core.image_inspection import inspect_image
from studio.core.image_text import MAX_TEXT_BYTES
from studio.core.images import save_image
from studio.core.requests import SCHEDULER_NAMES
from studio.core.sampler_names import studio_scheduler


# --- Studio's own images ------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
@pytest.mark.parametrize("recipe", [
    RECIPE,
    replace(RECIPE, negative_prompt="", model_hash="", sampler="Euler a", cfg_scale=7.0),
    replace(RECIPE, model_name='my "best", model: v2', prompt="  leading and trailing spaces  ", strength=0.4),
])
def test_studio_images_read_back_exactly(tmp_path, suffix, recipe):
    path = save_image(Image.new("RGB", (64, 40), (10, 20, 30)), tmp_path / f"out{suffix}", recipe)
    info = inspect_image(path)
    assert fields_of(info) == (
        "Studio", recipe.prompt, recipe.negative_prompt, recipe.seed, recipe.steps, recipe.cfg_scale,
        recipe.sampler, recipe.width, recipe.height, recipe.model_name, recipe.model_hash or None, recipe.sampler)
    assert info.notes == ()
    assert isinstance(info.seed, int) and isinstance(info.cfg_scale, float)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_sd_parsers_reads_studio_images_with_the_same_values(tmp_path, suffix):
    path = save_image(Image.new("RGB", (64, 40)), tmp_path / f"out{suffix}", RECIPE)
    ours = inspect_image(path)
    theirs = ParserManager().parse(path)
    assert theirs is not None and theirs.generator == Generators.AUTOMATIC1111
    (sampler,) = theirs.samplers
    assert theirs.full_prompt == ours.prompt
    assert theirs.full_negative_prompt == ours.negative_prompt
    assert int(sampler.parameters["seed"]) == ours.seed
    assert int(sampler.parameters["steps"]) == ours.steps
    assert float(sampler.parameters["cfg_scale"]) == ours.cfg_scale
    assert sampler.name == ours.sampler
    assert (sampler.model.name, sampler.model.hash) == (ours.model, ours.model_hash)
    assert theirs.metadata["Size"] == f"{ours.width}x{ours.height}"


def test_sd_parsers_gap_a1111_quoted_values_and_edge_whitespace(tmp_path):
    """A1111 quotes values holding ', ' or ':'; sd-parsers splits inside the quotes, and strips prompts."""
    recipe = replace(RECIPE, model_name="my, model: v2", prompt="  spaced  ")
    path = save_image(Image.new("RGB", (64, 40)), tmp_path / "quoted.jpg", recipe)
    theirs = ParserManager().parse(path)
    assert theirs.samplers[0].model.name == '"my'  # sd-parsers' reading
    assert theirs.full_prompt == "spaced"
    ours = inspect_image(path)
    assert (ours.model, ours.prompt) == ("my, model: v2", "  spaced  ")  # Studio's own text, read by Studio


def test_malformed_studio_json_is_a_note_and_the_parameters_text_still_counts(tmp_path):
    path = png_file(tmp_path / "bad.png", itext("parameters", RECIPE.to_parameters()),
                    itext("studio", '{"format": 1, "prompt": "unterminated'))
    info = inspect_image(path)
    assert info.notes == ("Studio's recipe in this image is not valid JSON; it was ignored.",)
    assert (info.tool, info.prompt, info.seed, info.model) == ("Studio", RECIPE.prompt, RECIPE.seed, "tiny-sd")


@pytest.mark.parametrize(("payload", "why"), [
    ('"just a string"', "is JSON but not an object of named values"),
    ("[1, 2]", "is JSON but not an object of named values"),
    ("null", "is JSON but not an object of named values"),
    ('{"prompt": "x"}', "lacks negative_prompt, steps, sampler, cfg_scale, seed, width, height, model_name"),
    ("[" * 50_000 + "]" * 50_000, "is not valid JSON"),
    ("{not json", "is not valid JSON"),
    # Valid JSON was called "not valid JSON": say which values are of the wrong kind, and which are missing.
    (json.dumps({"prompt": 123, "seed": "abc", "steps": -5, "width": "wide", "cfg_scale": None, "sampler": ["x"]}),
     "has values of the wrong kind (prompt, sampler, cfg_scale, seed, width) and lacks negative_prompt, height, "
     "model_name"),
])
def test_studio_json_of_the_wrong_shape_is_a_note_that_says_what_is_wrong(tmp_path, payload, why):
    info = inspect_image(png_file(tmp_path / "odd.png", text("studio", payload)))
    assert info.tool is None
    assert f"Studio's recipe in this image {why}; it was ignored." in info.notes


def test_studio_json_with_wrong_value_types_gives_none_not_garbage_and_names_them(tmp_path):
    data = json.loads(RECIPE.to_json()) | {"seed": "12; rm -rf /", "steps": True, "cfg_scale": "NaN", "prompt": 5}
    info = inspect_image(png_file(tmp_path / "types.png", itext("studio", json.dumps(data))))
    assert info.tool == "Studio"
    assert (info.seed, info.steps, info.cfg_scale, info.prompt) == (None, None, None, None)
    assert info.model == "tiny-sd"
    assert info.notes == ("Studio's recipe in this image has values of the wrong kind (prompt, steps, cfg_scale, "
                          "seed); they were ignored.",)



@pytest.mark.parametrize(("changes", "read", "note"), [
    # pydantic's strict check called "25" and 3.0 of the wrong kind, and the note said they were ignored: they are used.
    ({"steps": "25", "seed": 3.0, "cfg_scale": "7.5"}, {"steps": 25, "seed": 3, "cfg_scale": 7.5}, None),
    ({"steps": "25", "seed": 3.5}, {"steps": 25, "seed": None}, "seed"),
    # A LoRA with a hash of the wrong kind is kept (without the hash): the LoRAs are not called ignored.
    ({"loras": [{"name": "ink", "hash": 5, "weight": 0.5}]}, {"loras": (("ink", 0.5),)}, None),
    # What pydantic lets through but the reader cannot use is named all the same (width 40: the picture's own).
    ({"cfg_scale": float("nan"), "width": "0x1"}, {"cfg_scale": None, "width": 40}, "cfg_scale, width"),
])
def test_studio_json_note_names_only_the_values_that_were_not_used(tmp_path, changes, read, note):
    data = json.loads(RECIPE.to_json()) | changes
    info = inspect_image(png_file(tmp_path / "lenient.png", itext("studio", json.dumps(data))))
    assert {key: getattr(info, key) for key in read} == read
    assert info.notes == ((f"Studio's recipe in this image has values of the wrong kind ({note}); they were "
                           "ignored.",) if note else ())

# --- safety: sizes, bombs, damage ---------------------------------------------------------------------------------

def test_a_text_chunk_over_1_mb_is_ignored_with_a_note_and_the_rest_is_read(tmp_path):
    path = png_file(tmp_path / "big.png", text("junk", "x" * (MAX_TEXT_BYTES + 1)), text("parameters", A1111_TEXT))
    info = inspect_image(path)
    assert info.notes == ("The metadata text 'junk' is larger than 1 MB; it was ignored.",)
    assert (info.tool, info.seed) == ("AUTOMATIC1111", 3141592653)


def test_an_over_1_mb_parameters_chunk_after_the_image_data_is_ignored(tmp_path):
    big = A1111_TEXT.replace("a knight", "a knight" + " very" * 220_000)
    path = png_file(tmp_path / "big.png", after_idat=itext("parameters", big))
    info = inspect_image(path)
    assert info.tool is None and info.prompt is None
    assert info.notes == ("The metadata text 'parameters' is larger than 1 MB; it was ignored.",)


@pytest.mark.parametrize("make", [lambda data: ztext("parameters", data),
                                  lambda data: itext("parameters", data.decode(), compressed=True)])
def test_a_decompression_bomb_text_chunk_is_a_note(tmp_path, make):
    bomb = make(A1111_TEXT.encode() + b" " * (64 * MAX_TEXT_BYTES))  # 64 MB of text in about 64 KB
    path = png_file(tmp_path / "bomb.png", bomb, text("Software", "x"))
    assert path.stat().st_size < 200_000
    with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):  # Pillow refuses the whole file
        Image.open(path)
    info = inspect_image(path)
    assert info.notes[0] == "The metadata text 'parameters' is larger than 1 MB when decompressed; it was ignored."
    assert (info.tool, info.width, info.height) == (None, 40, 30)


def test_compressed_text_just_under_the_limit_is_read(tmp_path):
    prompt = "a fox " * ((MAX_TEXT_BYTES - 1000) // 6)  # the rest of the recipe is about 350 bytes
    path = png_file(tmp_path / "ok.png", itext("studio", replace(RECIPE, prompt=prompt).to_json(), compressed=True))
    assert inspect_image(path).prompt == prompt


def test_damaged_text_chunks_are_notes(tmp_path):
    path = png_file(tmp_path / "damaged.png",
                    chunk(b"zTXt", b"parameters\0\0" + b"not zlib at all"),
                    chunk(b"iTXt", b"studio\0\0\0\0\0" + b"\xff\xfe invalid utf-8"),
                    chunk(b"tEXt", b"no separator here"))
    info = inspect_image(path)
    assert info.notes == ("The metadata text 'parameters' is damaged; it was ignored.",
                          "The metadata text 'studio' is damaged; it was ignored.")
    assert info.tool is None


def test_an_image_without_metadata_has_only_its_size(tmp_path):
    for path in (tmp_path / "plain.png", tmp_path / "plain.jpg", tmp_path / "plain.webp", tmp_path / "plain.gif"):
        Image.new("RGB", (37, 21), (1, 2, 3)).save(path)
        info = inspect_image(path)
        assert info == ImageInfo(None, None, None, None, None, None, None, 37, 21, None, None, None, ())
        assert info.to_json_dict() == dict.fromkeys(JSON_KEYS) | {"width": 37, "height": 21}


def test_a_picture_without_metadata_never_gets_the_previous_picture_s_prompt(tmp_path):
    """sd-parsers' JPEG extractor caches by id(image): a new image at a freed address gets the old comment."""
    with_prompt = exif_jpeg(tmp_path / "with.jpg", a1111_user_comment(A1111_TEXT))
    without = tmp_path / "without.jpg"
    Image.new("RGB", (48, 32)).save(without)
    for _ in range(30):
        assert inspect_image(with_prompt).prompt == "portrait of a knight, (armor:1.3)"
        assert inspect_image(without).prompt is None


def test_escape_sequences_in_metadata_are_kept_as_data(tmp_path):
    prompt = "evil \x1b]0;pwned\x07\x1b[2J prompt \u202e"
    path = pillow_png(tmp_path / "esc.png", {"parameters": f"{prompt}\nSteps: 2, Sampler: Euler, Seed: 1"})
    info = inspect_image(path)
    assert info.prompt == prompt.strip()  # unchanged in the data; escaping is for display
    assert escape_text(info.prompt) == "evil \\x1b]0;pwned\\x07\\x1b[2J prompt \\u202e"


def test_escape_text_leaves_ordinary_text_alone():
    assert escape_text("a fox, (snow:1.2) \\( ü 狐 🦊") == "a fox, (snow:1.2) \\( ü 狐 🦊"
    assert escape_text("two\nlines\tand\r\x00\x9b") == "two\\nlines\\tand\\r\\x00\\x9b"


@pytest.mark.parametrize("content, message", [
    (b"", "is not an image file Studio can read"),
    (b"this is not an image, just text", "is not an image file Studio can read"),
    (b"\x89PNG\r\n\x1a\n", "is truncated"),
    (b"\x89PNG\r\n\x1a\n" + chunk(b"tEXt", b"a\0b"), "not a PNG image Studio can read"),
])
def test_not_an_image_is_one_sentence(tmp_path, content, message):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as caught:
        inspect_image(path)
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")


def test_truncated_images_are_refused(tmp_path):
    png = png_file(tmp_path / "t.png", text("parameters", A1111_TEXT))
    data = png.read_bytes()
    for cut in (60, len(data) // 2, len(data) - 13):
        png.write_bytes(data[:cut])
        with pytest.raises(ImageError, match="truncated"):
            inspect_image(png)
    jpeg = tmp_path / "t.jpg"
    Image.effect_noise((256, 256), 60).convert("RGB").save(jpeg, quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[:4000])
    with pytest.raises(ImageError, match="truncated or damaged"):
        inspect_image(jpeg)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        inspect_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        inspect_image(tmp_path)


# --- schedulers and the prompt panel ------------------------------------------------------------------------------

@pytest.mark.parametrize("sampler, schedule, expected", [
    ("euler_a", None, "Euler a"), ("dpmpp_2m_k", None, "DPM++ 2M Karras"), ("dpmpp_2m", None, "DPM++ 2M"),
    ("dpmpp_2m_sde_k", None, "DPM++ 2M SDE Karras"), ("unipc", None, "UniPC"), ("heun", None, "Heun"),
    ("euler_k", None, None), ("lcm", None, None),  # InvokeAI
    ("k_euler_ancestral", "native", "Euler a"), ("k_dpmpp_2m", "karras", "DPM++ 2M Karras"),
    ("k_dpmpp_2m", "exponential", None), ("ddim_v3", None, None),  # NovelAI
    ("k_dpmpp_2m_ka", None, "DPM++ 2M Karras"), ("k_euler_a", None, "Euler a"),  # A1111's aliases
    (None, None, None), ("", "karras", None),
])
def test_studio_scheduler_for_other_tools_names(sampler, schedule, expected):
    assert studio_scheduler(sampler, schedule) == expected


def test_every_studio_scheduler_maps_to_itself():
    assert [studio_scheduler(name) for name in SCHEDULER_NAMES] == list(SCHEDULER_NAMES)


def test_recipe_fields_from_a_studio_image(tmp_path):
    path = save_image(Image.new("RGB", (64, 40)), tmp_path / "s.png", RECIPE)
    assert recipe_fields(inspect_image(path)) == {
        "prompt": RECIPE.prompt, "negative_prompt": "blurry, dark", "steps": 31, "cfg_scale": 6.5, "seed": 987654321,
        "scheduler": "DPM++ 2M Karras", "width": 512, "height": 768, "hires": False, "model_name": "tiny-sd",
        "model_hash": "0123456789", "loras": [], "vae": ""}


def test_recipe_fields_leave_out_what_studio_cannot_take(tmp_path):
    graph = comfy_graph("euler_ancestral", "karras")  # no Studio equivalent; a 64-bit seed
    fields = recipe_fields(inspect_image(comfy_png(tmp_path / "c.png", graph)))
    assert fields == {"prompt": "beautiful scenery, glass bottle, purple galaxy", "negative_prompt": "text, watermark",
                      "steps": 20, "cfg_scale": 8.0, "width": 512, "height": 768, "hires": False,
                      "model_name": "v1-5-pruned-emaonly.safetensors", "loras": [], "vae": ""}
    plain = tmp_path / "plain.png"
    Image.new("RGB", (64, 64)).save(plain)
    assert recipe_fields(inspect_image(plain)) == {}


def test_json_dict_has_exactly_the_issue_s_keys(tmp_path):
    info = inspect_image(pillow_png(tmp_path / "a.png", {"parameters": A1111_TEXT}))
    assert list(info.to_json_dict()) == ["tool", "prompt", "negative_prompt", "seed", "steps", "cfg_scale", "sampler",
                                         "width", "height", "model"]
    assert json.loads(json.dumps(info.to_json_dict()))["seed"] == 3141592653


# --- LoRAs and the VAE ---------------------------------------------------------------------------------------

def test_a_studio_picture_gives_back_its_loras_and_vae(tmp_path):
    from studio.core.metadata import LoraRecord

    recipe = replace(RECIPE, loras=(LoraRecord("ink", "0123456789ab", 0.7), LoraRecord("grain", "", -1.5)),
                     vae_name="sdxl-vae-fix", vae_hash="abcdef0123")
    path = tmp_path / "studio.png"
    save_image(Image.new("RGB", (64, 48)), path, recipe)
    info = inspect_image(path)
    assert info.loras == (("ink", 0.7), ("grain", -1.5)) and info.vae == "sdxl-vae-fix"
    fields = recipe_fields(info)
    assert fields["loras"] == [("ink", 0.7), ("grain", -1.5)] and fields["vae"] == "sdxl-vae-fix"


def test_a1111_text_is_read_by_a1111_s_own_rules_where_sd_parsers_bends_them(tmp_path):
    def read(name: str, parameters: str):  # noqa: ANN202
        return inspect_image(pillow_png(tmp_path / f"{name}.png", {"parameters": parameters}))

    settings = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x768"
    inline = read("inline", f"poster with the words Negative prompt: none, bold font\n{settings}")
    assert (inline.prompt, inline.negative_prompt) == ("poster with the words Negative prompt: none, bold font", None)
    twice = read("twice", f"a sign saying Negative prompt: none\nNegative prompt: blurry\n{settings}")
    assert (twice.tool, twice.prompt, twice.negative_prompt, twice.seed) == (
        "AUTOMATIC1111", "a sign saying Negative prompt: none", "blurry", 42)
    assert twice.notes == ()
    quoted = read("quoted", f'a cat\nNegative prompt: dog\n{settings}, Model hash: 1234567890, Model: "Realistic, '
                            'Vision V5", ADetailer prompt: "face, Seed: 9, smile", Version: v1.6.0')
    assert (quoted.model, quoted.model_hash, quoted.seed, quoted.width, quoted.height) == (
        "Realistic, Vision V5", "1234567890", 42, 512, 768)
    extension_lines = read("dynamic", f"a red fox\nNegative prompt: blurry\n{settings}\nTemplate: a {{red|blue}} fox")
    assert (extension_lines.prompt, extension_lines.negative_prompt, extension_lines.steps) == (
        "a red fox", "blurry", 20)
    unclosed = read("unclosed", f'a cat <lora:ink:0.5>\nNegative prompt: dog\n{settings}, Template: "broken')
    assert (unclosed.tool, unclosed.prompt, unclosed.seed, unclosed.loras) == ("AUTOMATIC1111", "a cat <lora:ink:0.5>",
                                                                              42, ())
    assert unclosed.notes == ("A quoted value in this image's settings line is never closed; the settings were read "
                              "as far as they could be, and its LoRAs were not.",)


def test_an_a1111_picture_gives_its_loras_from_the_prompt_tags_and_hashes(tmp_path):
    text_ = ("a fox <lora:ink:0.6>, snow <lora:film grain:1>\nNegative prompt: blurry\n"
             'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model: dreamy, '
             'Lora hashes: "ink: 0123456789ab, film grain: ba9876543210", Version: v1.10.1')
    info = inspect_image(pillow_png(tmp_path / "a1111.png", {"parameters": text_}))
    assert info.tool == "AUTOMATIC1111"
    assert info.loras == (("ink", 0.6), ("film grain", 1.0))
    plain = inspect_image(pillow_png(tmp_path / "plain.png", {"parameters": "a fox\nSteps: 20, Seed: 1"}))
    assert plain.loras == () and recipe_fields(plain)["loras"] == []  # loading it takes the last picture's off


def test_an_a1111_picture_s_vae_is_read_as_studio_names_it_and_none_named_keeps_the_chosen_one(tmp_path):
    """A1111's "VAE:" was never read: loading set the model's own VAE and inspect showed none."""
    settings = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model: dreamy"
    named = inspect_image(pillow_png(tmp_path / "vae.png", {"parameters": (
        f"a fox\n{settings}, VAE hash: 1eddc4b4f9, VAE: vae-ft-mse-840000-ema-pruned.safetensors, Version: v1.9.4")}))
    assert (named.vae, named.vae_hash) == ("vae-ft-mse-840000-ema-pruned", "1eddc4b4f9")
    assert recipe_fields(named)["vae"] == "vae-ft-mse-840000-ema-pruned"
    assert named.to_json_dict()["vae"] == "vae-ft-mse-840000-ema-pruned"
    # A1111 names a VAE only when one was set, and its own "read parameters" then keeps the VAE chosen.
    unnamed = inspect_image(pillow_png(tmp_path / "none.png", {"parameters": f"a fox\n{settings}, Version: v1.9.4"}))
    assert unnamed.vae is None and "vae" not in recipe_fields(unnamed)
    studio = inspect_image(save_image(Image.new("RGB", (64, 48)), tmp_path / "studio.png", RECIPE))
    assert recipe_fields(studio)["vae"] == ""  # Studio records every VAE it used: none is the model's own


def test_a_studio_picture_s_loras_come_back_once_from_its_a1111_text_alone(tmp_path):
    from studio.core.metadata import LoraRecord

    recipe = replace(RECIPE, prompt="a fox,\nin the snow,", loras=(LoraRecord("ink, wet", "0123456789ab", 0.7),
                                                                   LoraRecord("grain", "", -1.5)))
    parameters = recipe.to_parameters()
    assert parameters.startswith("a fox,\nin the snow, <lora:ink, wet:0.7> <lora:grain:-1.5>\n")  # for A1111
    for name, texts in (("both", {"parameters": parameters, "studio": recipe.to_json()}),
                        ("stripped", {"parameters": parameters})):  # another tool took Studio's JSON out
        info = inspect_image(pillow_png(tmp_path / f"{name}.png", texts))
        assert info.tool == "Studio"
        assert info.prompt == "a fox,\nin the snow,"  # shown without the tags, its own comma kept
        assert info.loras == (("ink, wet", 0.7), ("grain", -1.5)) and info.lora_hashes == ("0123456789ab", "")
        assert recipe_fields(info)["loras"] == [("ink, wet", 0.7), ("grain", -1.5)]


def test_an_a1111_tag_and_its_hash_entry_are_one_lora(tmp_path):
    # A1111 takes "," out of a name in its hash list, not out of the tag (which names the file).
    text_ = ('a fox <lora:ink, wet:0.6>, snow\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, '
             'Lora hashes: "ink wet: 0123456789ab", Version: v1.10.1')
    info = inspect_image(pillow_png(tmp_path / "a1111.png", {"parameters": text_}))
    assert (info.tool, info.prompt) == ("AUTOMATIC1111", "a fox, snow")
    assert info.loras == (("ink, wet", 0.6),) and info.lora_hashes == ("0123456789ab",)


def test_a_number_past_a_float_s_range_is_a_value_not_used_not_a_crash(tmp_path):
    """JSON may write an integer of 400 digits; math.isfinite raised OverflowError on it out of inspect_image."""
    text = RECIPE.to_json().replace('"cfg_scale": ' + json.dumps(RECIPE.cfg_scale), '"cfg_scale": 1' + "0" * 400)
    assert "0" * 400 in text
    info = inspect_image(png_file(tmp_path / "huge.png", itext("studio", text)))
    assert info.cfg_scale is None and info.prompt == RECIPE.prompt
    assert info.notes == ("Studio's recipe in this image has values of the wrong kind (cfg_scale); they were "
                          "ignored.",)


def test_a1111_clip_skip_is_a_value_studio_cannot_take(tmp_path):
    settings = "a fox\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64"
    skipped = inspect_image(pillow_png(tmp_path / "skip.png", {"parameters": f"{settings}, Clip skip: 2"}))
    assert refused_values(skipped) == {
        "clip_skip": "Studio has no clip skip setting (this picture used Clip skip 2)"}
    none = inspect_image(pillow_png(tmp_path / "none.png", {"parameters": f"{settings}, Clip skip: 1"}))
    assert refused_values(none) == {}
