"""Reading other tools' images through sd-parsers (AUTOMATIC1111, ComfyUI, InvokeAI, Fooocus, NovelAI).

Every other tool's image is built here from that tool's documented format (the chunk names and
JSON layouts its own code writes, and sd-parsers' test fixtures). Tests named ``..._sd_parsers_gap``
record what sd-parsers 0.6 cannot read, for the issue's closing note.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from metadata_images import (
    A1111_TEXT,
    COMFY_LINKS,
    a1111_user_comment,
    comfy_graph,
    comfy_png,
    exif_jpeg,
    fields_of,
    pillow_png,
    png_file,
    text,
)
from PIL import Image
from sd_parsers import ParserManager

from studio.core.image_info import recipe_fields, refused_values
from studio.core.image_inspection import inspect_image
from studio.core.images import read_recipe


# --- AUTOMATIC1111 (and Forge, SD.Next: the same text) -------------------------------------------------------------

def test_a1111_png_with_the_separate_schedule_type(tmp_path):
    info = inspect_image(pillow_png(tmp_path / "a1111.png", {"parameters": A1111_TEXT}))
    assert fields_of(info) == ("AUTOMATIC1111", "portrait of a knight, (armor:1.3)", "cartoon, lowres", 3141592653,
                               28, 6.5, "DPM++ 2M", 832, 1216, "sd_xl_base_1.0", "31e35c80fc", "DPM++ 2M Karras")
    assert info.notes == ()


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("WEBP", ".webp")])
def test_a1111_jpeg_and_webp_user_comment(tmp_path, fmt, suffix):
    path = exif_jpeg(tmp_path / f"a1111{suffix}", a1111_user_comment(A1111_TEXT.replace("knight", "knight ü 騎士")),
                     fmt=fmt)
    info = inspect_image(path)
    assert (info.tool, info.prompt, info.seed, info.steps, info.scheduler) == (
        "AUTOMATIC1111", "portrait of a knight ü 騎士, (armor:1.3)", 3141592653, 28, "DPM++ 2M Karras")
    assert (info.width, info.height) == (832, 1216)  # the generation size, not the file's 48x32


@pytest.mark.parametrize("encode", [
    lambda t: b"UNICODE\0" + t.encode("utf-16-le"),  # exiftool, in a little-endian (II) file
    lambda t: b"UNICODE\0" + t.encode("utf-16"),  # with a byte-order mark
    lambda t: b"ASCII\0\0\0" + t.encode("ascii", "replace"),
])
def test_other_user_comment_encodings(tmp_path, encode):
    path = exif_jpeg(tmp_path / "enc.jpg", encode(A1111_TEXT))
    assert ParserManager().parse(path) is None  # the sd-parsers gap: it always decodes UTF-16BE
    info = inspect_image(path)
    assert (info.tool, info.prompt, info.seed) == ("AUTOMATIC1111", "portrait of a knight, (armor:1.3)", 3141592653)
    assert read_recipe(path).prompt == "portrait of a knight, (armor:1.3)"  # what Studio carries on (postprocess)


def test_a_user_comment_that_is_not_text_is_a_note(tmp_path):
    path = exif_jpeg(tmp_path / "number.jpg", "")
    exif = Image.open(path).getexif()
    exif.get_ifd(0x8769)[0x9286] = 7  # written as a number by a broken tool
    Image.new("RGB", (48, 32)).save(path, exif=exif.tobytes())
    info = inspect_image(path)
    assert info.tool is None and "The image's EXIF UserComment is not text; it was ignored." in info.notes
    assert read_recipe(path) is None


@pytest.mark.parametrize("sampler, schedule, expected, why", [
    ("Euler a", None, "Euler a", None),
    ("Euler a", "Automatic", "Euler a", None),
    ("Euler", None, "Euler", None),
    ("DPM++ 2M Karras", None, "DPM++ 2M Karras", None),  # before A1111 1.9: Karras in the sampler's name
    ("DPM++ 2M Karras", "Karras", "DPM++ 2M Karras", None),
    ("DPM++ 2M", "Karras", "DPM++ 2M Karras", None),  # A1111 1.9 and later: a separate Schedule type
    ("DPM++ 2M SDE", "Karras", "DPM++ 2M SDE Karras", None),
    # A1111's default for it; Studio has no such scheduler
    ("DPM++ 2M SDE", "Exponential", None, "Studio has no DPM++ 2M SDE sampler with the Exponential schedule"),
    ("Euler", "Exponential", None, "Studio has no Euler sampler with the Exponential schedule"),
    ("Euler", "Karras", None, "Studio has no Euler Karras sampler"),
    ("DPM++ SDE", "Karras", None, "Studio has no DPM++ SDE Karras sampler"),
    ("DPM++ SDE Karras", None, None, "Studio has no DPM++ SDE Karras sampler"),
    ("LMS", None, None, "Studio has no LMS sampler"),
    ("Totally New Sampler", None, None, "Studio has no Totally New Sampler"),
    ("UniPC", None, "UniPC", None),
    ("DDIM", None, "DDIM", None),
])
def test_a1111_samplers_map_to_studio_schedulers_or_say_why_not(tmp_path, sampler, schedule, expected, why):
    settings = f"Steps: 20, Sampler: {sampler}, " + (f"Schedule type: {schedule}, " if schedule else "")
    path = pillow_png(tmp_path / "s.png", {"parameters": f"a cat\n{settings}CFG scale: 7, Seed: 1, Size: 512x512"})
    info = inspect_image(path)
    assert (info.sampler, info.scheduler) == (sampler, expected)
    assert refused_values(info).get("scheduler") == why
    assert recipe_fields(info).get("scheduler") == expected


def test_values_past_studio_s_limits_are_left_out_and_each_says_why(tmp_path):
    """They were left out with no word: loading the picture kept the old values and said it loaded them."""
    path = pillow_png(tmp_path / "x.png", {"parameters": "a cat\nSteps: 100000, Sampler: Euler, CFG scale: -5, "
                                                       "Seed: 99999999999999999999, Size: 99999x3"})
    info = inspect_image(path)
    assert refused_values(info) == {
        "steps": "Steps 100000 is more than 1000 (the most)", "cfg_scale": "CFG scale -5 is less than 0 (the least)",
        "seed": "Seed 99999999999999999999 is more than 4294967295 (the most)",
        "size": "Size 99999x3 is not from 64 to 4096 pixels a side"}
    assert sorted(recipe_fields(info)) == ["loras", "negative_prompt", "prompt", "scheduler"]
    taken = inspect_image(pillow_png(tmp_path / "y.png", {"parameters": "a cat\nSteps: 1000, Sampler: Euler, "
                                                                        "CFG scale: 50, Seed: 0, Size: 64x4096"}))
    assert refused_values(taken) == {}
    assert {k: recipe_fields(taken)[k] for k in ("steps", "cfg_scale", "seed", "width", "height")} == {
        "steps": 1000, "cfg_scale": 50.0, "seed": 0, "width": 64, "height": 4096}


def test_a_sampler_name_is_said_escaped_and_cut(tmp_path):
    path = pillow_png(tmp_path / "x.png", {"parameters": "a cat\nSteps: 20, Sampler: \x1b[31mred" + "x" * 200 +
                                                       ", CFG scale: 7, Seed: 1, Size: 64x64"})
    why = refused_values(inspect_image(path))["scheduler"]
    assert why.startswith("Studio has no \\x1b[31mredxxx") and why.endswith("x… sampler") and len(why) < 100


@pytest.mark.parametrize("text, prompt, negative", [
    ("only a prompt, no settings line", "only a prompt, no settings line", None),
    ("just a prompt\nsecond line\nNegative prompt: nope", "just a prompt\nsecond line", "nope"),
])
def test_sd_parsers_gap_a1111_text_without_a_settings_line(text, prompt, negative, tmp_path):
    # Read as no settings at all ("Prompt: -", "No generation settings Studio knows were found"): A1111 reads the
    # whole text as the prompt, and a "Negative prompt:" line still starts the negative prompt.
    path = pillow_png(tmp_path / "bare.png", {"parameters": text})
    assert ParserManager().parse(path) is None
    info = inspect_image(path)
    assert (info.tool, info.prompt, info.negative_prompt, info.steps, info.notes) == \
        ("AUTOMATIC1111", prompt, negative, None, ())
    fields = recipe_fields(info)  # what dropping the picture on the window loads
    assert (fields["prompt"], fields["negative_prompt"]) == (prompt, negative or "")  # none: the box is emptied


def test_overlong_a1111_text_is_not_handed_to_the_slow_parser(tmp_path):
    """sd-parsers' A1111 reader is quadratic in "Hashes: {" (550 KB took 39 s); 64 KB is plenty for settings."""
    payload = "x" + ", Hashes: {" * 60_000 + "\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1"
    start = time.perf_counter()
    info = inspect_image(png_file(tmp_path / "slow.png", text("parameters", payload)))
    assert time.perf_counter() - start < 5
    assert info.tool is None
    assert "The 'parameters' text is over 64 KB, too long to be generation settings; it was ignored." in info.notes


