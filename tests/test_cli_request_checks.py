"""``studio generate``'s request checks that come before the engine starts: each option that could not be used is
said as bad input (exit 2, one sentence), not run past."""

from __future__ import annotations

from pathlib import Path


import pytest
from PIL import Image
from studio_testing import spandrel_installed
from test_cli import assert_refused_without_torch, noise_picture

from studio.cli_exit import EXIT_BAD_INPUT


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "studio-home"


@pytest.mark.parametrize(("device", "sentence"), [
    ("cuda", "No CUDA GPU is available to PyTorch here; give --device cpu or auto."),
    ("mps", "Apple's MPS (Metal) is not available to PyTorch here; give --device cpu or auto."),
])
def test_a_device_pytorch_does_not_have_is_refused_before_the_job(tiny_model_dir, studio_home, tmp_path,
                                                                  monkeypatch, capsys, device, sentence):
    # It ran on the CPU, silently, exit 0, where studio bench --device cuda refused.
    import torch

    import studio.cli_generate
    from studio.cli import main

    jobs: list[str] = []
    monkeypatch.setattr(studio.cli_generate, "run_job", lambda request, env, *args, **kwargs: jobs.append(env.device)
                        or 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    argv = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "o.png")]
    assert main([*argv, "--device", device]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"studio: {sentence}\n"
    assert jobs == []  # the model was never loaded
    assert main([*argv, "--device", "cpu"]) == 0
    monkeypatch.setattr(torch.cuda if device == "cuda" else torch.backends.mps, "is_available", lambda: True)
    assert main([*argv, "--device", device]) == 0  # where PyTorch has it, the job runs there
    assert jobs == ["cpu", device]


def test_an_inpainting_option_with_nothing_to_inpaint_is_refused_before_the_engine_starts(tiny_model_dir, home,
                                                                                           tmp_path):
    # Each was ignored: the job ran as image to image (or made a new picture) as if it had not been given.
    noise_picture(tmp_path / "picture.png")
    Image.new("L", (96, 72), 255).save(tmp_path / "white.png")
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    pic = ["--init-image", str(tmp_path / "picture.png")]
    needs = "needs --mask or --outpaint (with --init-image)"
    assert_refused_without_torch(home, base, {
        "padding": ([*pic, "--padding", "32"],
                    f"--padding {needs}: it is how much of the picture around the masked area the model sees."),
        "fill": ([*pic, "--fill", "noise"], f"--fill {needs}: it says what the masked area starts from."),
        "feather": ([*pic, "--feather", "3"],
                    f"--feather {needs}: it softens the mask's edge where the new pixels meet the kept ones."),
        "masked only": ([*pic, "--masked-only"],
                        f"--masked-only {needs}: it works on the masked area only, at the model's own size."),
        "whole picture, no picture": (["--whole-picture"], f"--whole-picture {needs}: it inpaints the masked area "
                                                           "with the whole picture as the model's canvas."),
        "padding of the whole picture": ([*pic, "--mask", str(tmp_path / "white.png"), "--whole-picture",
                                          "--padding", "16"],
                                         "--padding applies to the masked area only, not --whole-picture: with that "
                                         "the model sees the whole picture."),
    })


def test_inpainting_options_with_a_mask_or_an_outpaint_are_taken(tiny_model_dir, studio_home, tmp_path):
    from studio.cli import build_parser
    from studio.cli_request import build_request
    from studio.core.inpaint import InpaintOptions
    from studio.core.settings import load_settings

    noise_picture(tmp_path / "picture.png")
    Image.new("L", (96, 72), 255).save(tmp_path / "white.png")

    def options(*extra: str) -> InpaintOptions:
        args = build_parser().parse_args(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--init-image",
                                          str(tmp_path / "picture.png"), "-o", str(tmp_path / "o.png"), *extra])
        return build_request(args, load_settings()).inpaint

    mask = ["--mask", str(tmp_path / "white.png")]
    assert options(*mask) == InpaintOptions()
    assert options(*mask, "--padding", "4", "--fill", "noise", "--feather", "2") == \
        InpaintOptions(padding=4, fill="noise", feather=2.0)
    assert options("--outpaint", "0,0,16,0", "--whole-picture") == InpaintOptions(masked_only=False)


