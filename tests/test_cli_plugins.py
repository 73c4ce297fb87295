"""``studio plugins …``, ``studio generate --generator``, ``studio postprocess`` and ``--safe-mode``: a wheel built
in the test is installed by Studio's installer, enabled, used, disabled and removed. Most commands run in this
process (the ``studio`` fixture); where how the process starts or ends matters (no terminal to ask on, a thread left
running, a folder removed at exit, Ctrl+C, a terminal's question) they run as a person runs them (run_studio)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plugin_wheels import build_wheel, plugin_wheel
from studio_testing import at_a_terminal, run_studio, sigint_as_at_a_terminal, studio_here, unpack_plugin

from studio.cli_exit import EXIT_CANCELLED
from studio.core.images import read_recipe

GENERATOR = '''
from PIL import Image


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):
        for i in range(request.batch_count):
            context.report_progress(1, 1, i)
            yield Image.new("RGB", (request.width, request.height), (request.params["level"], i, 0))


class Darken:
    def __init__(self, env):
        pass

    def process(self, image, params, context):
        return image.point(lambda v: int(v * params["factor"]))
'''

MANIFEST_EXTRA = '''
[[generators.parameters]]
name = "level"
type = "int"
default = 100
min = 0
max = 255
help = "How red"

[[postprocessors]]
id = "darken"
title = "Darken"
target = "studio_tp_cli.generator:Darken"

[[postprocessors.parameters]]
name = "factor"
type = "float"
default = 0.5
min = 0
max = 1
'''


Studio = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def studio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           plugin_sandbox: Path) -> Studio:
    """``studio(home, ARGS)``: ``studio ARGS`` in this process (studio_here) for the home ``tmp_path / "home"``, the
    one the test's commands use; the plugins it imports are forgotten after the test (plugin_sandbox)."""
    expected = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(expected))
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # no terminal to ask on, as run_studio's stdin

    def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        assert home == expected, home
        return studio_here(capsys, *args)

    return run


def plugins_listed(studio: Studio, home: Path) -> list[dict]:
    """The plugins ``studio plugins list --json`` lists: every row after Studio's own, which comes first."""
    own, *plugins = json.loads(studio(home, "plugins", "list", "--json").stdout)
    assert (own["id"], own["installed_by"]) == ("studio", "built in")
    return plugins


@pytest.fixture
def wheel(tmp_path) -> Path:
    return plugin_wheel(tmp_path / "wheels", plugin_id="cli-plugin", package="studio_tp_cli",
                        generator_id="cli-gen", generator_code=GENERATOR, manifest_extra=MANIFEST_EXTRA)


