"""``studio generate``'s options: prompt and sampling, inpainting and outpainting, the hires fix, guides, LoRAs,
VAE, device and post chain, with the settings' defaults in its help and a plugin generator's own flags."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli_control import add_control_flags
from studio.cli_device import device_option
from studio.cli_outputs import add_output_flags
from studio.cli_plugin_flags import add_plugin_flags, ids_for_help
from studio.core.hires import LANCZOS
from studio.core.hires import MAX_SCALE as MAX_HIRES_SCALE
from studio.core.inpaint import INPAINT_FILLS, MAX_EXTEND
from studio.core.requests import MEMORY_MODES, SCHEDULER_NAMES, SPEED_MODES


def add_generate_parser(commands: argparse._SubParsersAction, argv: list[str]) -> argparse.ArgumentParser:
    """The ``generate`` command's parser; ``argv`` says whether help is asked for (and of which generator)."""
    gen = commands.add_parser("generate", help="make images from a prompt (txt2img, img2img, inpaint, outpaint)",
                              description="Make images from a prompt, headless, through Studio's engine. An option "
                                          "not given takes the settings' generation default, what the window starts "
                                          "with: the negative prompt, size, steps, CFG, scheduler, strength, "
                                          "inpainting options and the hires fix's steps, strength and upscaler.")
    gen.add_argument("--generator", default="diffusers", metavar="ID",
                     help="diffusers (the default), or the id of an enabled plugin's generator; its options are "
                          "listed by: studio generate --generator ID --help"
                          + ids_for_help(argv, "generate", "generator"))
    gen.add_argument("--model", help="a checkpoint (.safetensors) or diffusers folder, or a name from "
                                      "`studio models list`")
    gen.add_argument("--prompt", required=True)
    # None where not given: the settings' generation defaults, as the window starts with (studio.cli_request).
    sampling = sampling_defaults(argv)
    gen.add_argument("--negative", help=f"negative prompt (default: {sampling['negative_prompt']})")
    gen.add_argument("--seed", type=int, default=-1, help="seed (default: random)")
    gen.add_argument("--steps", type=int, help=f"denoising steps (default: {sampling['steps']})")
    gen.add_argument("--size", help=f"WIDTHxHEIGHT, e.g. 512x768 (default: {sampling['size']}; with --init-image, "
                                    "the picture's size)")
    gen.add_argument("--cfg", type=float, help=f"CFG (guidance) scale (default: {sampling['cfg_scale']})")
    gen.add_argument("--scheduler", help=f"one of: {', '.join(SCHEDULER_NAMES)}, in any case (euler_a is Euler a) "
                                         f"(default: {sampling['scheduler']})")
    gen.add_argument("--batch-count", type=int, default=1, help="how many images, with consecutive seeds")
    gen.add_argument("--init-image", type=Path, help="img2img: the picture to start from")
    gen.add_argument("--strength", type=float, default=None,
                     help="with --init-image (img2img, inpainting): how much of the picture may change, above 0 and "
                          f"at most 1 (default: {sampling['strength']})")
    inpaint = gen.add_argument_group(
        "inpainting and outpainting", "With --init-image: regenerate only part of the picture. The result has the "
        "picture's own size (the extended size when outpainting); pixels outside the feathered mask are kept.")
    inpaint.add_argument("--mask", type=Path, metavar="MASK",
                         help="image of the picture's size: white (or opaque, if it has alpha) = regenerate")
    area = inpaint.add_mutually_exclusive_group()
    # Defaults None: an option given without --mask or --outpaint is refused (studio.cli_request), not ignored.
    area.add_argument("--masked-only", dest="masked_only", action="store_true", default=None,
                      help="work on the mask's box plus padding at the model's native size (default: "
                           f"{sampling['area']})")
    area.add_argument("--whole-picture", dest="masked_only", action="store_false",
                      help="work on the whole picture at its own size")
    inpaint.add_argument("--padding", type=int,
                         help=f"masked-only: pixels of context around the mask (default: {sampling['padding']})")
    inpaint.add_argument("--fill", metavar="FILL",
                         help=f"what the masked area starts from: {' | '.join(INPAINT_FILLS)} "
                              f"(default: {sampling['fill']})")
    inpaint.add_argument("--feather", type=float,
                         help=f"blur radius of the mask edge when blending back (default: {sampling['feather']})")
    inpaint.add_argument("--outpaint", metavar="LEFT,TOP,RIGHT,BOTTOM",
                         help="extend the picture by these many pixels on each side (at most "
                              f"{MAX_EXTEND} a side) and fill the new area")
    hires = gen.add_argument_group("hires fix", "make the picture at --size, enlarge it, and redraw it larger")
    hires.add_argument("--hires", type=float, metavar="SCALE",
                       help=f"enlarge by SCALE (above 1, at most {MAX_HIRES_SCALE:g}); 2 makes 512x512 1024x1024")
    hires.add_argument("--hires-steps", type=int, metavar="N",
                       help=f"steps of the second pass, 0 for as many as --steps (default: {sampling['hires_steps']})")
    hires.add_argument("--hires-strength", type=float, metavar="S",
                       help=f"how much the second pass may redraw (default: {sampling['hires_strength']})")
    hires.add_argument("--hires-upscaler", metavar="NAME",
                       help=f"{LANCZOS}, Latent (A1111's latent upscalers, also \"Latent (bicubic)\" and the rest), or "
                            "an upscaler model in the models folder's upscalers/ "
                            f"(default: {sampling['hires_upscaler']})")
    add_control_flags(gen)
    gen.add_argument("--lora", action="append", default=[], metavar="NAME[:WEIGHT]",
                     help="apply this LoRA (a name in the models folder's loras/, or a .safetensors file) at WEIGHT "
                          "(default 1, from -4 to 4); repeat for several")
    gen.add_argument("--vae", default="", metavar="NAME",
                     help="use this VAE instead of the model's own: a name in the models folder's vae/, "
                          "or a diffusers VAE folder or .safetensors file")
    gen.add_argument("--device", default=None, type=device_option, metavar="DEVICE",
                     help="where to run: auto (a GPU where PyTorch has one, else the CPU), cuda, cuda:N (the GPU "
                          f"numbered N), mps or cpu (default: {sampling['device']}); a GPU PyTorch does not have here "
                          "is refused")
    gen.add_argument("--speed", default=None, choices=list(SPEED_MODES),
                     help="on CUDA: fast (CUDA graphs), eager (plain diffusers), compile (fast + torch.compile: "
                          "minutes of warm-up per size); on the CPU: fast runs bfloat16 where the processor has "
                          "bfloat16 units (AMX or AVX-512 BF16), eager float32 as other tools do, for pictures that "
                          f"match theirs (default: {sampling['speed']})")
    gen.add_argument("--memory", default=None, choices=list(MEMORY_MODES),
                     help="GPU memory: auto fits each job to the free VRAM, high keeps all on the GPU, low uses CPU "
                          f"offload and VAE tiling (default: {sampling['memory']})")
    gen.add_argument("--post", action="append", default=[], metavar="ID[:NAME=VALUE,...]",
                     help="apply this post-processor to every image (repeat for a chain, in order); NAME=VALUE "
                          "gives one of its options (studio postprocess --method ID --help lists them; NAME is an "
                          "option without its leading --) or strength=S, its blend with the picture before it (0 to 1)"
                          + ids_for_help(argv, "generate", "postprocessor"))
    add_output_flags(gen, batch=True)
    generator = add_plugin_flags(argv, "generate", "--generator", "generator", gen)
    if generator is not None and {"-h", "--help"} & set(argv):  # the help of the plugin's generator: what it uses
        from studio.cli_params import PREFIX
        from studio.cli_plugin_help import narrow_help_to_plugin_generator

        narrow_help_to_plugin_generator(gen, generator, {PREFIX + param.name for param in generator.parameters})
    return gen


