"""prepare_request: what is fixed with a note, what is refused with one sentence."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.events import JobProgress
from studio.core.hires import HiresFix
from studio.core.requests import (
    MAX_LORA_WEIGHT,
    MAX_LORAS,
    MAX_SEED,
    SCHEDULER_NAMES,
    GenerationRequest,
    LoraChoice,
    prepare_request,
)


@pytest.fixture
def base(tmp_path) -> GenerationRequest:
    model = tmp_path / "model"
    model.mkdir()
    return GenerationRequest(model=str(model), prompt="  a cat  ", negative_prompt=" dog\n", seed=5)


def refused(request: GenerationRequest, *, check_model_exists: bool = True, from_settings: tuple[str, ...] = ()
            ) -> str:
    with pytest.raises(InvalidRequest) as err:
        prepare_request(request, check_model_exists=check_model_exists, from_settings=from_settings)
    message = str(err.value)
    assert message.endswith(".") and "\n" not in message
    return message


def test_a_good_request_is_kept_with_prompts_trimmed(base):
    prepared = prepare_request(base)
    assert prepared.notes == ()
    assert prepared.request == replace(base, prompt="a cat", negative_prompt="dog")
    assert (prepared.request.width, prepared.request.height, prepared.request.seed) == (512, 512, 5)


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_a_prompt_with_bytes_that_are_not_text_is_refused(base, field):
    # What Python makes of a terminal's non-UTF-8 byte (caf\xe9 in Latin-1) in sys.argv: a surrogate escape.
    text = b"caf\xe9".decode("utf-8", "surrogateescape")
    name = field.replace("_", " ")
    assert refused(replace(base, **{field: text})) == (
        f"The {name} has bytes that are not text at character 4; check the terminal's encoding (Studio reads UTF-8).")


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_a_prompt_with_a_nul_character_is_refused(base, field):
    # It was taken, and written into the picture's A1111 "parameters" text, which other tools cut short at it.
    assert refused(replace(base, **{field: "a fox\0 in snow"})) == (
        f"The {field.replace('_', ' ')} contains a NUL character (at character 6); remove it: other tools would read "
        "the picture's settings only up to it.")


def test_a_refused_value_the_person_never_typed_is_said_to_come_from_the_settings(base):
    # studio generate checked these again itself, only to say where the value came from.
    from studio.core.hires import HiresFix

    nul = replace(base, negative_prompt="blurry\0ugly")
    assert refused(nul, from_settings=("negative_prompt",)) == (
        "The negative prompt from the settings' generation defaults contains a NUL character (at character 7); "
        "remove it there (Settings): other tools would read the picture's settings only up to it.")
    assert refused(nul, from_settings=("prompt", "width", "height")).startswith(
        "The negative prompt contains a NUL character (at character 7); remove it: ")
    large = replace(base, width=4096, height=512, hires=HiresFix(2.0))
    assert refused(large, from_settings=("width", "height")) == (
        "Hires fix at 2x would make a 8192x1024 picture (the size 4096x512 from the settings' generation defaults); "
        "Studio makes at most 4096 pixels a side, so lower the upscale or the size.")
    assert refused(large, from_settings=("negative_prompt",)) == (
        "Hires fix at 2x would make a 8192x1024 picture; Studio makes at most 4096 pixels a side, so lower the "
        "upscale or the size.")


@pytest.mark.parametrize(("width", "height", "expected"), [
    (100, 68, (104, 72)),  # halves round up, never to even
    (64, 70, (64, 72)),
    (513, 767, (512, 768)),
    (4095, 65, (4096, 64)),
])
def test_sizes_are_rounded_to_multiples_of_8_with_a_note(base, width, height, expected):
    prepared = prepare_request(replace(base, width=width, height=height))
    assert (prepared.request.width, prepared.request.height) == expected
    assert all(v % 8 == 0 for v in expected)
    notes = []
    if width != expected[0]:
        notes.append(f"The width {width} is not a multiple of 8; using {expected[0]}.")
    if height != expected[1]:
        notes.append(f"The height {height} is not a multiple of 8; using {expected[1]}.")
    assert prepared.notes == tuple(notes)


@pytest.mark.parametrize(("field", "value"), [("width", 63), ("width", 0), ("height", 4097), ("height", -8)])
def test_sizes_out_of_range_are_refused(base, field, value):
    message = refused(replace(base, **{field: value}))
    assert message == f"The {field} must be between 64 and 4096 pixels, not {value}."


@pytest.mark.parametrize("steps", [0, -1])
def test_steps_below_one_are_refused(base, steps):
    assert refused(replace(base, steps=steps)) == f"Steps must be at least 1, not {steps}."


def test_too_many_steps_and_non_integer_steps_are_refused(base):
    assert "at most 1000" in refused(replace(base, steps=1001))
    assert "at least 1" in refused(replace(base, steps=2.5))
    assert prepare_request(replace(base, steps=1)).request.steps == 1


def test_unknown_scheduler_is_refused_with_the_choices(base):
    message = refused(replace(base, scheduler="euler_b"))
    assert message.startswith("Unknown scheduler 'euler_b'; choose one of: ")
    assert all(name in message for name in SCHEDULER_NAMES)
    for name in SCHEDULER_NAMES:
        assert prepare_request(replace(base, scheduler=name)).request.scheduler == name
    # Another case, with underscores or hyphens for spaces: Studio's own name, as it records it.
    assert prepare_request(replace(base, scheduler="euler_a")).request.scheduler == "Euler a"
    assert prepare_request(replace(base, scheduler="dpm++-2m-KARRAS")).request.scheduler == "DPM++ 2M Karras"


@pytest.mark.parametrize("strength", [0.0, -0.1, 1.01, 2])
def test_img2img_strength_must_be_in_0_1(base, strength):
    init = Image.new("RGB", (64, 64))
    message = refused(replace(base, init_image=init, strength=strength))
    assert message == f"The img2img strength must be above 0 and at most 1, not {strength}."
    # Without an init image the strength does not matter.
    assert prepare_request(replace(base, strength=strength)).request.strength == strength


@pytest.mark.parametrize("strength", [0.05, 0.5, 1.0])
def test_img2img_strength_in_range_is_kept(base, strength):
    request = prepare_request(replace(base, init_image=Image.new("RGB", (8, 8)), strength=strength)).request
    assert request.strength == strength and request.is_img2img and request.steps == 20


def test_a_strength_too_low_for_the_steps_to_run_one_is_refused(base):
    assert refused(replace(base, init_image=Image.new("RGB", (8, 8)), strength=0.04)) == (
        "With 20 steps and a strength of 0.04 no denoising step would run; raise the steps or the strength.")


def test_a_value_out_of_range_is_said_before_the_steps_it_leaves(base):
    # A size or an upscale Studio cannot run was said as "would run no step", and only once the steps were raised
    # as what it was.
    assert refused(replace(base, steps=1, width=8, hires=HiresFix(2.0))) == (
        "The width must be between 64 and 4096 pixels, not 8.")
    assert refused(replace(base, steps=1, hires=HiresFix(1.0))) == (
        "The hires fix's upscale must be above 1 and at most 4, not 1.0.")
    assert refused(replace(base, steps=1, hires=HiresFix(2.0, upscaler=" "))) == (
        "The hires fix has no upscaler; pick Lanczos or an upscaler model.")
    assert refused(replace(base, init_image=Image.new("RGB", (8, 8)), strength=0.04, seed=-2)).startswith(
        "The seed must be between 0")


@pytest.mark.parametrize("seed", [-2, MAX_SEED + 1, -(2**40)])
def test_seed_out_of_range_is_refused(base, seed):
    assert refused(replace(base, seed=seed)).startswith(f"The seed must be between 0 and {MAX_SEED}")


@pytest.mark.parametrize("seed", [0, 1, MAX_SEED])
def test_seed_at_the_edges_is_kept(base, seed):
    assert prepare_request(replace(base, seed=seed)).request.seed == seed


def test_random_seed_is_resolved(base):
    seeds = {prepare_request(replace(base, seed=-1)).request.seed for _ in range(20)}
    assert all(0 <= s <= MAX_SEED for s in seeds)
    assert len(seeds) > 1  # actually random, not a fixed stand-in


@pytest.mark.parametrize(("cfg", "ok"), [(-0.5, False), (0, True), (50, True), (50.5, False)])
def test_cfg_scale_range(base, cfg, ok):
    if ok:
        assert prepare_request(replace(base, cfg_scale=cfg)).request.cfg_scale == cfg
    else:
        assert refused(replace(base, cfg_scale=cfg)).startswith("The CFG scale must be between 0 and 50")


@pytest.mark.parametrize("count", [0, 101])
def test_batch_count_range(base, count):
    assert refused(replace(base, batch_count=count)).startswith("The batch count must be between 1 and 100")


def test_model_must_be_given_and_exist(base, tmp_path):
    assert refused(replace(base, model="  ")) == "No model is selected; pick a model folder first."
    missing = tmp_path / "missing-model"
    assert refused(replace(base, model=str(missing))) == f"The model folder {missing} does not exist."
    # Checking existence can be skipped, and other generators name models their own way.
    assert prepare_request(replace(base, model=str(missing)), check_model_exists=False).request.model == str(missing)
    assert prepare_request(replace(base, model="builtin", generator="plugin")).request.model == "builtin"


def test_seed_for_gives_consecutive_seeds_and_wraps():
    request = GenerationRequest(model="m", prompt="p", seed=10)
    assert [request.seed_for(i) for i in range(3)] == [10, 11, 12]
    assert GenerationRequest(model="m", prompt="p", seed=MAX_SEED).seed_for(1) == 0


def test_progress_fraction_covers_the_whole_batch():
    assert JobProgress(1, step=5, total=10, image_index=0, image_count=2, elapsed=0).fraction == 0.25
    assert JobProgress(1, step=10, total=10, image_index=1, image_count=2, elapsed=0).fraction == 1.0


# --- inpainting -------------------------------------------------------------------------------------


def inpaint_request(base: GenerationRequest, size=(300, 200), mask_box=(50, 40, 120, 90), **options):
    from studio.core.inpaint import InpaintOptions

    picture = Image.new("RGB", size, (10, 20, 30))
    mask = Image.new("L", size, 0)
    if mask_box is not None:
        mask.paste(255, mask_box)
    return replace(base, init_image=picture, mask=mask, strength=0.6, inpaint=InpaintOptions(**options))


def test_inpainting_keeps_the_picture_size_without_rounding_notes(base):
    request = inpaint_request(base, size=(1001, 777))
    prepared = prepare_request(replace(request, width=512, height=512))
    assert prepared.notes == ()
    assert (prepared.request.width, prepared.request.height) == (1001, 777)
    assert prepared.request.init_image is request.init_image
    assert prepared.request.mask.mode == "L" and prepared.request.mask.tobytes() == request.mask.tobytes()
    assert prepared.request.is_inpaint and not prepared.request.is_img2img


def test_inpaint_is_not_img2img_and_img2img_is_not_inpaint(base):
    request = inpaint_request(base)
    assert request.is_inpaint and not request.is_img2img
    plain = replace(request, mask=None)
    assert plain.is_img2img and not plain.is_inpaint
    assert not base.is_img2img and not base.is_inpaint


def test_a_mask_needs_a_picture(base):
    request = replace(inpaint_request(base), init_image=None)
    assert refused(request) == "An inpainting mask needs a picture to paint into; open or generate one first."


def test_the_mask_must_match_the_picture(base):
    request = inpaint_request(base)
    request = replace(request, mask=request.mask.resize((150, 100)))
    assert refused(request) == "The mask is 150x100 but the picture is 300x200; they must be the same size."


@pytest.mark.parametrize("mode", ["L", "RGB", "1"])
def test_an_empty_mask_is_refused(base, mode):
    request = replace(inpaint_request(base, mask_box=None), mask=Image.new(mode, (300, 200), 0))
    assert refused(request) == "The mask is empty; paint the area to regenerate first."


def test_an_opaque_black_rgba_mask_counts_as_empty(base):
    request = replace(inpaint_request(base), mask=Image.new("RGBA", (300, 200), (0, 0, 0, 255)))
    assert refused(request) == "The mask is empty; paint the area to regenerate first."


def test_a_faint_mask_is_not_empty(base):
    request = replace(inpaint_request(base, mask_box=None), mask=Image.new("L", (300, 200), 1))
    assert prepare_request(request).request.is_inpaint


def test_a_greyscale_mask_is_taken_as_it_is_and_one_with_transparency_through_its_alpha(base):
    """The window's masks are greyscale: copying a 4096x4096 one into arrays and back held its thread 30-40 ms."""
    request = inpaint_request(base)
    assert prepare_request(request).request.mask is request.mask
    keyed = Image.new("L", (300, 200), 255)  # white everywhere, but grey level 255 is the transparent one
    keyed.paste(0, (10, 10, 50, 50))
    keyed.info["transparency"] = 255
    mask = prepare_request(replace(request, mask=keyed)).request.mask
    assert mask.getbbox() == (10, 10, 50, 50) and mask.getpixel((20, 20)) == 255 and mask.getpixel((100, 100)) == 0