def test_install_enable_generate_postprocess_disable_uninstall(tmp_path, wheel, studio):
    home = tmp_path / "home"
    empty = run_studio(home, "plugins", "list")  # as a person runs it
    assert empty.returncode == 0 and "No plugins are installed" in empty.stdout

    # Without a terminal to ask on, installing needs --yes; nothing is installed.
    asked = run_studio(home, "plugins", "install", str(wheel))
    assert (asked.returncode, asked.stderr) == (2, "studio: there is no terminal to ask on, so nothing was "
                                                   f"installed; pass -y (--yes) to install {wheel}.\n")
    assert "Test Plugin" in asked.stdout  # the plan was shown first
    assert not (home / "data" / "plugins" / "cli-plugin").exists()

    installed = studio(home, "plugins", "install", str(wheel), "--yes")
    assert installed.returncode == 0, installed.stderr
    assert "It is disabled until you run: studio plugins enable cli-plugin" in installed.stdout
    listed = plugins_listed(studio, home)
    assert [(p["id"], p["status"], p["generators"], p["postprocessors"], p["installed_by"]) for p in listed] == \
        [("cli-plugin", "disabled", ["cli-gen"], ["darken"], "studio")]

    refused = studio(home, "generate", "--generator", "cli-gen", "--prompt", "x", "-o", str(tmp_path / "x.png"))
    assert refused.returncode == 2
    assert ("cli-gen is from the plugin cli-plugin, which is switched off; `studio plugins enable cli-plugin` turns "
            "it on.") in refused.stderr

    assert studio(home, "plugins", "enable", "cli-plugin").stdout.strip() == "Test Plugin 1.0.0: enabled."
    helped = studio(home, "generate", "--generator", "cli-gen", "--help")
    assert "--level LEVEL" in helped.stdout and "How red (0 to 255, default 100)" in helped.stdout

    out = tmp_path / "red.png"
    made = studio(home, "generate", "--generator", "cli-gen", "--prompt", "a red square", "--level", "40",
                  "--size", "64x64", "--seed", "5", "--post", "darken:factor=0.5", "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert Image.open(out).getpixel((0, 0)) == (20, 0, 0)
    recipe = read_recipe(out)
    assert (recipe.generator, recipe.generator_version, recipe.params, recipe.seed) == \
        ("cli-gen", "1.0.0", {"level": 40}, 5)
    assert recipe.post[0]["processor"] == "darken"
    history = studio(home, "history", "search", "red square", "--json")
    entry = json.loads(history.stdout)[0]
    assert entry["generator"] == "cli-gen"
    shown = studio(home, "history", "show", str(entry["id"])).stdout
    assert "Generator:   cli-plugin/cli-gen 1.0.0" in shown and "Generator settings: level: 40" in shown
    assert "Post-processing: darken (factor 0.5)" in shown
    again = tmp_path / "again.png"
    rerun = studio(home, "history", "rerun", str(entry["id"]), "-o", str(again))
    assert rerun.returncode == 0, rerun.stderr
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(out)))  # the same picture

    bad = studio(home, "generate", "--generator", "cli-gen", "--prompt", "x", "--level", "999",
                 "-o", str(tmp_path / "bad.png"))
    assert bad.returncode == 2 and "Test generator: Level must be between 0 and 255, not 999." in bad.stderr

    source = tmp_path / "grey.png"
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(source)
    darker = tmp_path / "darker.png"
    post = studio(home, "postprocess", str(source), "-o", str(darker), "--method", "darken", "--factor", "0.25")
    assert post.returncode == 0, post.stderr
    assert Image.open(darker).getpixel((0, 0)) == (50, 50, 50)

    safe = studio(home, "--safe-mode", "generate", "--generator", "cli-gen", "--prompt", "x", "-o", str(out))
    assert safe.returncode == 2 and ("No generator called 'cli-gen' is installed and enabled; --generator takes one "
                                     "of: diffusers for Stable Diffusion (diffusers). Studio was started in safe mode, "
                                     "which loads no plugin.") in safe.stderr
    listed = studio(home, "--safe-mode", "plugins", "list").stdout
    assert "cli-plugin  Test Plugin 1.0.0  [not loaded (safe mode)]" in listed and "no plugin is loaded" in listed

    assert studio(home, "plugins", "disable", "cli-plugin").stdout.strip() == "Test Plugin 1.0.0: disabled."
    kept = studio(home, "plugins", "uninstall", "cli-plugin")  # no terminal to ask on
    assert (kept.returncode, kept.stderr) == (2, "studio: there is no terminal to ask on, so nothing was uninstalled; "
                                                 "pass -y (--yes) to uninstall cli-plugin.\n")
    assert (home / "data" / "plugins" / "cli-plugin").is_dir()
    removed = studio(home, "plugins", "uninstall", "cli-plugin", "-y")
    assert removed.returncode == 0 and "Removed Test Plugin 1.0.0." in removed.stdout
    assert not (home / "data" / "plugins" / "cli-plugin").exists()
    assert plugins_listed(studio, home) == []


def test_bad_sources_and_ids_are_one_sentence(tmp_path, studio):
    home = tmp_path / "home"
    missing = studio(home, "plugins", "install", str(tmp_path / "nope.whl"), "--yes")
    assert missing.returncode == 2 and missing.stderr.startswith("studio: ")
    assert len(missing.stderr.strip().splitlines()) == 1
    for action in ("enable", "disable", "uninstall"):
        result = studio(home, "plugins", action, "../evil")
        assert result.returncode == 2 and "is not a plain name" in result.stderr
    ghost = studio(home, "plugins", "enable", "ghost")
    assert ghost.stderr.strip() == "studio: No plugin called 'ghost' is installed."