def test_fooocus_a1111_scheme_is_named_fooocus(tmp_path):
    text_ = ("a smiling goldfish\nNegative prompt: ugly\nSteps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 42, "
             "CFG scale: 4, Size: 1152x896, Model: juggernautXL, Version: Fooocus v2.5.5")
    info = inspect_image(pillow_png(tmp_path / "fa.png", {"parameters": text_, "fooocus_scheme": "a1111"}))
    assert (info.tool, info.prompt, info.seed, info.scheduler) == ("Fooocus", "a smiling goldfish", 42,
                                                                   "DPM++ 2M SDE Karras")


# --- ComfyUI --------------------------------------------------------------------------------------------------

def test_comfyui_prompt_and_workflow(tmp_path):
    info = inspect_image(comfy_png(tmp_path / "comfy.png", comfy_graph()))
    assert fields_of(info) == ("ComfyUI", "beautiful scenery, glass bottle, purple galaxy", "text, watermark",
                               156680208700286, 20, 8.0, "dpmpp_2m", 512, 768, "v1-5-pruned-emaonly.safetensors",
                               None, "DPM++ 2M Karras")
    assert info.notes == ()


@pytest.mark.parametrize("sampler_name, scheduler, expected", [
    ("euler_ancestral", "normal", "Euler a"),
    ("euler_ancestral", "karras", None),
    ("euler", "simple", "Euler"),
    ("dpmpp_2m", "normal", "DPM++ 2M"),
    ("dpmpp_2m_sde_gpu", "karras", "DPM++ 2M SDE Karras"),
    ("uni_pc", "normal", "UniPC"),
    ("ddim", "normal", "DDIM"),
    ("lcm", "sgm_uniform", None),
])
def test_comfyui_samplers_map_to_studio_schedulers(tmp_path, sampler_name, scheduler, expected):
    info = inspect_image(comfy_png(tmp_path / "c.png", comfy_graph(sampler_name, scheduler)))
    assert (info.sampler, info.scheduler) == (sampler_name, expected)