def test_unknown_fill_is_refused_with_the_choices(base):
    message = refused(inpaint_request(base, fill="latent noise"))
    assert message == "Unknown masked-content fill 'latent noise'; choose one of: original, noise, blurred."
    for fill in ("original", "noise", "blurred"):
        assert prepare_request(inpaint_request(base, fill=fill)).request.inpaint.fill == fill


@pytest.mark.parametrize(("padding", "ok"), [(-1, False), (0, True), (1024, True), (1025, False)])
def test_padding_range(base, padding, ok):
    request = inpaint_request(base, padding=padding)
    if ok:
        assert prepare_request(request).request.inpaint.padding == padding
    else:
        assert refused(request) == f"The inpaint padding must be between 0 and 1024 pixels, not {padding}."


@pytest.mark.parametrize(("feather", "ok"), [(-0.5, False), (0, True), (256, True), (256.5, False)])
def test_feather_range(base, feather, ok):
    request = inpaint_request(base, feather=feather)
    if ok:
        assert prepare_request(request).request.inpaint.feather == feather
    else:
        assert refused(request) == f"The mask feather must be between 0 and 256 pixels, not {feather}."


def test_whole_picture_inpainting_is_limited_to_the_generation_size(base):
    request = inpaint_request(base, size=(4104, 64), mask_box=(0, 0, 10, 10), masked_only=False)
    assert refused(request) == "A 4104x64 picture is too large to inpaint as a whole; use masked area only."
    at_limit = inpaint_request(base, size=(4096, 64), mask_box=(0, 0, 10, 10), masked_only=False)
    assert prepare_request(at_limit).request.width == 4096
    # Masked area only works on a crop, so a bigger picture is fine.
    masked_only = inpaint_request(base, size=(4104, 64), mask_box=(0, 0, 10, 10), masked_only=True)
    assert prepare_request(masked_only).request.width == 4104


