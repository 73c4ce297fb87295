"""``studio generate --generator ID --help`` for a plugin's generator lists its own options and the common options it
uses, not Studio's own generator's (which it ignores); the plugin is read from a registry put in place in-process."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from studio_testing import studio_here

import studio.cli_generate as cli_generate
import studio.cli_plugins as cli_plugins
from studio.core.parameters import ChoiceParam, IntParam, TextParam
from studio.plugin_host.host import DISABLED, ENABLED
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution, builtin_registry

NOISE = Contribution(GENERATOR, "noise", "Noise Patterns", "studio_tp_noise:Generator", plugin_id="noise-plugin",
                     plugin_name="Noise Plugin", parameters=(
                         IntParam("octaves", help="Layers of detail", default=3, min=1, max=8),
                         ChoiceParam("palette", help="Colours", choices=("warm", "cold")),
                         TextParam("label", help="Label", default="hi")))
PATTERNS = Contribution(GENERATOR, "patterns", "Patterns", "studio_tp_patterns:Generator", plugin_id="patterns",
                        plugin_name="Patterns", parameters=(ChoiceParam("pattern", choices=("clouds", "waves")),))
DIFFUSERS_ONLY = ("--model", "--steps", "--cfg", "--scheduler", "--init-image", "--strength", "--mask", "--outpaint",
                  "--hires", "--control", "--lora", "--vae", "--speed", "--memory", "inpainting and outpainting",
                  "hires fix")


FILM = Contribution(POSTPROCESSOR, "film-look", "Film look", "studio_tp_film:Film", plugin_id="studio-film",
                    plugin_name="Film look")
PROCEDURAL = Contribution(GENERATOR, "procedural", "Procedural", "studio_tp_procedural:Generator",
                          plugin_id="studio-procedural", plugin_name="Procedural")


@pytest.fixture
def noise_plugin(studio_home, monkeypatch: pytest.MonkeyPatch) -> None:
    """Noise Plugin installed and enabled; the film and procedural plugins installed and switched off."""
    registry = builtin_registry()
    registry.add(NOISE)
    registry.add(PATTERNS)
    installed = {(c.kind, c.id): (c.plugin_id, c.owner) for c in (NOISE, FILM, PROCEDURAL)}
    records = [SimpleNamespace(id="noise-plugin", status=ENABLED), SimpleNamespace(id="studio-film", status=DISABLED),
               SimpleNamespace(id="studio-procedural", status=DISABLED)]
    host = SimpleNamespace(registry=registry, records=records, taken_contributions=lambda: installed)
    for module in (cli_plugins, cli_generate):  # the run's checks read it by name from cli_generate
        monkeypatch.setattr(module, "open_host", lambda safe_mode=False: host)


def help_lines(capsys, *args: str) -> list[str]:  # noqa: ANN001 - pytest's capsys
    done = studio_here(capsys, "generate", *args, "--help")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_plugin_generator_s_help_lists_its_options_and_the_common_ones_it_uses(noise_plugin, capsys):
    # It listed every option of Studio's own generator (--model, --steps, the hires fix, ...), which it ignores.
    lines = help_lines(capsys, "--generator", "noise")
    text = " ".join(" ".join(lines).split())
    listed = text.partition(" options: -h, --help")[2]  # past the description, which names them as left out
    assert listed and not [option for option in DIFFUSERS_ONLY if f"{option} " in listed], listed
    assert "Noise Patterns options:" in lines
    assert "--octaves OCTAVES Layers of detail (1 to 8, default 3)" in text
    for option in ("--prompt PROMPT", "--negative NEGATIVE", "--seed SEED", "--size SIZE", "--batch-count",
                   "--post", "-o OUTPUT, --output OUTPUT", "--overwrite", "--generator ID"):
        assert option in text
    assert ("Make images with Noise Patterns (noise, from Noise Plugin). It uses the common options --prompt, "
            "--negative, --seed, --size, --batch-count, --device, --post, --output, --overwrite; its own options are "
            "under \"Noise Patterns options\". Studio's own generator's options (--model, --steps") in text


def test_a_plugin_named_as_its_generator_is_named_once_and_a_text_default_is_shown(noise_plugin, capsys):
    # "Make images with Patterns (patterns, from Patterns)"; "--label LABEL  Label" without its default "hi".
    assert "Make images with Patterns (patterns). It uses" in " ".join(help_lines(capsys, "--generator", "patterns"))
    noise = " ".join(" ".join(help_lines(capsys, "--generator", "noise")).split())
    assert "--label LABEL Label (default: 'hi')" in noise


def test_a_bad_option_of_a_plugin_generator_prints_its_own_usage(noise_plugin, capsys):
    # It printed the usage of Studio's own generator, every diffusers option in it.
    done = studio_here(capsys, "generate", "--generator", "patterns", "--prompt", "x", "--pattern", "zebra",
                       "-o", "x.png")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: studio generate --generator patterns --prompt PROMPT -o OUTPUT [OPTIONS]\n"
                                  "studio generate: error: argument --pattern: invalid choice: 'zebra'"), done.stderr


def test_studio_s_own_generator_s_help_keeps_every_option(noise_plugin, capsys):
    text = " ".join(" ".join(help_lines(capsys, "--generator", "diffusers")).split())
    assert all(option in text for option in DIFFUSERS_ONLY)
    assert "--octaves" not in text


def test_the_options_left_out_of_the_help_are_still_parsed(noise_plugin):
    # Only the help narrows: a run that gives --steps is told it does not apply, not refused as unknown.
    from studio.cli import build_parser

    argv = ["generate", "--generator", "noise", "--prompt", "p", "--steps", "5", "--octaves", "4", "-o", "x.png"]
    args = build_parser(argv).parse_args(argv)
    assert (args.steps, args.param__octaves) == (5, "4")


def test_an_unknown_generator_s_help_is_refused_as_its_run_is(noise_plugin, capsys):
    # It printed Studio's own help, exit 0, without a word about the id.
    done = studio_here(capsys, "generate", "--generator", "nope", "--help")
    run = studio_here(capsys, "generate", "--generator", "nope", "--prompt", "x", "-o", "x.png")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == run.stderr == ("studio: No generator called 'nope' is installed and enabled; --generator "
                                         "takes one of: diffusers for Stable Diffusion (diffusers), noise for Noise "
                                         "Patterns, patterns for Patterns.\n")


def test_the_help_of_a_switched_off_plugin_s_contribution_says_how_to_switch_it_on(noise_plugin, capsys):
    done = studio_here(capsys, "postprocess", "x.png", "-o", "y.png", "--method", "film-look", "--help")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("studio: film-look is from the plugin studio-film, which is switched off; "
                           "`studio plugins enable studio-film` turns it on.\n")




def test_a_run_of_a_switched_off_plugin_s_contribution_says_what_its_help_says(noise_plugin, capsys, tmp_path):
    # The run said "No generator called 'procedural' is installed and enabled; ..." while the help said how to switch
    # its plugin on.
    picture, out = str(tmp_path / "x.png"), str(tmp_path / "y.png")
    runs = {"procedural": [("generate", "--generator", "procedural", "--prompt", "p", "-o", out)],
            "film-look": [("postprocess", picture, "-o", out, "--method", "film-look"),
                          ("generate", "--generator", "noise", "--prompt", "p", "--post", "film-look", "-o", out)]}
    for chosen, commands in runs.items():
        plugin = PROCEDURAL.plugin_id if chosen == "procedural" else FILM.plugin_id
        said = (f"studio: {chosen} is from the plugin {plugin}, which is switched off; "
                f"`studio plugins enable {plugin}` turns it on.\n")
        for command in commands:
            help_asked = studio_here(capsys, *command, "--help") if "--post" not in command else None
            done = studio_here(capsys, *command)
            assert (done.returncode, done.stdout, done.stderr) == (2, "", said), command
            assert help_asked is None or help_asked.stderr == said


def test_a_rerun_of_a_switched_off_plugin_s_entry_says_so_before_the_output_and_the_engine(noise_plugin, capsys,
                                                                                            tmp_path):
    # With -o taken it said "already exists"; with a new -o it started the engine, which said "No generator called
    # 'procedural' is installed and enabled." (or "No postprocessor called 'film-look' …").
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryEntry, HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    made_by = store.add(HistoryEntry(prompt="a fox", generator="procedural", seed=9, width=64, height=48))
    chained = store.add(HistoryEntry(prompt="a fox", generator="noise", seed=9, width=64, height=48,
                                     params={"post": [{"processor": "film-look", "params": {}, "strength": 1.0}]}))
    store.close()
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"kept")
    for entry_id, chosen, plugin in ((made_by, "procedural", PROCEDURAL.plugin_id), (chained, "film-look",
                                                                                      FILM.plugin_id)):
        for output in (taken, tmp_path / "new.png"):
            done = studio_here(capsys, "history", "rerun", str(entry_id), "-o", str(output))
            assert (done.returncode, done.stderr) == (2, f"studio: {chosen} is from the plugin {plugin}, which is "
                                                         f"switched off; `studio plugins enable {plugin}` turns it "
                                                         "on.\n")
    assert taken.read_bytes() == b"kept" and not (tmp_path / "new.png").exists()
