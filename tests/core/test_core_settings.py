"""Settings: defaults under STUDIO_HOME, TOML round trip, and a broken file never stops Studio."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from studio.core.errors import StudioError
from studio.core.paths import StudioPaths, studio_paths
from studio.core.settings import Settings, load_settings
from studio.core.settings_writing import save_settings


def test_studio_home_puts_every_folder_under_it(studio_home):
    paths = studio_paths()
    assert paths.config_dir == studio_home.resolve() / "config"
    assert paths.data_dir == studio_home.resolve() / "data"
    assert paths.cache_dir == studio_home.resolve() / "cache"
    assert paths.settings_file == paths.config_dir / "settings.toml"
    assert paths.default_models_dir == paths.data_dir / "models"
    assert paths.default_outputs_dir == paths.data_dir / "outputs"


def test_defaults_without_a_file(studio_home):
    settings = load_settings()
    assert settings == Settings.defaults(studio_paths())
    assert settings.models_dir == studio_home.resolve() / "data" / "models"
    assert settings.device == "auto"
    assert settings.generation.steps == 20 and settings.generation.scheduler == "Euler a"
    assert not studio_paths().settings_file.exists()  # reading does not write


def test_save_and_load_round_trip(studio_home, tmp_path):
    settings = load_settings()
    settings.device = "cpu"
    settings.models_dir = tmp_path / "my models"
    settings.extra_model_paths = [tmp_path / "extra one", tmp_path / "ünï"]
    settings.generation.prompt = 'a "quoted" prompt, with: colons\nand a second line 🦊'
    settings.generation.negative_prompt = "blurry"
    settings.generation.width = 768
    settings.generation.steps = 33
    settings.generation.cfg_scale = 4.5
    settings.generation.seed = 2**32 - 1
    settings.generation.scheduler = "DPM++ 2M Karras"
    settings.generation.strength = 0.35
    save_settings(settings)
    assert studio_paths().settings_file.is_file()
    assert load_settings() == settings


def test_a_partial_file_fills_in_defaults_and_ignores_unknown_keys(studio_home):
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text('device = "cpu"\nfuture_option = 3\n\n[generation]\nsteps = 12\n'
                                   'scheduler = "No Such Sampler"\n')
    settings = load_settings()
    assert settings.device == "cpu"
    assert settings.generation.steps == 12
    assert settings.generation.scheduler == "Euler a"  # unknown scheduler falls back, the rest is kept
    assert settings.load_note.startswith("Some settings could not be read (generation.scheduler) ")
    assert settings.models_dir == paths.default_models_dir
    assert paths.settings_file.exists()  # kept as it is until Studio saves its settings


@pytest.mark.parametrize("content", [
    "this is = = not toml [",
    b"\xff\xfe\x00 not utf-8",
])
def test_a_file_that_is_not_toml_is_moved_aside_and_defaults_are_used(studio_home, caplog, content):
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    if isinstance(content, bytes):
        paths.settings_file.write_bytes(content)
    else:
        paths.settings_file.write_text(content)
    with caplog.at_level(logging.WARNING, logger="studio.core.settings"):
        settings = load_settings()
    assert settings.model_dump() == Settings.defaults(paths).model_dump()
    aside = paths.config_dir / "settings.toml.broken"
    assert aside.is_file()
    assert aside.read_bytes() == (content if isinstance(content, bytes) else content.encode())
    assert not paths.settings_file.exists()
    assert "could not be read" in caplog.text
    assert settings.load_note.startswith("The settings file could not be read (") and "settings.toml.broken" in \
        settings.load_note
    # Saving afterwards writes a good file again.
    save_settings(settings)
    assert load_settings().model_dump() == settings.model_dump()


def test_values_that_cannot_be_used_take_their_defaults_and_the_rest_is_kept(studio_home):
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    content = """memory = 5
models_dir = ["a", "list"]

[generation]
steps = 0
prompt = "kept"

[window]
brush_size = "big"

[[styles]]
name = "Ink"
prompt = "ink drawing of {prompt}"

[[styles]]
prompt = "a style without a name"