def test_comfyui_image_without_workflow_is_read_through_derived_links(tmp_path):
    """Images from ComfyUI's API carry only the 'prompt' graph; sd-parsers insists on a 'workflow' too."""
    path = comfy_png(tmp_path / "api.png", comfy_graph(), links=None)
    assert ParserManager().parse(path) is None  # the sd-parsers gap
    info = inspect_image(path)
    assert (info.tool, info.prompt, info.negative_prompt, info.seed, info.model) == (
        "ComfyUI", "beautiful scenery, glass bottle, purple galaxy", "text, watermark", 156680208700286,
        "v1-5-pruned-emaonly.safetensors")


def test_sd_parsers_gap_comfyui_model_behind_a_lora_loader(tmp_path):
    graph = comfy_graph()
    graph["10"] = {"class_type": "LoraLoader", "inputs": {"lora_name": "detail.safetensors", "strength_model": 1.0,
                                                          "strength_clip": 1.0, "model": ["4", 0], "clip": ["4", 1]}}
    graph["3"]["inputs"]["model"] = ["10", 0]
    links = [[1, 10, 0, 3, 0, "MODEL"], [10, 4, 0, 10, 0, "MODEL"], *COMFY_LINKS[1:]]
    path = comfy_png(tmp_path / "lora.png", graph, links)
    assert ParserManager().parse(path).samplers[0].model.name == ["4", 0]  # a link, not the checkpoint's name
    info = inspect_image(path)
    assert info.model == "v1-5-pruned-emaonly.safetensors"  # the graph's one checkpoint loader names it
    assert (info.prompt, info.seed) == ("beautiful scenery, glass bottle, purple galaxy", 156680208700286)
    graph["12"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "refiner.safetensors"}}
    assert inspect_image(comfy_png(tmp_path / "two.png", graph, links)).model is None  # two: which, is not known


