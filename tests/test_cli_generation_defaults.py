"""``studio generate`` takes the steps, CFG scale and scheduler a person set (the settings' generation defaults, what
the window starts with) where the command line gives none, and its help says so."""

from __future__ import annotations

from test_cli import generate_help


def save_sampling(steps: int, cfg_scale: float, scheduler: str) -> None:
    from studio.core.settings import load_settings, save_settings

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
