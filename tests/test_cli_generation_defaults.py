"""``studio generate`` takes the steps, CFG scale, scheduler, negative prompt, size, strength, inpainting options and
hires fix settings a person set (the settings' generation defaults, what the window starts with) where the command
line gives none, and its help says so."""

from __future__ import annotations

from test_cli import generate_help


def save_sampling(steps: int, cfg_scale: float, scheduler: str) -> None:
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings

    settings = load_settings()
    generation = settings.generation
    generation.steps, generation.cfg_scale, generation.scheduler = steps, cfg_scale, scheduler
    save_settings(settings)


def test_the_settings_sampling_is_taken_where_no_option_is_given(tiny_model_dir, studio_home, tmp_path):
    # [generation] steps = 3, cfg_scale = 2.0, scheduler = "DDIM" changed nothing: the run used 20, 7 and Euler a.
    from studio.cli import build_parser
    from studio.cli_request import build_request
    from studio.core.requests import prepare_request
    from studio.core.settings import load_settings

    def sampling(*extra: str) -> tuple[int, float, str]:
        args = build_parser().parse_args(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o",
                                          str(tmp_path / "o.png"), *extra])
        request = prepare_request(build_request(args, load_settings())).request
        return request.steps, request.cfg_scale, request.scheduler

    assert sampling() == (20, 7.0, "Euler a")  # Studio's own defaults, where the settings keep theirs
    save_sampling(3, 2.0, "DDIM")
    assert sampling() == (3, 2.0, "DDIM")
    assert sampling("--steps", "5", "--cfg", "4.5", "--scheduler", "euler") == (5, 4.5, "Euler")
    assert sampling("--cfg", "0") == (3, 0.0, "DDIM")  # a value given as 0 is given


def test_the_help_gives_the_settings_sampling_as_the_defaults(studio_home, capsys):
    # --steps, --cfg and --scheduler showed no default at all.
    save_sampling(3, 2.5, "DPM++ 2M Karras")
    assert generate_help(capsys, "--steps STEPS", "--size SIZE").endswith(
        "denoising steps (default: from settings (3)) ")
    assert generate_help(capsys, "--cfg CFG", "--scheduler SCHEDULER").endswith(
        "CFG (guidance) scale (default: from settings (2.5)) ")
    assert generate_help(capsys, "--scheduler SCHEDULER", "--batch-count BATCH_COUNT").endswith(
        "in any case (euler_a is Euler a) (default: from settings (DPM++ 2M Karras)) ")


def save_generation(**values: object) -> None:
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings

    settings = load_settings()
    for name, value in values.items():
        setattr(settings.generation, name, value)
    save_settings(settings)


def request_for(*args: str):  # noqa: ANN201 - a GenerationRequest, as the job is given it
    from studio.cli import build_parser
    from studio.cli_request import build_request, settings_fields
    from studio.core.requests import prepare_request
    from studio.core.settings import load_settings

    parsed = build_parser().parse_args(["generate", "--prompt", "p", *args])
    return prepare_request(build_request(parsed, load_settings()), from_settings=settings_fields(parsed)).request


WINDOW_DEFAULTS = dict(negative_prompt="blurry, ugly", width=128, height=96, strength=0.4, inpaint_masked_only=False,
                       inpaint_padding=10, inpaint_fill="noise", inpaint_feather=3.0, hires_steps=4,
                       hires_strength=0.3, hires_upscaler="Latent")


def test_the_rest_of_the_window_s_defaults_are_taken_where_no_option_is_given(tiny_model_dir, studio_home,
                                                                               tmp_path):
    # Only the steps, CFG and scheduler were: a negative prompt, size, strength, inpainting and hires fix set in
    # the window were left out of `studio generate` (512x512, no negative prompt, strength 0.75, ...).
    from PIL import Image

    from studio.core.inpaint import InpaintOptions

    picture, mask = tmp_path / "in.png", tmp_path / "mask.png"
    Image.new("RGB", (64, 64), (90, 20, 20)).save(picture)
    Image.new("L", (64, 64), 255).save(mask)
    model_and_output = ("--model", str(tiny_model_dir), "-o", str(tmp_path / "o.png"))
    save_generation(**WINDOW_DEFAULTS)

    new = request_for(*model_and_output, "--hires", "2")
    assert (new.negative_prompt, new.width, new.height) == ("blurry, ugly", 128, 96)
    assert (new.hires.steps, new.hires.strength, new.hires.upscaler) == (4, 0.3, "Latent")
    inpainted = request_for(*model_and_output, "--init-image", str(picture), "--mask", str(mask))
    assert (inpainted.strength, inpainted.inpaint) == (0.4, InpaintOptions(False, 10, "noise", 3.0))

    given = request_for(*model_and_output, "--negative", "", "--size", "64x64", "--hires", "2", "--hires-steps", "2",
                        "--hires-strength", "0.5", "--hires-upscaler", "lanczos")
    assert (given.negative_prompt, given.width, given.height) == ("", 64, 64)  # an empty one given is given
    assert (given.hires.steps, given.hires.strength, given.hires.upscaler) == (2, 0.5, "Lanczos")
    given = request_for(*model_and_output, "--init-image", str(picture), "--mask", str(mask), "--strength", "0.9",
                        "--masked-only", "--padding", "0", "--fill", "original", "--feather", "0")
    assert (given.strength, given.inpaint) == (0.9, InpaintOptions(True, 0, "original", 0.0))