def test_sd_parsers_gap_comfyui_seed_from_another_node(tmp_path):
    graph = comfy_graph(seed=["11", 0])
    graph["11"] = {"class_type": "Seed (rgthree)", "inputs": {"seed": 42}}
    info = inspect_image(comfy_png(tmp_path / "seed.png", graph, [*COMFY_LINKS, [10, 11, 0, 3, 4, "INT"]]))
    assert info.tool == "ComfyUI" and info.seed is None  # links are not followed for values
    assert info.prompt == "beautiful scenery, glass bottle, purple galaxy"


def test_comfyui_two_samplers_show_the_first_with_a_note(tmp_path):
    graph = comfy_graph()
    graph["12"] = {"class_type": "KSamplerAdvanced",
                   "inputs": {"add_noise": "enable", "noise_seed": 7, "steps": 30, "cfg": 5.0,
                              "sampler_name": "euler", "scheduler": "normal", "start_at_step": 20,
                              "end_at_step": 10000, "return_with_leftover_noise": "disable", "model": ["4", 0],
                              "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["3", 0]}}
    links = [*COMFY_LINKS, [10, 4, 0, 12, 0, "MODEL"], [11, 6, 0, 12, 1, "CONDITIONING"],
             [12, 7, 0, 12, 2, "CONDITIONING"], [13, 3, 0, 12, 3, "LATENT"]]
    info = inspect_image(comfy_png(tmp_path / "two.png", graph, links))
    assert (info.seed, info.steps, info.sampler) == (156680208700286, 20, "dpmpp_2m")
    assert info.notes == ("This image was made with 2 sampler passes; the first one's settings are shown.",)


@pytest.mark.parametrize("chunks, note", [
    ({"prompt": "{not json", "workflow": "{}"},
     "The ComfyUI 'prompt' text in this image is not valid JSON; it was ignored."),
    ({"prompt": json.dumps(comfy_graph()), "workflow": '{"links": [[1, 4'},
     "The ComfyUI 'workflow' text in this image is not valid JSON; it was ignored."),
    ({"prompt": "[" * 200_000 + "]" * 200_000, "workflow": "{}"},
     "The ComfyUI 'prompt' text in this image is not valid JSON; it was ignored."),  # too deep for json
])
def test_malformed_comfyui_json_is_a_note(tmp_path, chunks, note):
    info = inspect_image(pillow_png(tmp_path / "bad.png", chunks))
    assert note in info.notes


def test_malformed_workflow_does_not_hide_the_prompt_graph(tmp_path):
    path = pillow_png(tmp_path / "bad.png", {"prompt": json.dumps(comfy_graph()), "workflow": "{oops"})
    info = inspect_image(path)
    assert info.tool == "ComfyUI" and info.prompt == "beautiful scenery, glass bottle, purple galaxy"


def test_huge_comfyui_graph_is_not_walked(tmp_path):
    """sd-parsers' graph walk is about samplers x depth squared: 500 samplers on 500 nodes took 14 s."""
    graph = {f"c{i}": {"class_type": "ConditioningCombine", "inputs": {"a": [f"c{i - 1}", 0]}} for i in range(500)}
    graph |= {f"s{i}": {"class_type": "KSampler", "inputs": {"seed": i, "steps": 1, "cfg": 1, "sampler_name": "euler",
                                                             "positive": ["c499", 0], "negative": ["c499", 0]}}
              for i in range(500)}
    start = time.perf_counter()
    info = inspect_image(pillow_png(tmp_path / "huge.png", {"prompt": json.dumps(graph)}))
    assert time.perf_counter() - start < 5
    assert info.tool is None
    assert ("The ComfyUI graph has 1000 nodes and 500 samplers, more than Studio reads (1000 and 16); "
            "it was ignored.") in info.notes


# --- InvokeAI ---------------------------------------------------------------------------------------------------

INVOKE_V3 = {"app_version": "3.3.0post3", "generation_mode": "txt2img", "positive_prompt": "landscape, mountains",
             "negative_prompt": "low quality", "width": 768, "height": 432, "seed": 356120443,
             "rand_device": "cpu", "cfg_scale": 7.5, "steps": 50, "scheduler": "dpmpp_2m_sde_k", "clip_skip": 0,
             "model": {"model_name": "amixx_3Prunedfp16", "base_model": "sd-1", "model_type": "main"},
             "controlnets": [], "ipAdapters": [], "t2iAdapters": [], "loras": [],
             "vae": {"model_name": "sd-vae-ft-mse", "base_model": "sd-1"}}


def test_invokeai_3_metadata(tmp_path):
    info = inspect_image(pillow_png(tmp_path / "inv3.png", {"invokeai_metadata": json.dumps(INVOKE_V3)}))
    assert fields_of(info) == ("InvokeAI", "landscape, mountains", "low quality", 356120443, 50, 7.5,
                               "dpmpp_2m_sde_k", 768, 432, "amixx_3Prunedfp16", None, "DPM++ 2M SDE Karras")


def test_sd_parsers_gap_invokeai_4_and_later_model(tmp_path):
    """InvokeAI 4+ names the model {key, hash, name, base, type}; sd-parsers looks for model_name only, so
    Studio reads the name itself."""
    metadata = INVOKE_V3 | {"app_version": "5.6.0", "scheduler": "euler_a",
                            "model": {"key": "4a1b2c", "hash": "blake3:9f8e7d", "name": "Juggernaut XL v9",
                                      "base": "sdxl", "type": "main"}}
    graph = {"id": "g", "nodes": {}, "edges": []}
    info = inspect_image(pillow_png(tmp_path / "inv5.png", {"invokeai_metadata": json.dumps(metadata),
                                                           "invokeai_graph": json.dumps(graph)}))
    assert (info.tool, info.prompt, info.seed, info.scheduler) == ("InvokeAI", "landscape, mountains", 356120443,
                                                                   "Euler a")
    assert (info.model, info.model_hash) == ("Juggernaut XL v9", None)


def test_invokeai_2_sd_metadata(tmp_path):
    sd_metadata = {"model": "stable diffusion", "model_weights": "deliberateForInvoke_v08",
                   "model_hash": "56d1442a0feefd64836a19ac8e3527ec71c884fc962e246ddf67b03e42921272",
                   "app_id": "invoke-ai/InvokeAI", "app_version": "2.3.0",
                   "image": {"prompt": [{"prompt": "full body photo, city at night [rendering, glowing eyes]",
                                         "weight": 1.0}],
                             "steps": 50, "cfg_scale": 5, "threshold": 0, "perlin": 0, "height": 768, "width": 512,
                             "seed": 2980747362, "seamless": False, "hires_fix": False, "type": "txt2img",
                             "postprocessing": None, "sampler": "k_euler_a", "variations": []}}
    info = inspect_image(pillow_png(tmp_path / "inv2.png", {"sd-metadata": json.dumps(sd_metadata)}))
    assert fields_of(info) == ("InvokeAI", "full body photo, city at night", "rendering, glowing eyes", 2980747362,
                               50, 5.0, "k_euler_a", 512, 768, "deliberateForInvoke_v08",
                               sd_metadata["model_hash"], "Euler a")


def test_invokeai_dream_line(tmp_path):
    dream = '"full body photo [rendering, glowing eyes]" -s 50 -S 2980747362 -W 512 -H 768 -C 5.0 -A k_lms'
    info = inspect_image(pillow_png(tmp_path / "dream.png", {"Dream": dream}))
    assert fields_of(info) == ("InvokeAI", "full body photo", "rendering, glowing eyes", 2980747362, 50, 5.0,
                               "k_lms", 512, 768, None, None, None)


@pytest.mark.parametrize("key", ["sd-metadata", "invokeai_metadata"])
def test_an_sd_parsers_crash_is_a_note(tmp_path, key):
    """Valid JSON of the wrong shape makes sd-parsers' InvokeAI reader raise TypeError, past ParserManager."""
    path = pillow_png(tmp_path / "crash.png", {key: "[]"})
    with pytest.raises(TypeError):
        ParserManager().parse(path)
    info = inspect_image(path)
    assert info.tool is None
    assert "The InvokeAI reader failed on this image's metadata (TypeError); it was skipped." in info.notes


# --- Fooocus ----------------------------------------------------------------------------------------------------

FOOOCUS = {"adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion",
           "base_model_hash": "aeb7e9e689", "clip_skip": 2,
           "full_negative_prompt": ["(worst quality, low quality:1.4)", "anime, cartoon"],
           "full_prompt": ["cinematic still a smiling goldfish . emotional", "a smiling goldfish, deep focus"],
           "guidance_scale": 4, "loras": [], "metadata_scheme": "fooocus", "negative_prompt": "anime",
           "performance": "Speed", "prompt": "a smiling goldfish", "prompt_expansion": "a smiling goldfish, deep",
           "refiner_model": "None", "refiner_switch": 0.5, "resolution": "(768, 1280)",
           "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "6952411511246973023", "sharpness": 2,
           "steps": 30, "styles": "['Fooocus V2', 'Fooocus Enhance', 'Fooocus Sharp']", "vae": "Default (model)",
           "version": "Fooocus v2.4.3"}
FOOOCUS_FIELDS = ("Fooocus", "a smiling goldfish", "anime", 6952411511246973023, 30, 4.0, "dpmpp_2m_sde_gpu",
                  768, 1280, "juggernautXL_v8Rundiffusion", "aeb7e9e689", "DPM++ 2M SDE Karras")


def test_fooocus_png(tmp_path):
    path = pillow_png(tmp_path / "fooocus.png", {"parameters": json.dumps(FOOOCUS), "fooocus_scheme": "fooocus"})
    assert fields_of(inspect_image(path)) == FOOOCUS_FIELDS


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("WEBP", ".webp")])
@pytest.mark.parametrize("as_bytes", [False, True])  # Fooocus 2.4 wrote a str, 2.5 UTF-8 bytes
def test_fooocus_jpeg_and_webp(tmp_path, fmt, suffix, as_bytes):
    """Fooocus puts its JSON in IFD0's UserComment as plain text (scheme in MakerNote); sd-parsers looks only in
    the Exif sub-directory, as UTF-16."""
    comment = json.dumps(FOOOCUS).encode() if as_bytes else json.dumps(FOOOCUS)
    path = exif_jpeg(tmp_path / f"fooocus{suffix}", comment, in_exif_ifd=False, fmt=fmt,
                     extra={0x0131: "Fooocus v2.4.3", 0x927C: "fooocus"})
    assert ParserManager().parse(path) is None  # the sd-parsers gap
    info = inspect_image(path)
    assert fields_of(info)[:8] == FOOOCUS_FIELDS[:8]
    assert (info.model, info.model_hash, info.scheduler) == FOOOCUS_FIELDS[9:]