def test_lora_and_vae_files_that_cannot_be_used_are_refused_before_the_engine_starts(tiny_model_dir, home, tmp_path):
    # They were found only once the engine had loaded the model (exit 1, seconds later), where the same kind of
    # ControlNet problem, and the same damaged file given as --model, were bad input said at once.
    import json

    from model_files import write
    from tiny_loras import lora_state, save_lora, tiny_unet

    from studio.core.errors import ModelError
    from studio.core.weight_files import check_weights_file

    ink = save_lora(lora_state(tiny_unet(tiny_model_dir)), tmp_path / "ink.safetensors")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(ink.read_bytes()[:-100])
    with pytest.raises(ModelError) as damaged:
        check_weights_file(truncated)
    xl = write(tmp_path / "xl.safetensors", {
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 2048),
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (640, 4)})
    small = tmp_path / "small-vae"  # a VAE whose latents are 1/4 of the picture's size, not 1/8
    small.mkdir()
    (small / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4,
                                                   "block_out_channels": [8, 16, 16]}))
    write(small / "diffusion_pytorch_model.safetensors", {"encoder.conv_in.weight": (8, 3, 3, 3)})
    wide = write(tmp_path / "wide-vae.safetensors", {  # a single file with wider layers than the model's VAE
        **{f"encoder.down.{i}.block.0.conv1.weight": (16, 16, 3, 3) for i in range(4)},
        "encoder.conv_in.weight": (16, 3, 3, 3), "decoder.conv_in.weight": (16, 4, 3, 3)})
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    assert_refused_without_torch(home, base, {
        "damaged lora": (["--lora", str(truncated)], str(damaged.value)),
        "lora for sdxl": (["--lora", f"{xl}:0.5"], "The LoRA xl was made for SDXL models and does not fit tiny-sd, "
                                                   "which is a 32-wide text-embedding model; choose a LoRA made for "
                                                   "32-wide text-embedding models."),
        "a vae as lora": (["--lora", str(wide)], "wide-vae.safetensors is not a LoRA but a VAE file; pick it where "
                                                 "that kind is used."),
        "damaged vae": (["--vae", str(truncated)], str(damaged.value)),
        "a lora as vae": (["--vae", str(ink)], "ink.safetensors is not a VAE but a LoRA file; pick it where that "
                                               "kind is used."),
        "vae of other latents": (["--vae", str(small)], "The VAE small-vae does not fit tiny-sd: it makes 4-channel "
                                                        "latents at 1/4 size, and the model works with 4-channel "
                                                        "latents at 1/8 size."),
        "vae file of other widths": (["--vae", str(wide)], "The VAE wide-vae does not fit tiny-sd: its layers were "
                                                           "made for a different kind of model; choose a VAE made for "
                                                           "this one."),
    })