SETTINGS_DEFAULTS = ("negative_prompt", "size", "steps", "cfg_scale", "scheduler", "strength", "area", "padding",
                     "fill", "feather", "hires_steps", "hires_strength", "hires_upscaler", "device", "speed", "memory")


def sampling_defaults(argv: list[str]) -> dict[str, str]:
    """How ``generate --help`` gives the defaults taken from the settings' generation defaults: "from settings (20)",
    the values read from the settings when help is asked for, else "from settings" (not read at every start)."""
    if "generate" not in argv or not {"-h", "--help"} & set(argv):
        return dict.fromkeys(SETTINGS_DEFAULTS, "from settings")
    from studio.core.settings import load_settings

    settings = load_settings()  # checked as it is read: numbers in range, a scheduler Studio has
    defaults = settings.generation
    shown = {"negative_prompt": repr(defaults.negative_prompt) if defaults.negative_prompt else "none",
             "size": f"{defaults.width}x{defaults.height}", "steps": str(defaults.steps),
             "cfg_scale": f"{defaults.cfg_scale:g}", "scheduler": defaults.scheduler,
             "strength": f"{defaults.strength:g}",
             "area": "--masked-only" if defaults.inpaint_masked_only else "--whole-picture",
             "padding": str(defaults.inpaint_padding), "fill": defaults.inpaint_fill,
             "feather": f"{defaults.inpaint_feather:g}", "hires_steps": str(defaults.hires_steps),
             "hires_strength": f"{defaults.hires_strength:g}", "hires_upscaler": defaults.hires_upscaler,
             "device": settings.device, "speed": settings.speed, "memory": settings.memory}
    # argparse formats help with %: a negative prompt may hold one
    return {name: f"from settings ({shown[name]})".replace("%", "%%") for name in SETTINGS_DEFAULTS}