def test_masked_area_inpainting_has_its_own_limit(base):
    request = inpaint_request(base, size=(16392, 8), mask_box=(0, 0, 10, 8), masked_only=True)
    assert refused(request) == "A 16392x8 picture is too large to inpaint."


def test_a_tiny_picture_is_refused(base):
    request = inpaint_request(base, size=(4, 4), mask_box=(0, 0, 4, 4), masked_only=True)
    assert refused(request) == "A 4x4 picture is too small to inpaint: each side needs at least 8 px."
    one_pixel = inpaint_request(base, size=(1, 1), mask_box=(0, 0, 1, 1), masked_only=False)
    assert refused(one_pixel) == "A 1x1 picture is too small to inpaint: each side needs at least 8 px."


@pytest.mark.parametrize("masked_only", [True, False])
def test_a_thin_picture_is_refused_naming_its_short_side(base, masked_only):
    wide = inpaint_request(base, size=(4000, 3), mask_box=(0, 0, 10, 3), masked_only=masked_only)
    assert refused(wide) == "A 4000x3 picture is too thin to inpaint: its height is 3 px, under the 8 px it needs."
    tall = inpaint_request(base, size=(4, 40), mask_box=(0, 0, 4, 4), masked_only=masked_only)
    assert refused(tall) == "A 4x40 picture is too thin to inpaint: its width is 4 px, under the 8 px it needs."
    at_least = inpaint_request(base, size=(8, 40), mask_box=(0, 0, 4, 4), masked_only=masked_only)
    assert prepare_request(at_least).request.width == 8


