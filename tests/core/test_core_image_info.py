"""Reading how an image was made: Studio's own files exactly, other tools' files through sd-parsers.

Every other tool's image is built here from that tool's documented format (the chunk names and
JSON layouts its own code writes, and sd-parsers' test fixtures). Tests named ``..._sd_parsers_gap``
record what sd-parsers 0.6 cannot read, for the issue's closing note.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from sd_parsers import ParserManager
from sd_parsers.data import Generators

from studio.core.errors import ImageError
from studio.core.image_info import (
    JSON_KEYS,
    ImageInfo,
    escape_text,
    inspect_image,
    recipe_fields,
    refused_values,
    studio_scheduler,
)
from studio.core.image_text import MAX_TEXT_BYTES
from studio.core.images import read_recipe, save_image
from studio.core.metadata import Recipe
from studio.core.requests import SCHEDULER_NAMES

RECIPE = Recipe(prompt='a fox, in the snow: "winter"\nsecond line ü 狐', negative_prompt="blurry, dark", steps=31,
                sampler="DPM++ 2M Karras", cfg_scale=6.5, seed=987654321, width=512, height=768,
                model_name="tiny-sd", model_hash="0123456789")


# --- building images -------------------------------------------------------------------------------------

def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_file(path: Path, *chunks: bytes, size: tuple[int, int] = (40, 30), after_idat: bytes = b"") -> Path:
    """A PNG written chunk by chunk: for text chunks Pillow would refuse to write or to read."""
    width, height = size
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + bytes(3 * width) for _ in range(height)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + b"".join(chunks) + chunk(b"IDAT", pixels)
                     + after_idat + chunk(b"IEND", b""))
    return path


def text(key: str, value: str) -> bytes:
    return chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))


def ztext(key: str, value: bytes) -> bytes:
    return chunk(b"zTXt", key.encode("latin-1") + b"\0\0" + zlib.compress(value, 9))


def itext(key: str, value: str, compressed: bool = False) -> bytes:
    data = value.encode("utf-8")
    if compressed:
        data = zlib.compress(data, 9)
    return chunk(b"iTXt", key.encode("latin-1") + b"\0" + bytes([int(compressed), 0]) + b"\0\0" + data)


def pillow_png(path: Path, texts: dict[str, str], size: tuple[int, int] = (64, 48)) -> Path:
    """A PNG as the tools write theirs: Pillow's add_text (tEXt, or iTXt beyond Latin-1)."""
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", size, (30, 60, 90)).save(path, pnginfo=info)
    return path


def exif_jpeg(path: Path, user_comment: bytes | str, *, in_exif_ifd: bool = True, fmt: str = "JPEG",
              extra: dict[int, str] | None = None) -> Path:
    exif = Image.Exif()
    if in_exif_ifd:
        exif.get_ifd(0x8769)[0x9286] = user_comment
    else:
        exif[0x9286] = user_comment
    for tag, value in (extra or {}).items():
        exif[tag] = value
    Image.new("RGB", (48, 32), (200, 100, 50)).save(path, fmt, exif=exif.tobytes(), quality=90)
    return path


def a1111_user_comment(text_: str) -> bytes:
    """What A1111 writes (piexif.helper.UserComment.dump(text, encoding="unicode")): UTF-16BE."""
    return b"UNICODE\0" + text_.encode("utf-16-be")


def fields_of(info: ImageInfo) -> tuple:
    return (info.tool, info.prompt, info.negative_prompt, info.seed, info.steps, info.cfg_scale, info.sampler,
            info.width, info.height, info.model, info.model_hash, info.scheduler)


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

# --- AUTOMATIC1111 (and Forge, SD.Next: the same text) -------------------------------------------------------------

A1111_TEXT = (
    "portrait of a knight, (armor:1.3)\n"
    "Negative prompt: cartoon, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, Size: 832x1216, "
    "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Clip skip: 2, Version: v1.10.1"
)


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
    assert sorted(recipe_fields(info)) == ["loras", "negative_prompt", "prompt", "scheduler", "vae"]
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

def comfy_graph(sampler_name: str = "dpmpp_2m", scheduler: str = "karras", seed: object = 156680208700286) -> dict:
    """The default text-to-image graph, as ComfyUI's SaveImage writes it in the 'prompt' chunk."""
    return {
        "3": {"class_type": "KSampler", "_meta": {"title": "KSampler"},
              "inputs": {"seed": seed, "steps": 20, "cfg": 8.0, "sampler_name": sampler_name,
                         "scheduler": scheduler, "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
                         "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "beautiful scenery, glass bottle, purple galaxy", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }


def comfy_workflow(links: list[list]) -> dict:
    """The UI workflow (schema 0.4) ComfyUI saves beside it; sd-parsers reads its link list."""
    return {"last_node_id": 9, "last_link_id": len(links), "nodes": [], "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4}


COMFY_LINKS = [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 7, 0, "CLIP"],
               [4, 6, 0, 3, 1, "CONDITIONING"], [5, 4, 1, 6, 0, "CLIP"], [6, 7, 0, 3, 2, "CONDITIONING"],
               [7, 3, 0, 8, 0, "LATENT"], [8, 4, 2, 8, 1, "VAE"], [9, 8, 0, 9, 0, "IMAGE"]]


def comfy_png(path: Path, graph: dict, links: list[list] | None = COMFY_LINKS) -> Path:
    texts = {"prompt": json.dumps(graph)}
    if links is not None:
        texts["workflow"] = json.dumps(comfy_workflow(links))
    return pillow_png(path, texts)


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