def test_a_vae_s_shape_is_read_from_its_config_or_its_layers_in_either_layout(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file
    from tiny_loras import build_tiny_vae_folder, ldm_vae_state
    from tiny_models import build_tiny_sdxl

    from studio.engine.vae_override import VaeShape, shape_problem, vae_shape

    folder = build_tiny_vae_folder(tmp_path / "vae-folder", tiny_model_dir)
    state = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    save_file(state, str(tmp_path / "diffusers-layout.safetensors"))
    save_file({k: v.contiguous() for k, v in ldm_vae_state(state).items()}, str(tmp_path / "ldm-layout.safetensors"))
    tiny = VaeShape(latent_channels=4, levels=4, width=8)
    assert vae_shape(tiny_model_dir) == vae_shape(folder) == tiny
    assert vae_shape(tmp_path / "diffusers-layout.safetensors") == tiny
    assert vae_shape(tmp_path / "ldm-layout.safetensors") == tiny
    assert shape_problem("mine", tiny, vae_shape(build_tiny_sdxl(tmp_path / "xl")), "xl", single_file=True) is None


def test_options_a_plugin_generator_does_not_use_are_refused(studio_home, tmp_path, monkeypatch, capsys):
    # --generator procedural --model tiny-sd --steps 5 ran without a word on either. A model with another generator
    # is two things that would make the picture: refused, as --init-image is; so are the sampling, LoRA, VAE, hires
    # and GPU options it does not take (its --help lists only the common options it uses).
    from types import SimpleNamespace

    import studio.cli_generate
    from studio.cli import main
    from studio.plugin_host.registry import GENERATOR, Contribution, builtin_registry

    registry = builtin_registry()
    registry.add(Contribution(GENERATOR, "quick-gen", "Quick generator", "studio_tp_quick:Generator"))
    monkeypatch.setattr(studio.cli_generate, "open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))
    jobs: list[tuple[int, float, str]] = []
    monkeypatch.setattr(studio.cli_generate, "run_job", lambda request, *args, **kwargs: jobs.append(
        (request.steps, request.cfg_scale, request.model)) or 0)
    generate = ["generate", "--generator", "quick-gen", "--prompt", "p", "-o", str(tmp_path / "o.png")]
    assert main([*generate, "--model", "tiny-sd", "--steps", "5"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == ("studio: The generator 'quick-gen' makes its pictures without a model; leave "
                                       "out --model (a model is for Studio's own generator, diffusers).\n")
    # Studio's own generator's options it does not use are refused too (they ran with exit 0, left out).
    assert main([*generate, "--steps", "30", "--cfg", "9", "--scheduler", "Euler", "--memory", "low"]) == \
        EXIT_BAD_INPUT
    assert capsys.readouterr().err == (
        "studio: The generator 'quick-gen' does not use --steps, --cfg, --scheduler, --memory; leave them out (they "
        "are for Studio's own generator, diffusers; `studio generate --generator quick-gen --help` lists the options "
        "it uses).\n")
    for option in (["--steps", "30"], ["--cfg", "9"], ["--scheduler", "Euler"], ["--speed", "eager"],
                   ["--lora", "detail"], ["--vae", "sharp"], ["--hires", "2"], ["--hires-steps", "5"]):
        assert main([*generate, *option]) == EXIT_BAD_INPUT
        assert capsys.readouterr().err == (
            f"studio: The generator 'quick-gen' does not use {option[0]}; leave it out (it is for Studio's own "
            "generator, diffusers; `studio generate --generator quick-gen --help` lists the options it uses).\n")
    assert main([*generate, "--seed", "3", "--size", "64x64", "--batch-count", "2", "--negative", "n"]) == 0
    assert capsys.readouterr().err == ""
    assert len(jobs) == 1


def test_the_command_line_says_in_its_own_words_what_the_window_says_in_its(tiny_model_dir, home, tmp_path):
    """Sentences written for the window ("paint the area", "pick one in the model list", "use masked area only", a
    form's field name) reached the command line, where there is a file, an option or a step to name instead."""
    noise_picture(tmp_path / "picture.png")
    Image.new("L", (96, 72), 0).save(tmp_path / "black.png")
    Image.new("RGBA", (96, 72), (255, 255, 255, 0)).save(tmp_path / "clear.png")
    Image.new("RGBA", (96, 72), (0, 0, 0, 255)).save(tmp_path / "opaque-black.png")
    Image.new("RGB", (4200, 64)).save(tmp_path / "wide.png")
    never = str(tmp_path / "never.png")
    pic = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", never, "--init-image",
           str(tmp_path / "picture.png")]
    post = ["postprocess", str(tmp_path / "picture.png"), "-o", never]
    nothing = "it marks nothing to"
    assert_refused_without_torch(home, [], {
        "all black": ([*pic, "--mask", str(tmp_path / "black.png")],
                      f"The mask black.png is all black: {nothing} regenerate (white does)."),
        "all transparent": ([*pic, "--mask", str(tmp_path / "clear.png")],
                            f"The mask clear.png is all transparent: {nothing} regenerate (opaque does)."),
        "opaque black": ([*pic, "--mask", str(tmp_path / "opaque-black.png")],
                         f"The mask opaque-black.png is all black: {nothing} regenerate (white does)."),
        "postprocess mask": ([*post, "--method", "color", "--style", str(tmp_path / "picture.png"), "--mask",
                              str(tmp_path / "black.png")],
                             f"The mask black.png is all black: {nothing} change (white does)."),
        "whole picture too large": ([*pic[:-1], str(tmp_path / "wide.png"), "--outpaint", "0,0,8,0",
                                     "--whole-picture"],
                                    "The picture would be 4208x64 after outpainting, too large to inpaint with "
                                    "--whole-picture (at most 4096 pixels a side); leave it out to work on the masked "
                                    "area only."),
        "style picture": ([*post, "--method", "color"],
                          "--method color needs its style picture: give --style FILE, a picture file."),
        "style picture in the chain": ([*pic[:7], "--post", "histogram"], "--post histogram needs its style "
                                       "picture: write --post histogram:style=FILE, a picture file."),
        "restyle model": ([*post, "--method", "restyle"],
                          "--method restyle needs a Stable Diffusion model to redraw the picture with: give --model "
                          "NAME, a model folder or file, or a name from studio models list."),
    })


def test_a_restyle_step_after_a_generator_without_a_model_is_told_how_to_give_one(studio_home, tmp_path, monkeypatch,
                                                                                  capsys):
    # "Diffusion restyle needs a model: pick one in the model list (or give --model)." came as a note once the
    # picture was made, and the step was left out; with Studio's generator the step takes the generation's model.
    from types import SimpleNamespace

    import studio.cli_generate
    from studio.cli import main
    from studio.plugin_host.registry import GENERATOR, Contribution, builtin_registry

    registry = builtin_registry()
    registry.add(Contribution(GENERATOR, "quick-gen", "Quick generator", "studio_tp_quick:Generator"))
    monkeypatch.setattr(studio.cli_generate, "open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))
    monkeypatch.setattr(studio.cli_generate, "run_job", lambda *args, **kwargs: 0)
    generate = ["generate", "--generator", "quick-gen", "--prompt", "p", "-o", str(tmp_path / "o.png")]
    assert main([*generate, "--post", "restyle"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == ("studio: --post restyle needs a Stable Diffusion model to redraw the picture "
                                       "with: write --post restyle:model=NAME, a model folder or file, or a name from "
                                       "studio models list.\n")
    assert main([*generate, "--post", "restyle:model=tiny-sd"]) == 0


def test_a_picture_the_outputs_folder_could_not_keep_is_said_in_the_command_line_s_words(tiny_model_dir, home,
                                                                                         tmp_path):
    # The note said "keep it with File → Save, or -o on the command line" where the -o file was written already.
    from studio_testing import run_studio

    (tmp_path / "a-file").write_text("not a folder")
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.toml").write_text(f'outputs_dir = "{tmp_path / "a-file" / "outputs"}"\n')
    output = tmp_path / "fox.png"
    result = run_studio(home, "generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--steps", "1",
                        "--size", "64x64", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert output.is_file()
    (note,) = [line for line in result.stderr.splitlines() if line.startswith("note: The image could not be saved")]
    assert note.endswith("Not a directory. The -o file is its only copy."), note


def test_a_post_step_without_its_weights_is_refused_before_the_picture_is_made(tiny_model_dir, studio_home, tmp_path,
                                                                                monkeypatch, capsys):
    # "Neural style transfer needs VGG-19 ImageNet weights…" came as a note once the picture was made, which was
    # kept without the step; as studio postprocess refuses it, it is bad input, said before the job.
    import studio.cli_generate
    from studio.cli import main
    from studio.core.environment import GeneratorEnvironment
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.core.style_weights import style_weights_dir
    from studio.engine.upscale import upscalers_dir

    jobs: list[object] = []
    monkeypatch.setattr(studio.cli_generate, "run_job", lambda request, *args, **kwargs: jobs.append(request) or 0)
    env = GeneratorEnvironment.from_settings(load_settings(), studio_paths())
    styles, upscalers = style_weights_dir(env), upscalers_dir(env)
    style, output = tmp_path / "style.png", tmp_path / "o.png"
    Image.new("RGB", (32, 32), "orange").save(style)
    generate = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--size", "64x64", "-o", str(output)]
    for post, said in (
            (f"neural:style={style}", f"Neural Style Transfer needs VGG-19 ImageNet weights: put vgg19.safetensors in "
                                      f"{styles}"),
            (f"adain:style={style}", "Fast Style Transfer (AdaIN) needs the AdaIN encoder and decoder weights: put "
                                     f"adain-vgg.safetensors and adain-decoder.safetensors in {styles}"),
            ("upscale", "Upscaling needs an upscaler model: put a Real-ESRGAN x4plus"),
            ("upscale:model=x4", f"No upscaler called 'x4' is in {upscalers}")):
        assert main([*generate, "--post", "color:style=" + str(style), "--post", post]) == EXIT_BAD_INPUT, post
        assert capsys.readouterr().err.startswith(f"studio: {said}"), post
    assert jobs == [] and not output.exists()

    upscalers.mkdir(parents=True)
    (upscalers / "x4.safetensors").write_bytes(b"weights")  # found as the filter finds it; the job loads it
    spandrel_installed(monkeypatch, True)  # and the library that loads it, where this machine has it or not
    assert main([*generate, "--post", "upscale:model=x4"]) == 0 and len(jobs) == 1


def test_a_post_step_s_unknown_name_is_said_with_every_name_it_takes(tiny_model_dir, home, tmp_path):
    # "Colour Transfer has no parameter 'bogus'; its parameters are: style." left out strength=S, which every
    # step takes (the README uses it).
    noise_picture(tmp_path / "style.png")
    generate = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    assert_refused_without_torch(home, generate, {
        "colour": (["--post", f"color:style={tmp_path / 'style.png'},bogus=1"],
                   "Colour Transfer has no parameter 'bogus'; its parameters are: strength, style."),
        "upscale": (["--post", "upscale:strenght=0.5"],
                    "Upscale has no parameter 'strenght'; its parameters are: model, outscale, strength, tile, "
                    "tile_overlap."),
    })


def test_strength_is_taken_by_every_post_step_beside_its_own_parameters(tiny_model_dir, studio_home, tmp_path):
    from studio.cli import build_parser
    from studio.cli_plugins import open_host
    from studio.cli_params import check_inputs_given, parse_post_step

    noise_picture(tmp_path / "style.png")
    registry = open_host(safe_mode=True).registry
    args = build_parser().parse_args(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o",
                                      str(tmp_path / "o.png"), "--post", f"color:style={tmp_path / 'style.png'},"
                                      "strength=0.5", "--post", "upscale:strength=0.25"])
    check_inputs_given(args, registry)
    assert [parse_post_step(text).strength for text in args.post] == [0.5, 0.25]


def test_every_option_a_plugin_generator_s_help_leaves_out_is_refused(studio_home, tmp_path, monkeypatch, capsys):
    """Its --help lists only the common options it uses (PLUGIN_GENERATOR_OPTIONS); each other option given is bad
    input, not a run that quietly did without it. A new option of `studio generate` must be placed here too."""
    import argparse
    from types import SimpleNamespace

    import studio.cli_generate
    from studio.cli import main
    from studio.cli_generate_parser import add_generate_parser
    from studio.cli_plugin_help import PLUGIN_GENERATOR_OPTIONS
    from studio.plugin_host.registry import GENERATOR, Contribution, builtin_registry

    noise_picture(tmp_path / "picture.png")
    picture = str(tmp_path / "picture.png")
    samples = {"--model": ["tiny-sd"], "--steps": ["30"], "--cfg": ["9"], "--scheduler": ["Euler"],
               "--init-image": [picture], "--strength": ["0.5"], "--mask": [picture], "--masked-only": [],
               "--whole-picture": [], "--padding": ["8"], "--fill": ["noise"], "--feather": ["2"],
               "--outpaint": ["8,0,0,0"], "--hires": ["2"], "--hires-steps": ["5"], "--hires-strength": ["0.4"],
               "--hires-upscaler": ["Lanczos"], "--control": ["canny-model", picture],
               "--control-preprocessor": ["canny"], "--control-weight": ["0.5"], "--control-range": ["0", "1"],
               "--canny": ["100", "200"], "--lora": ["detail"], "--vae": ["sharp"], "--speed": ["eager"],
               "--memory": ["low"]}
    guide = ["--control", "canny-model", picture]  # a guide's own options come after the guide they belong to
    commands = argparse.ArgumentParser().add_subparsers()
    left_out = {action.option_strings[0] for action in add_generate_parser(commands, [])._actions
                if not set(action.option_strings) & set(PLUGIN_GENERATOR_OPTIONS)}
    assert left_out == set(samples)
    registry = builtin_registry()
    registry.add(Contribution(GENERATOR, "quick-gen", "Quick generator", "studio_tp_quick:Generator"))
    monkeypatch.setattr(studio.cli_generate, "open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))
    monkeypatch.setattr(studio.cli_generate, "run_job", lambda *args, **kwargs: pytest.fail("it ran"))
    generate = ["generate", "--generator", "quick-gen", "--prompt", "p", "-o", str(tmp_path / "o.png")]
    for option, values in samples.items():
        of_guide = option in ("--control-preprocessor", "--control-weight", "--control-range", "--canny")
        assert main([*generate, *(guide if of_guide else []), option, *values]) == EXIT_BAD_INPUT, option
        said = capsys.readouterr().err
        assert said.startswith("studio: ") and ("--control" if of_guide else option) in said, (option, said)