def test_a_plugins_folder_that_cannot_be_written_is_one_sentence_not_a_traceback(tmp_path, wheel, studio):
    # Studio's data folder is a regular file: no folder can be made in it, for root too.
    home = tmp_path / "home"
    home.mkdir()
    (home / "data").write_text("x")
    denied = studio(home, "plugins", "install", str(wheel), "--yes")
    assert (denied.returncode, denied.stdout) == (2, "")
    assert denied.stderr == (f"studio: Could not install {wheel.name}: {home / 'data' / 'plugins'} could not be "
                             "written to (Not a directory).\n")


def test_uninstalling_where_the_plugins_folder_cannot_be_written_is_one_sentence(tmp_path, wheel, studio):
    home = tmp_path / "home"
    assert studio(home, "plugins", "install", str(wheel), "--yes").returncode == 0
    plugins = home / "data" / "plugins"
    shutil.rmtree(plugins / ".trash", ignore_errors=True)
    (plugins / ".trash").write_text("x")  # where removed plugins go cannot be made
    removed = studio(home, "plugins", "uninstall", "cli-plugin", "--yes")
    assert removed.returncode == 2
    assert removed.stderr == (f"studio: Could not remove cli-plugin: {plugins} could not be written to "
                              "(File exists).\n")
    assert not (plugins / "state.json").exists()  # it was off: removing it writes no state
    assert [p["id"] for p in plugins_listed(studio, home)] == ["cli-plugin"]


def test_an_enabled_plugin_that_cannot_be_removed_stays_enabled(tmp_path, wheel, studio):
    home = tmp_path / "home"
    assert studio(home, "plugins", "install", str(wheel), "--yes").returncode == 0
    assert studio(home, "plugins", "enable", "cli-plugin").returncode == 0
    plugins = home / "data" / "plugins"
    shutil.rmtree(plugins / ".trash", ignore_errors=True)
    (plugins / ".trash").write_text("x")  # where removed plugins go cannot be made
    removed = studio(home, "plugins", "uninstall", "cli-plugin", "--yes")
    assert removed.returncode == 2
    assert removed.stderr.startswith("studio: Could not remove cli-plugin:")
    assert json.loads((plugins / "state.json").read_text()) == {"enabled": ["cli-plugin"]}  # as before


def test_disabling_a_plugin_with_a_broken_manifest_says_it_was_disabled(tmp_path, wheel, studio):
    # It said "cli-plugin 1.0.0: failed — The plugin manifest … is not valid TOML: …" although it was switched off.
    home = tmp_path / "home"
    assert studio(home, "plugins", "install", str(wheel), "--yes").returncode == 0
    assert studio(home, "plugins", "enable", "cli-plugin").returncode == 0
    plugins = home / "data" / "plugins"
    manifest, = (plugins / "cli-plugin").rglob("studio-plugin.toml")
    manifest.write_text("[[[broken")
    first, again = (studio(home, "plugins", "disable", "cli-plugin") for _ in range(2))
    why = f"(it cannot be loaded: The plugin manifest {manifest} is not valid TOML: "
    assert first.returncode == 0 and first.stdout.startswith(f"Disabled cli-plugin 1.0.0 {why}"), first.stdout
    assert again.returncode == 0 and again.stdout.startswith(f"cli-plugin 1.0.0 is already disabled {why}")
    assert json.loads((plugins / "state.json").read_text()) == {"enabled": []}