[[presets]]
name = "Small"
generation = "not a table"
"""
    paths.settings_file.write_text(content)
    settings = load_settings()
    assert settings.generation.prompt == "kept" and settings.generation.steps == 20
    assert [s.name for s in settings.styles] == ["Ink"] and settings.presets == []
    assert settings.models_dir == paths.default_models_dir and settings.memory == "auto"
    assert settings.window.brush_size == 48.0
    assert settings.load_note.startswith("Some settings could not be read (") and "generation.steps" in \
        settings.load_note and "window.brush_size" in settings.load_note
    assert (paths.config_dir / "settings.toml.broken").read_text() == content
    assert paths.settings_file.read_text() == content  # untouched until Studio saves its settings again
    save_settings(settings)
    assert load_settings().load_note == ""


def test_a_file_saved_with_a_byte_order_mark_is_read_whole(studio_home):
    """Windows Notepad starts UTF-8 with a byte-order mark: the file was called broken and every setting reset."""
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_bytes(b"\xef\xbb\xbf" + 'device = "cpu"\n[[styles]]\nname = "Ink"\n'.encode())
    settings = load_settings()
    assert (settings.device, [s.name for s in settings.styles], settings.load_note) == ("cpu", ["Ink"], "")
    assert not (paths.config_dir / "settings.toml.broken").exists()


def test_a_copy_set_aside_earlier_is_never_overwritten_and_the_note_says_where_the_new_one_is(studio_home):
    """A file set aside once (the only copy of the person's styles) was overwritten by the next file that had one
    value Studio could not use."""
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    first = '[[styles]]\nname = "My ink style"\nthis is not toml ['
    paths.settings_file.write_text(first)
    assert "settings.toml.broken (in " in load_settings().load_note
    second = "[generation]\nsteps = 0\n"
    paths.settings_file.write_text(second)
    note = load_settings().load_note
    assert note.startswith("Some settings could not be read (generation.steps)")
    assert f"kept as settings.toml.broken-2 (in {paths.config_dir})." in note
    assert (paths.config_dir / "settings.toml.broken").read_text() == first
    assert (paths.config_dir / "settings.toml.broken-2").read_text() == second
    # Read again (each `studio` command reads it, and none saves it): no copy more.
    assert "settings.toml.broken-2 (in" in load_settings().load_note
    assert sorted(p.name for p in paths.config_dir.iterdir()) == [
        "settings.toml", "settings.toml.broken", "settings.toml.broken-2"]
    paths.settings_file.write_text("not toml either [")
    assert "settings.toml.broken-3 (in" in load_settings().load_note
    assert not paths.settings_file.exists()
    assert (paths.config_dir / "settings.toml.broken").read_text() == first


def test_a_folder_named_settings_toml_says_so_and_studio_starts_with_defaults(studio_home):
    """Every command and the window ended in an IsADirectoryError traceback."""
    paths = studio_paths()
    paths.settings_file.mkdir(parents=True)
    (paths.settings_file / "kept.txt").write_text("the person's")
    settings = load_settings()
    assert settings.model_dump() == Settings.defaults(paths).model_dump()
    assert settings.load_note == (f"The settings file {paths.settings_file} is a folder, not a file; Studio started "
                                  "with its defaults and left it as it is.")
    assert (paths.settings_file / "kept.txt").read_text() == "the person's"
    with pytest.raises(StudioError, match="^Settings could not be saved to "):
        save_settings(settings)
    assert (paths.settings_file / "kept.txt").read_text() == "the person's"


@pytest.mark.parametrize(("line", "place", "value", "default"), [
    ('[window]\nmask_opacity = "half"', "window.mask_opacity", lambda s: s.window.mask_opacity, 0.5),
    ("[window]\nbrush_size = -inf", "window.brush_size", lambda s: s.window.brush_size, 48.0),
    ("[window]\nbrush_hardness = nan", "window.brush_hardness", lambda s: s.window.brush_hardness, 0.8),
    ("[window]\ngrow_pixels = 2.5", "window.grow_pixels", lambda s: s.window.grow_pixels, 8),
    ('device = "tpu9"', "device", lambda s: s.device, "auto"),
    ('memory = "infinite"', "memory", lambda s: s.memory, "auto"),
    ('speed = "ludicrous"', "speed", lambda s: s.speed, "fast"),
    ('outputs_dir = ""', "outputs_dir", lambda s: s.outputs_dir, "OUTPUTS"),
    ('[generation]\nscheduler = "Bogus 9000"', "generation.scheduler", lambda s: s.generation.scheduler, "Euler a"),
    ('[generation]\ninpaint_fill = "lava"', "generation.inpaint_fill", lambda s: s.generation.inpaint_fill,
     "original"),
    ("[generation]\nseed = 9223372036854775807", "generation.seed", lambda s: s.generation.seed, -1),
    ('[[generation.loras]]\nname = "ink"\nweight = "heavy"', "generation.loras.0.weight",
     lambda s: s.generation.loras[0].weight, 1.0),
    ('[[presets]]\nname = "p"\ngeneration = { scheduler = "Bogus" }', "presets.0.generation.scheduler",
     lambda s: s.presets[0].generation.scheduler, "Euler a"),
])
def test_each_value_studio_cannot_use_takes_its_default_and_is_named(studio_home, tmp_path, line, place, value,
                                                                     default):
    """mask_opacity = 7, device = "tpu9" and a file for the outputs folder were kept with no word; an unknown
    sampler or memory mode took its default with no word either."""
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    a_file = tmp_path / "passwd"
    a_file.write_text("not a folder")
    paths.settings_file.write_text('plugin_index = "kept"\n' + line.replace("FILE", str(a_file)) + "\n")
    settings = load_settings()
    folders = {"OUTPUTS": paths.default_outputs_dir, "MODELS": paths.default_models_dir}
    assert value(settings) == folders.get(default, default)
    assert settings.plugin_index == "kept"
    assert settings.load_note.startswith(f"Some settings could not be read ({place}) and take their defaults; ")


@pytest.mark.parametrize("name", ["outputs_dir", "models_dir"])
def test_a_folder_setting_naming_a_file_takes_the_default_and_says_so_without_a_broken_copy(studio_home, tmp_path,
                                                                                            name):
    """It said "Some settings could not be read (outputs_dir)" and kept a settings.toml.broken copy, though the
    setting was read fine: the folder it names is a file."""
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    a_file = tmp_path / "passwd"
    a_file.write_text("not a folder")
    paths.settings_file.write_text(f'plugin_index = "kept"\n{name} = "{a_file}"\n')
    settings = load_settings()
    default = paths.default_outputs_dir if name == "outputs_dir" else paths.default_models_dir
    assert (getattr(settings, name), settings.plugin_index) == (default, "kept")
    assert settings.load_note == f"The setting {name} is {a_file}, which is a file, not a folder; the default " \
                                 f"{default} is used."
    assert sorted(p.name for p in paths.config_dir.iterdir()) == ["settings.toml"]
    with pytest.raises(ValidationError, match="a file, not a folder"):  # set in code (not read): refused
        settings.model_validate({**settings.model_dump(), name: a_file})



@pytest.mark.parametrize(("line", "value", "said"), [
    ('[[generation.loras]]\nname = "ink"\nweight = 4.5', lambda s: s.generation.loras[0].weight,
     "The setting generation.loras.0.weight was 4.5, more than 4; 4 is used."),
    ('[[presets]]\nname = "p"\n[[presets.generation.loras]]\nname = "ink"\nweight = -1e10',
     lambda s: s.presets[0].generation.loras[0].weight,
     "The setting presets.0.generation.loras.0.weight was -1e+10, less than -4; -4 is used."),
    ("[window]\nmask_opacity = 7", lambda s: s.window.mask_opacity, "The setting window.mask_opacity was 7, more than "
     "1; 1 is used."),
    ("[window]\nbrush_size = 2000.5", lambda s: s.window.brush_size, "The setting window.brush_size was 2000.5, more "
     "than 1024; 1024 is used."),
    ("[window]\nbrush_hardness = -3", lambda s: s.window.brush_hardness, "The setting window.brush_hardness was -3, "
     "less than 0; 0 is used."),
    ("[window]\ngrow_pixels = 99999999999", lambda s: s.window.grow_pixels, "The setting window.grow_pixels was "
     "99999999999, more than 256; 256 is used."),
])
def test_a_number_a_little_past_its_range_takes_the_nearest_allowed_and_is_named(studio_home, line, value, said):
    """A LoRA weight of 4.5 (and a window value past the tools' limits) took its default, 1.0, where before it was
    clamped to 4: a person who wrote one a little past the range means its end."""
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text('plugin_index = "kept"\n' + line + "\n")
    settings = load_settings()
    nearest = float(said.rpartition("; ")[2].removesuffix(" is used."))
    assert value(settings) == nearest and settings.plugin_index == "kept"
    assert settings.load_note == f"{said} The file as it was is kept as settings.toml.broken (in {paths.config_dir})."


def test_numbers_past_their_range_and_values_that_cannot_be_read_are_said_together(studio_home):
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text('device = "tpu9"\n[window]\nmask_opacity = 1.5\n\n[[generation.loras]]\n'
                                   'name = "ink"\nweight = 5\n\n[[generation.loras]]\nweight = 9\n')
    settings = load_settings()
    assert (settings.device, settings.window.mask_opacity) == ("auto", 1.0)
    # The nameless LoRA is dropped whole, and its weight not named.
    assert [(lora.name, lora.weight) for lora in settings.generation.loras] == [("ink", 4.0)]
    assert settings.load_note == (
        "The setting generation.loras.0.weight was 5, more than 4; 4 is used. The setting window.mask_opacity was "
        "1.5, more than 1; 1 is used. Some settings could not be read (generation.loras.1.name, device) and take "
        f"their defaults; the file as it was is kept as settings.toml.broken (in {paths.config_dir}).")

def test_a_file_where_the_default_folder_should_be_is_not_a_reason_to_set_the_settings_aside(studio_home):
    paths = studio_paths()
    paths.data_dir.mkdir(parents=True)
    paths.default_outputs_dir.write_text("a file")
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text('device = "cpu"\n')
    settings = load_settings()
    assert (settings.device, settings.outputs_dir, settings.load_note) == ("cpu", paths.default_outputs_dir, "")
    assert Settings.defaults(paths).outputs_dir == paths.default_outputs_dir


def test_explicit_paths_are_used_instead_of_studio_home(tmp_path):
    paths = StudioPaths(tmp_path / "c", tmp_path / "d", tmp_path / "x")
    settings = Settings.defaults(paths)
    settings.device = "cpu"
    save_settings(settings, paths)
    assert (tmp_path / "c" / "settings.toml").is_file()
    assert load_settings(paths).device == "cpu"


def test_several_bad_items_of_one_list_go_and_only_they(studio_home):
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    styles = "".join(f'[[styles]]\nname = "s{i}"\n' if i not in (2, 10) else "[[styles]]\nprompt = 'x'\n"
                     for i in range(12))
    paths.settings_file.write_text(styles)
    assert [s.name for s in load_settings().styles] == [f"s{i}" for i in range(12) if i not in (2, 10)]


def test_an_item_with_a_bad_value_keeps_the_rest_and_one_with_no_name_goes_alone(studio_home):
    """A value with a default is dropped alone (the preset, the LoRA stay); an item that cannot be without it goes,
    and taking it away never shifts another item's value (each place is found before anything is removed)."""
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text("""[[styles]]
prompt = 5
[[styles]]
name = "Ink"
prompt = "ink, {prompt}"
[[presets]]
name = "Fast"
generation = { steps = 9, scheduler = "Bogus" }
[[generation.post]]
processor = "color"
strength = 5
""")
    settings = load_settings()
    assert [(s.name, s.prompt) for s in settings.styles] == [("Ink", "ink, {prompt}")]
    assert [(p.name, p.generation.steps, p.generation.scheduler) for p in settings.presets] == [("Fast", 9, "Euler a")]
    assert [(p.processor, p.strength) for p in settings.generation.post] == [("color", 1.0)]
    assert settings.load_note.startswith("Some settings could not be read (styles.0.prompt, styles.0.name, "
                                         "presets.0.generation.scheduler, generation.post.0.strength) ")


def test_folders_written_with_a_tilde_or_relative_are_made_absolute_under_home(studio_home, monkeypatch, tmp_path):
    """"~/Pictures/Studio" was a folder named "~" in whatever folder Studio started in, and the history recorded
    pictures there by relative paths."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text('outputs_dir = "~/Pictures/Studio"\nmodels_dir = "AI/models"\n'
                                   'extra_model_paths = ["~/sd/dream.safetensors"]\n')
    settings = load_settings()
    home = tmp_path / "home"
    assert settings.outputs_dir == home / "Pictures" / "Studio"
    assert settings.models_dir == home / "AI" / "models"
    assert settings.extra_model_paths == [home / "sd" / "dream.safetensors"]


def test_loras_past_the_limit_and_guides_studio_cannot_use_are_named_when_dropped(studio_home):
    """A hand-edited file's LoRAs past MAX_LORAS and its badly formed (or too many) ControlNet guides were dropped
    with no word; they are named in the load note like any other value Studio cannot use."""
    from studio.core.control import MAX_GUIDES
    from studio.core.requests import MAX_LORAS

    paths = studio_paths()
    paths.config_dir.mkdir(parents=True)
    loras = "".join(f'[[generation.loras]]\nname = "lora{i}"\n' for i in range(MAX_LORAS + 2))
    guides = ['model = "canny"\nweight = "heavy"'] + [f'model = "cn{i}"\nimage = "/g{i}.png"'
                                                       for i in range(MAX_GUIDES + 1)]
    text = loras + "".join(f"[[generation.controls]]\n{guide}\n" for guide in guides)
    paths.settings_file.write_text('plugin_index = "kept"\n' + text)
    settings = load_settings()
    assert [lora.name for lora in settings.generation.loras] == [f"lora{i}" for i in range(MAX_LORAS)]
    assert [guide["model"] for guide in settings.generation.controls] == [f"cn{i}" for i in range(MAX_GUIDES)]
    assert settings.plugin_index == "kept"
    past = [f"generation.loras.{i}" for i in (MAX_LORAS + 1, MAX_LORAS)]
    assert settings.load_note.startswith(f"Some settings could not be read ({', '.join(past)}, generation.controls."
                                         f"{MAX_GUIDES + 1}, generation.controls.0) and take their defaults; ")