def test_malformed_fooocus_json_is_a_note(tmp_path):
    info = inspect_image(pillow_png(tmp_path / "bad.png", {"parameters": '{"prompt": "x", "seed": }',
                                                           "fooocus_scheme": "fooocus"}))
    assert info.tool is None
    assert "The 'parameters' text in this image looks like JSON but is not valid; it was ignored." in info.notes


def test_a1111_prompt_that_starts_with_a_brace_is_not_taken_for_json(tmp_path):
    text_ = "{red|blue} fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512"
    info = inspect_image(pillow_png(tmp_path / "brace.png", {"parameters": text_}))
    assert (info.tool, info.prompt, info.notes) == ("AUTOMATIC1111", "{red|blue} fox", ())


# --- NovelAI ----------------------------------------------------------------------------------------------------

NOVELAI_COMMENT = {"prompt": "1girl, masterpiece, night sky", "steps": 28, "height": 1216, "width": 832,
                   "scale": 5.0, "uncond_scale": 0.0, "cfg_rescale": 0.0, "seed": 1234567890, "n_samples": 1,
                   "hide_debug_overlay": False, "noise_schedule": "native", "legacy_v3_extend": False,
                   "sampler": "k_euler_ancestral", "controlnet_strength": 1.0, "controlnet_model": None,
                   "dynamic_thresholding": False, "sm": False, "sm_dyn": False,
                   "uc": "lowres, bad anatomy", "request_type": "PromptGenerateRequest", "signed_hash": "abc="}