def test_a_plugin_runs_when_its_cache_folder_cannot_be_made_and_says_so(tmp_path, wheel, studio):
    home = tmp_path / "home"
    assert studio(home, "plugins", "install", str(wheel), "--yes").returncode == 0
    assert studio(home, "plugins", "enable", "cli-plugin").returncode == 0
    shutil.rmtree(home / "cache", ignore_errors=True)
    (home / "cache").write_text("x")  # no folder can be made in Studio's cache folder, for root too
    out = tmp_path / "made.png"
    # In a process of its own: the stand-in folder is removed as Studio's process ends.
    made = run_studio(home, "generate", "--generator", "cli-gen", "--prompt", "x", "--size", "64x64", "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert Image.open(out).getpixel((0, 0)) == (100, 0, 0)
    said = made.stdout + made.stderr
    assert (f"The cache folder {home / 'cache' / 'plugin-cache' / 'cli-plugin'} of the plugin Test Plugin could not "
            "be made (Not a directory); it uses ") in said
    stand_in = said.split("; it uses ", 1)[1].split(" until Studio closes.", 1)[0]
    assert not Path(stand_in).exists()  # removed when Studio ended


def test_install_and_update_from_an_index_on_a_local_server(tmp_path, studio):
    import hashlib
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    site = tmp_path / "site"
    old = plugin_wheel(site / "v1", plugin_id="cli-plugin", package="studio_tp_cli", generator_id="cli-gen")
    new = plugin_wheel(site / "v2", plugin_id="cli-plugin", package="studio_tp_cli", generator_id="cli-gen",
                       version="1.1.0")

    def publish(*wheels: Path, bad_hash: bool = False) -> None:
        rows = [{"name": "cli-plugin", "version": w.name.split("-")[1], "summary": "A test plugin.",
                 "url": w.relative_to(site).as_posix(), "sha256": hashlib.sha256(w.read_bytes()).hexdigest()}
                for w in wheels]
        if bad_hash:  # an update with a malformed sha256: it may be the update, so "up to date" is not known
            rows.append({**rows[-1], "version": "1.2.0", "sha256": "0xdeadbeef"})
        (site / "index.json").write_text(json.dumps(rows))

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(site)))
    Thread(target=server.serve_forever, daemon=True).start()
    index = f"http://127.0.0.1:{server.server_address[1]}/index.json"
    home = tmp_path / "home"
    try:
        publish(old)
        installed = studio(home, "plugins", "install", "cli-plugin", "--index", index, "--yes")
        assert installed.returncode == 0, installed.stderr
        assert "Installed Test Plugin 1.0.0." in installed.stdout
        assert studio(home, "plugins", "update", "--index", index, "--yes").stdout.strip() == \
            "Every plugin is up to date."
        publish(old, bad_hash=True)
        unsure = studio(home, "plugins", "update", "--index", index, "--yes")
        assert (unsure.returncode, unsure.stdout, unsure.stderr) == (
            0, "No update was found in the entries that could be read.\n",
            f"note: The plugin index {index}: entry 2 ('cli-plugin') was skipped because its sha256 is not 64 "
            "hexadecimal digits.\n")
        unread = studio(home, "plugins", "install", "nothing-here", "--index", index, "--yes")
        assert unread.returncode == 2 and "has no plugin called 'nothing-here' that could be read (entries were " \
            "skipped, as said above); it offers: cli-plugin." in unread.stderr
        publish(old, new)
        asked = run_studio(home, "plugins", "update", "--index", index)  # no terminal to ask on, as a person runs it
        assert (asked.returncode, asked.stdout, asked.stderr) == (
            2, "cli-plugin 1.0.0 → 1.1.0 is available.\n",
            "studio: there is no terminal to ask on, so nothing was updated; pass -y (--yes) to update cli-plugin.\n")
        updated = studio(home, "plugins", "update", "--index", index, "--yes")
        assert updated.returncode == 0 and "Updated cli-plugin to 1.1.0." in updated.stdout, updated.stderr
        assert plugins_listed(studio, home)[0]["version"] == "1.1.0"
        missing = studio(home, "plugins", "install", "nothing-here", "--index", index, "--yes")
        assert missing.returncode == 2 and "has no plugin called 'nothing-here'; it offers: cli-plugin." in \
            missing.stderr
    finally:
        server.shutdown()
        server.server_close()
    unreachable = studio(home, "plugins", "update", "--index", index, "--yes")  # the server is gone
    assert unreachable.returncode == 2 and index in unreachable.stderr