def test_inpaint_strength_is_checked(base):
    assert refused(replace(inpaint_request(base), strength=0)).startswith("The denoising strength must be above 0")
    assert prepare_request(replace(inpaint_request(base), strength=1.0)).request.strength == 1.0


def test_an_rgba_mask_drawn_in_alpha_is_read_from_its_alpha(base):
    """Black strokes on transparent: the mask is the alpha (as mask files from paint programs are read)."""
    from PIL import Image

    request = inpaint_request(base)
    rgba = Image.new("RGBA", request.mask.size, (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (2, 2, 10, 10))
    prepared = prepare_request(replace(request, mask=rgba))
    assert prepared.request.mask.getpixel((5, 5)) == 255 and prepared.request.mask.getpixel((30, 30)) == 0


# -- LoRAs and the VAE ----------------------------------------------------------------------------

def test_loras_are_kept_with_names_trimmed_and_weights_as_floats(base):
    prepared = prepare_request(replace(base, loras=(LoraChoice(" detail ", 1), LoraChoice("styles/ink", -0.5)),
                                       vae=" vae-ft-mse "))
    assert prepared.request.loras == (LoraChoice("detail", 1.0), LoraChoice("styles/ink", -0.5))
    assert isinstance(prepared.request.loras[0].weight, float)
    assert prepared.request.vae == "vae-ft-mse"
    assert prepared.notes == ()


@pytest.mark.parametrize(("loras", "sentence"), [
    ((LoraChoice("detail", 4.5),), "The weight of the LoRA detail must be between -4 and 4, not 4.5."),
    ((LoraChoice("detail", float("nan")),), "The weight of the LoRA detail must be between -4 and 4, not nan."),
    ((LoraChoice("detail", "1"),), "The weight of the LoRA detail must be a number, not '1'."),
    ((LoraChoice("  ", 1.0),), "A LoRA has no name; pick one from the models folder's loras list or give its file."),
    ((LoraChoice("detail"), LoraChoice("Detail.safetensors", 0.5)),
     "The LoRA Detail.safetensors is chosen twice; keep it once, with one weight."),
    (tuple(LoraChoice(f"l{i}") for i in range(MAX_LORAS + 1)), f"At most {MAX_LORAS} LoRAs can be applied at once, "
                                                               f"not {MAX_LORAS + 1}."),
])
def test_bad_loras_are_refused_with_one_sentence(base, loras, sentence):
    assert refused(replace(base, loras=loras)) == sentence


def test_weights_at_the_limits_are_kept(base):
    loras = (LoraChoice("a", -MAX_LORA_WEIGHT), LoraChoice("b", MAX_LORA_WEIGHT), LoraChoice("c", 0))
    assert [c.weight for c in prepare_request(replace(base, loras=loras)).request.loras] == [-4.0, 4.0, 0.0]


def test_a_plugin_generator_gets_no_loras_and_says_so(base):
    prepared = prepare_request(replace(base, generator="procedural", loras=(LoraChoice("detail", 9),), vae="x"))
    assert (prepared.request.loras, prepared.request.vae) == ((), "")
    assert prepared.notes == ("LoRAs and the VAE choice apply to Studio's own generator only; they were left out.",)


def test_a_step_count_other_than_the_steps_is_explained_by_steps_times_strength():
    """diffusers runs int(steps x strength) steps of a picture it starts from: the progress says why "Step 7/375"
    when the Steps box says 500."""
    from studio.core.requests import steps_explained

    picture = Image.new("RGB", (64, 64))
    img2img = GenerationRequest(model="m", prompt="p", steps=500, strength=0.75, init_image=picture)
    assert steps_explained(img2img, 375) == "500 steps × strength 0.75"
    assert steps_explained(replace(img2img, strength=1.0), 500) == ""  # the Steps' own count
    assert steps_explained(img2img, 300) == ""  # not what the strength makes: nothing made up
    new = GenerationRequest(model="m", prompt="p", steps=20, strength=0.75)
    assert steps_explained(new, 20) == "" and steps_explained(new, 15) == ""  # no picture to start from
    hires = replace(new, hires=HiresFix(2.0, steps=30, strength=0.5))
    assert steps_explained(hires, 20) == ""  # the first pass
    assert steps_explained(hires, 15) == "30 steps × strength 0.5"  # the second