def novelai_png(path: Path, comment: dict, source: str = "Stable Diffusion XL C1E1DE52") -> Path:
    return pillow_png(path, {"Title": "AI generated image", "Description": comment["prompt"], "Software": "NovelAI",
                             "Source": source, "Generation time": "5.61", "Comment": json.dumps(comment)})


def test_novelai_png(tmp_path):
    info = inspect_image(novelai_png(tmp_path / "nai.png", NOVELAI_COMMENT))
    assert fields_of(info) == ("NovelAI", "1girl, masterpiece, night sky", "lowres, bad anatomy", 1234567890, 28,
                               5.0, "k_euler_ancestral", 832, 1216, "Stable Diffusion XL", "C1E1DE52", "Euler a")


def test_novelai_karras_schedule(tmp_path):
    comment = NOVELAI_COMMENT | {"sampler": "k_dpmpp_2m", "noise_schedule": "karras"}
    info = inspect_image(novelai_png(tmp_path / "nai.png", comment, "NovelAI Diffusion V4.5 4BDE2A90"))
    assert (info.sampler, info.scheduler, info.model, info.model_hash) == (
        "k_dpmpp_2m", "DPM++ 2M Karras", "NovelAI Diffusion V4.5", "4BDE2A90")


def test_sd_parsers_gap_novelai_without_a_source_chunk(tmp_path):
    path = pillow_png(tmp_path / "nai.png", {"Software": "NovelAI", "Description": NOVELAI_COMMENT["prompt"],
                                             "Comment": json.dumps(NOVELAI_COMMENT)})
    assert ParserManager().parse(path) is None
    assert inspect_image(path).tool is None


def test_novelai_overlong_source_is_dropped_not_regex_matched(tmp_path):
    """sd-parsers' Source regex is quadratic in spaces (8 KB took 0.7 s; 1 MB would take hours)."""
    start = time.perf_counter()
    info = inspect_image(novelai_png(tmp_path / "nai.png", NOVELAI_COMMENT, "A" + " " * 500_000 + "a"))
    assert time.perf_counter() - start < 5
    assert (info.tool, info.prompt, info.model) == ("NovelAI", "1girl, masterpiece, night sky", None)
    assert "The 'Source' text is too long to be a model name; it was ignored." in info.notes


def test_malformed_novelai_comment_is_a_note_and_a_plain_comment_is_not(tmp_path):
    info = inspect_image(pillow_png(tmp_path / "nai.png", {"Software": "NovelAI", "Description": "x",
                                                          "Source": "SD C1E1DE52", "Comment": '{"steps": 28,'}))
    assert "The NovelAI 'Comment' text in this image is not valid JSON; it was ignored." in info.notes
    gimp = inspect_image(pillow_png(tmp_path / "gimp.png", {"Comment": "Created with GIMP"}))
    assert gimp.notes == ("No generation settings Studio knows were found in this image's metadata ('Comment').",)