def test_a_plugin_id_is_looked_up_in_the_index_of_the_settings(tmp_path, wheel, monkeypatch, studio):
    import hashlib

    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings

    home = tmp_path / "home"
    unset = studio(home, "plugins", "install", "cli-plugin", "--yes")
    assert (unset.returncode, unset.stderr) == (2, "studio: There is no file or folder cli-plugin, and no plugin index "
                                                   "is set to look the plugin cli-plugin up in; pass --index URL (or "
                                                   "set plugin_index in the settings file).\n")
    index = tmp_path / "index.json"
    index.write_text(json.dumps([{"name": "cli-plugin", "version": "1.0.0", "url": wheel.as_uri(),
                                  "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}]))
    monkeypatch.setenv("STUDIO_HOME", str(home))
    settings = load_settings()
    settings.plugin_index = str(index)
    save_settings(settings)
    installed = studio(home, "plugins", "install", "cli-plugin", "--yes")  # as --help says: the index of the settings
    assert installed.returncode == 0, installed.stderr
    assert "Installed Test Plugin 1.0.0." in installed.stdout


def test_a_fresh_install_is_disabled_even_where_a_copy_removed_by_hand_was_enabled(tmp_path, wheel, studio):
    home = tmp_path / "home"
    assert studio(home, "plugins", "install", str(wheel), "--yes").returncode == 0
    assert studio(home, "plugins", "enable", "cli-plugin").returncode == 0
    shutil.rmtree(home / "data" / "plugins" / "cli-plugin")  # removed by hand: state.json still has it on
    again = studio(home, "plugins", "install", str(wheel), "--yes")
    assert again.returncode == 0, again.stderr
    assert "It is disabled until you run: studio plugins enable cli-plugin" in again.stdout
    listed = plugins_listed(studio, home)
    assert [(p["id"], p["status"]) for p in listed] == [("cli-plugin", "disabled")]  # as it said


def test_a_damaged_list_of_enabled_plugins_is_said_set_aside_and_not_overwritten(tmp_path, wheel, studio):
    home = tmp_path / "home"
    assert studio(home, "plugins", "install", str(wheel), "--yes").returncode == 0
    plugins = home / "data" / "plugins"
    (plugins / "state.json").write_text('{"enabled": ["cli-plugin"')  # cut short
    listed = studio(home, "plugins", "list")
    assert listed.returncode == 0 and "[disabled]" in listed.stdout
    assert listed.stderr == (f"note: The list of enabled plugins in {plugins / 'state.json'} could not be read "
                             "(not JSON: Expecting ',' delimiter: line 1 column 26 (char 25)); it was set aside as "
                             "state.json.broken and all plugins are off until you enable them again.\n")
    enabled = studio(home, "plugins", "enable", "cli-plugin")
    assert (enabled.returncode, enabled.stderr) == (0, "")  # said once
    assert (plugins / "state.json.broken").read_text() == '{"enabled": ["cli-plugin"'


def test_installing_over_an_enabled_plugin_says_what_it_replaces_and_that_it_stays_enabled(tmp_path, studio):
    home = tmp_path / "home"
    newer = plugin_wheel(tmp_path / "v2", version="2.0.0")
    older = plugin_wheel(tmp_path / "v1", version="1.0.0")
    assert studio(home, "plugins", "install", str(newer), "--yes").returncode == 0
    assert studio(home, "plugins", "enable", "test-plugin").returncode == 0
    replaced = studio(home, "plugins", "install", str(older), "--yes")
    assert replaced.returncode == 0, replaced.stderr
    assert "Downgrade: replaces the installed version 2.0.0" in replaced.stdout
    assert "Installed Test Plugin 1.0.0 in place of 2.0.0; it stays enabled" in replaced.stdout
    listed = plugins_listed(studio, home)
    assert [(p["version"], p["status"]) for p in listed] == [("1.0.0", "enabled")]


def test_a_plugin_taking_studio_s_own_generator_id_is_neither_installed_nor_enabled(tmp_path, studio):
    home = tmp_path / "home"
    wheel = plugin_wheel(tmp_path / "taken", plugin_id="taker", generator_id="diffusers")  # Studio's own id
    installed = studio(home, "plugins", "install", str(wheel), "--yes")
    assert installed.returncode == 2
    assert installed.stderr == ("studio: The plugin Test Plugin's generator id 'diffusers' is already owned by "
                                "Studio; it was refused.\n")
    unpack_plugin(home / "data" / "plugins", wheel, "taker")  # there all the same (installed by an older Studio)
    enabled = studio(home, "plugins", "enable", "taker")
    assert enabled.returncode == 2
    assert "Test Plugin cannot be enabled: its generator id 'diffusers' is already owned by Studio" in enabled.stderr
    assert "[disabled]" in studio(home, "plugins", "list").stdout  # the refused enable was not remembered


LINGERING = '''
import threading
from PIL import Image


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):
        threading.Thread(target=threading.Event().wait, name="forgotten", daemon=False).start()  # never ends
        yield Image.new("RGB", (request.width, request.height), (9, 9, 9))
'''


def test_a_thread_a_plugin_leaves_running_does_not_keep_the_command_from_ending(tmp_path, studio):
    home = tmp_path / "home"
    wheel = plugin_wheel(tmp_path / "wheels", plugin_id="lingers", package="studio_tp_lingers",
                         generator_id="lingers-gen", generator_code=LINGERING)
    assert studio(home, "plugins", "install", str(wheel), "--yes").returncode == 0
    assert studio(home, "plugins", "enable", "lingers").returncode == 0
    made = run_studio(home, "generate", "--generator", "lingers-gen", "--prompt", "x", "--size", "64x64", "-o",
                      str(tmp_path / "x.png"), timeout=60)  # before: still running when the time was up
    assert made.returncode == 0, made.stderr
    assert Image.open(tmp_path / "x.png").getpixel((0, 0)) == (9, 9, 9)
    assert "Exiting past threads left running: forgotten" in (home / "data" / "studio.log").read_text()


def test_the_install_confirmation_prints_control_characters_escaped(capsys):
    from studio.cli_plugins import _show_plan

    _show_plan("Install Evil 1.0\x1b[2J\x1b[1A\rSafe Plugin\u202e?")
    printed = capsys.readouterr().out
    assert printed == "Install Evil 1.0\\x1b[2J\\x1b[1A\\rSafe Plugin\\u202e?\n"  # shown, not obeyed


COUNTING = '''
from PIL import Image


class Generator:
    def __init__(self, env):
        pass

    def generate(self, request, context):  # as many pictures as it is told, whatever the batch count
        for i in range(request.params["count"]):
            yield Image.new("RGB", (request.width, request.height), (i, 0, 0))
'''


def test_a_generator_making_fewer_or_more_pictures_than_asked_is_said_and_fewer_exits_1(tmp_path, studio):
    home = tmp_path / "home"
    wheel = plugin_wheel(tmp_path / "wheels", plugin_id="counting", package="studio_tp_counting",
                         generator_id="counting", generator_code=COUNTING,
                         manifest_extra='[[generators.parameters]]\nname = "count"\ntype = "int"\nmax = 9\n')
    assert studio(home, "plugins", "install", str(wheel), "--yes").returncode == 0
    assert studio(home, "plugins", "enable", "counting").returncode == 0

    def generate(count: int, batch: int, out: str) -> subprocess.CompletedProcess[str]:
        return studio(home, "generate", "--generator", "counting", "--prompt", "x", "--size", "64x64",
                      "--batch-count", str(batch), "--count", str(count), "-o", str(tmp_path / out))

    none = generate(0, 1, "none.png")
    assert none.returncode == 1 and not (tmp_path / "none.png").exists()
    assert "studio: the generator 'counting' made no picture; nothing was written." in none.stderr
    fewer = generate(1, 2, "fewer.png")
    assert fewer.returncode == 1 and (tmp_path / "fewer-1.png").is_file() and not (tmp_path / "fewer-2.png").exists()
    assert "studio: the generator 'counting' made 1 of the 2 pictures asked for." in fewer.stderr
    more = generate(5, 2, "more.png")
    assert more.returncode == 0, more.stderr
    assert sorted(p.name for p in tmp_path.glob("more*")) == ["more-1.png", "more-2.png"]
    assert "made more than the 2 pictures asked for; Studio kept the first 2" in more.stderr


def test_plugin_flags_never_clash_with_studio_s_own_and_help_shows_percent_signs():
    import argparse

    from studio.cli import build_parser
    from studio.cli_params import add_param_flags
    from studio.core import parameters
    from studio.core.parameters import FloatParam

    commands = next(a for a in build_parser([])._actions if isinstance(a, argparse._SubParsersAction))
    for command, reserved in (("generate", "GENERATE_OPTIONS"), ("postprocess", "POSTPROCESS_OPTIONS")):
        names = {o[2:].replace("-", "_") for a in commands.choices[command]._actions for o in a.option_strings
                 if o.startswith("--")}
        assert names <= getattr(parameters, reserved, set()), f"studio {command}: not reserved for plugins"
    parser = argparse.ArgumentParser(prog="studio generate")
    add_param_flags(parser, "Film", [FloatParam("grain", help="50% more grain, at 100%")])
    assert "50% more grain, at 100% (0 to 1, default 0)" in " ".join(parser.format_help().split())


def test_the_list_shows_studio_s_own_generators_and_post_processors_first(studio_home, capsys):
    """Studio's own, registered through the same registry as a plugin's, were listed nowhere but in error messages
    and help: the list showed plugins only ('No plugins are installed')."""
    from studio import __version__
    from studio.cli import main
    from studio.plugin_host.builtins import BUILTIN_CONTRIBUTIONS

    own = {kind: [c.id for c in BUILTIN_CONTRIBUTIONS if c.kind == kind] for kind in ("generator", "postprocessor")}
    for safe_mode in ([], ["--safe-mode"]):  # loaded in safe mode too
        assert main([*safe_mode, "plugins", "list"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[:2] == [
            f"studio  Studio {__version__}  [built in]",
            "    Studio's own: always on, cannot be disabled or uninstalled · generators: "
            f"{', '.join(own['generator'])} · post-processors: {', '.join(own['postprocessor'])}"]
        assert lines[2].startswith("No plugins are installed. Install one with: studio plugins install PATH")
    assert main(["plugins", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row == {"id": "studio", "name": "Studio", "version": __version__, "status": "built in", "error": "",
                   "author": "", "homepage": "", "permissions": "", "generators": own["generator"],
                   "postprocessors": own["postprocessor"], "installed_by": "built in"}


STUCK = '''
import time


class Generator:
    def __init__(self, env):
        pass


class Stuck:
    def __init__(self, env):
        pass

    def process(self, image, params, context):
        time.sleep(30)  # looks at no cancel
        return image
'''


def test_ctrl_c_on_a_plugin_that_does_not_stop_is_a_cancel_and_the_wait_on_it_is_shown(tmp_path, studio):
    # The bar said "Starting the engine" all through the plugin's work; Ctrl+C ended in exit 1 and "the plugin was
    # switched off until Studio restarts …; turn it on again in Plugins" (the list still said enabled).
    home = tmp_path / "home"
    wheel = plugin_wheel(tmp_path / "wheels", plugin_id="stuck", package="studio_tp_stuck", generator_code=STUCK,
                         manifest_extra='[[postprocessors]]\nid = "stuck-pp"\ntitle = "Stuck"\n'
                                        'target = "studio_tp_stuck.generator:Stuck"\n')
    unpack_plugin(home / "data" / "plugins", wheel, "stuck")
    assert studio(home, "plugins", "enable", "stuck").returncode == 0
    picture = tmp_path / "in.png"
    Image.new("RGB", (16, 16)).save(picture)
    env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_DEVICE="cpu", PYTHONIOENCODING="utf-8")
    command = [sys.executable, "-m", "studio", "postprocess", str(picture), "-o", str(tmp_path / "out.png"),
               "--method", "stuck-pp"]
    with subprocess.Popen(command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, encoding="utf-8",
                          preexec_fn=sigint_as_at_a_terminal) as process:
        try:
            shown = ""
            while "Running Stuck (plugin Test Plugin)" not in shown:
                char = process.stderr.read(1)
                assert char, f"the command ended first: {shown}"
                shown += char
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == EXIT_CANCELLED, err
    said = [line for line in err.replace("\r", "\n").splitlines() if line.startswith(("studio:", "note:"))]
    assert said == ["studio: cancelled.", "note: The plugin Test Plugin did not stop within 5 s of being cancelled; "
                                          "Studio stopped waiting for it."]
    assert not (tmp_path / "out.png").exists()
    assert "[enabled]" in studio(home, "plugins", "list").stdout


def test_install_and_uninstall_ask_at_a_terminal_as_models_remove_does(tmp_path, wheel):
    # Uninstalling removed the plugin at once, without asking, and took no -y; installing said "not installing
    # without --yes" and exited 1 where removing a model says "there is no terminal to ask on" and exits 2.
    pytest.importorskip("pty")
    home = tmp_path / "home"
    folder = home / "data" / "plugins" / "cli-plugin"
    code, shown = at_a_terminal(home, ["plugins", "install", str(wheel)], b"n\n")
    assert (code, "Test Plugin 1.0.0 (plugin id cli-plugin)" in shown) == (1, True), shown
    assert shown.rstrip().endswith("Install? [y/N] n\nNothing was installed.") and not folder.exists()
    code, shown = at_a_terminal(home, ["plugins", "install", str(wheel)], b"\x03")  # Ctrl+C: a cancel, not a no
    assert (code, shown.rstrip().endswith("studio: cancelled."), "Nothing was" in shown) == (130, True, False), shown
    assert not folder.exists()
    code, shown = at_a_terminal(home, ["plugins", "install", str(wheel)], b"y\n")
    assert code == 0 and "Installed Test Plugin 1.0.0." in shown and folder.is_dir()
    code, shown = at_a_terminal(home, ["plugins", "uninstall", "cli-plugin"], b"n\n")
    assert (code, shown.strip()) == (1, f"Uninstall Test Plugin 1.0.0 and delete its folder {folder}? [y/N] n\n"
                                        "Nothing was uninstalled.")
    assert folder.is_dir()
    code, shown = at_a_terminal(home, ["plugins", "uninstall", "cli-plugin"], b"y\n")
    assert code == 0 and shown.strip().endswith("Removed Test Plugin 1.0.0.") and not folder.exists()


@pytest.mark.parametrize("args, done", [(["uninstall", "studio", "-y"], "cannot be uninstalled"),
                                        (["disable", "studio"], "cannot be disabled")])
def test_studio_s_own_id_is_refused_as_studio_itself_not_as_a_plugin_s_choice(args, done, tmp_path, studio):
    # "The plugin id 'studio' belongs to Studio itself; a plugin must choose another": words for plugin authors.
    refused = studio(tmp_path / "home", "plugins", *args)
    assert (refused.returncode, refused.stderr) == (
        2, f"studio: 'studio' is Studio itself, not a plugin: Studio's own generators and post-processors {done}.\n")


def test_plugins_needing_incompatible_versions_of_one_package_are_not_on_together(tmp_path, studio, monkeypatch):
    home, links = tmp_path / "home", tmp_path / "links"
    build_wheel(links, "fakehum", "4.17.0", {"fakehum/__init__.py": "VERSION = '4.17.0'\n"})
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip, run by the installer, finds fakehum only here
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    pinned = plugin_wheel(tmp_path / "pinned", plugin_id="tp-pinned", package="studio_tp_pinned",
                          generator_id="pinned-gen", requires=["fakehum==4.9.0"])
    folder = unpack_plugin(home / "data" / "plugins", pinned, "tp-pinned")  # with fakehum 4.9.0 beside it
    unpack_plugin(home / "data" / "plugins", build_wheel(tmp_path / "old", "fakehum", "4.9.0", {
        "fakehum/__init__.py": "VERSION = '4.9.0'\n"}), "tp-pinned")
    assert (folder / "fakehum-4.9.0.dist-info").is_dir()
    assert studio(home, "plugins", "enable", "tp-pinned").returncode == 0
    lenient = plugin_wheel(tmp_path / "lenient", plugin_id="tp-lenient", package="studio_tp_lenient",
                           generator_id="lenient-gen", requires=["fakehum>=4"])
    installed = studio(home, "plugins", "install", str(lenient), "--yes")
    assert installed.returncode == 2
    assert installed.stderr == (
        "studio: The plugin Test Plugin 1.0.0 was refused: it carries fakehum 4.17.0 but the enabled plugin Test "
        "Plugin (tp-pinned) needs fakehum==4.9.0 (its folder has fakehum 4.9.0), and plugins share one Python "
        "process, which loads only one fakehum; disable Test Plugin (tp-pinned) first.\n")
    assert not (home / "data" / "plugins" / "tp-lenient").exists()
    studio(home, "plugins", "disable", "tp-pinned")  # once it is off, the other installs, but both cannot be on
    assert studio(home, "plugins", "install", str(lenient), "--yes").returncode == 0
    assert studio(home, "plugins", "enable", "tp-lenient").returncode == 0
    enabled = studio(home, "plugins", "enable", "tp-pinned")
    assert enabled.returncode == 2
    assert ("Test Plugin cannot be enabled: it needs fakehum==4.9.0 (its folder has fakehum 4.9.0) but the enabled "
            "plugin Test Plugin (tp-lenient) carries fakehum 4.17.0") in enabled.stderr