def test_the_help_gives_the_rest_of_the_window_s_defaults(studio_home, capsys):
    save_generation(**WINDOW_DEFAULTS)
    assert generate_help(capsys, "--negative NEGATIVE", "--seed SEED").endswith(
        "negative prompt (default: from settings ('blurry, ugly')) ")
    assert generate_help(capsys, "--size SIZE", "--cfg CFG").endswith(
        "(default: from settings (128x96); with --init-image, the picture's size) ")
    assert "may change, above 0 and at most 1 (default: from settings (0.4)) " in generate_help(
        capsys, "--strength STRENGTH", "--mask MASK")
    assert generate_help(capsys, "--masked-only", "--whole-picture").endswith(
        "(default: from settings (--whole-picture)) ")
    assert generate_help(capsys, "--padding PADDING", "--fill FILL").endswith("(default: from settings (10)) ")
    assert generate_help(capsys, "--fill FILL", "--feather FEATHER").endswith("(default: from settings (noise)) ")
    assert generate_help(capsys, "--feather FEATHER", "--outpaint").endswith("(default: from settings (3)) ")
    assert generate_help(capsys, "--hires-steps N", "--hires-strength S").endswith("(default: from settings (4)) ")
    assert generate_help(capsys, "--hires-strength S", "--hires-upscaler NAME").endswith(
        "(default: from settings (0.3)) ")
    assert "the models folder's upscalers/ (default: from settings (Latent)) " in generate_help(
        capsys, "--hires-upscaler NAME", "--control")
    assert "An option not given takes the settings' generation default, what the window starts with: the negative " \
        "prompt, size, steps, CFG, scheduler, strength, inpainting options and the hires fix's steps, strength and " \
        "upscaler." in generate_help(capsys, "usage:", "--seed SEED")


def test_the_help_gives_the_settings_device_speed_and_memory(studio_home, capsys):
    # --device said "(default: from settings)" without the value, where every other option shows it.
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings

    settings = load_settings()
    settings.device, settings.speed, settings.memory = "cpu", "eager", "low"
    save_settings(settings)
    assert generate_help(capsys, "--device DEVICE", "--speed {fast,eager,compile}").startswith(
        "--device DEVICE where to run: auto (a GPU where PyTorch has one, else the CPU), cuda, cuda:N (the GPU "
        "numbered N), mps or cpu (default: from settings (cpu));")
    speed = generate_help(capsys, "--speed {fast,eager,compile}", "--memory {auto,high,low}")
    assert speed.endswith("(default: from settings (eager)) ")
    # It said only what it means on CUDA; on the CPU it chooses the precision.
    assert "on the CPU: fast runs bfloat16 where the processor has bfloat16 units (AMX or AVX-512 BF16), eager " \
        "float32 as other tools do" in speed
    assert generate_help(capsys, "--memory {auto,high,low}", "--post ID[:NAME=VALUE,...]").endswith(
        "(default: from settings (low)) ")


def test_a_refusal_caused_by_a_settings_value_says_it_came_from_the_settings(tiny_model_dir, studio_home, tmp_path):
    # Only the steps/strength refusal did: a NUL in the settings' negative prompt, their size too large for --hires,
    # and their hires upscaler not installed were said as if the person had typed them.
    import pytest

    from studio.core.errors import InvalidRequest

    model_and_output = ("--model", str(tiny_model_dir), "-o", str(tmp_path / "o.png"))
    for values, extra, said in (
            ({"negative_prompt": "blurry\0ugly"}, (),
             "The negative prompt from the settings' generation defaults contains a NUL character (at character 7)"),
            ({"width": 4096, "height": 512}, ("--hires", "2"),
             "Hires fix at 2x would make a 8192x1024 picture (the size 4096x512 from the settings' generation "
             "defaults); "),
            ({"hires_upscaler": "NoSuch"}, ("--hires", "2"),
             "No upscaler called 'NoSuch' (the settings' hires upscaler) is installed; --hires-upscaler takes ")):
        save_generation(**{**dict(negative_prompt="", width=64, height=64, hires_upscaler="Latent"), **values})
        with pytest.raises(InvalidRequest) as refused:
            request_for(*model_and_output, *extra)
        assert said in str(refused.value)
    # Typed by the person, they are said as typed.
    with pytest.raises(InvalidRequest, match="No upscaler called 'NoSuch' is installed"):
        request_for(*model_and_output, "--hires", "2", "--hires-upscaler", "NoSuch")
    with pytest.raises(InvalidRequest, match=r"^The negative prompt contains a NUL character"):
        request_for(*model_and_output, "--negative", "a\0b")
