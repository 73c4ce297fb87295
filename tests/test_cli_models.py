"""``studio models list|import|link|download|remove|recommended`` in a subprocess, as a person runs them."""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hub_server import FakeHub, FakeRepo
from model_files import esrgan, lora, sd1, write
from PIL import Image
from studio_testing import run_studio, run_studio_commands, studio_here

from single_file import write_original_checkpoint


def studio(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_studio(home, "models", *args, env=env)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "studio-home"


def listing(home: Path) -> dict[str, dict]:
    result = studio(home, "list", "--json")
    assert result.returncode == 0, result.stderr
    return {item["name"]: item for item in json.loads(result.stdout)}


def test_import_list_link_and_remove(home, tmp_path):
    """The commands one after another, as a person types them, in one fresh Python (each through studio.cli.main)."""
    source = sd1(tmp_path / "Downloads" / "dreamy.safetensors")
    a1111 = tmp_path / "stable-diffusion-webui"
    shutil.copy(source, (a1111 / "models" / "Stable-diffusion").mkdir(parents=True) or
                a1111 / "models" / "Stable-diffusion" / "copy.safetensors")
    lora(a1111 / "models" / "Lora" / "ink.safetensors")
    lora(a1111 / "outputs" / "train" / "ink-step500.safetensors")  # not a model of the library: outputs/ is not read
    (empty, imported, again, linked, items, text, only, none_of_it, none_as_json, unknown_kind, refused, asked, unknown,
     removed, unlinked, emptied) = run_studio_commands(home, *(["models", *args] for args in (
        ["list"], ["import", str(source)], ["import", str(source)], ["link", str(a1111)], ["list", "--json"],
        ["list"], ["list", "--kind", "LoRA", "--no-hash", "--json"], ["list", "--kind", "vae", "--no-hash"],
        ["list", "--kind", "vae", "--no-hash", "--json"], ["list", "--kind", "loras"], ["remove", "ink", "-y"],
        ["remove", "dreamy"], ["remove", "nothing"], ["remove", "dreamy", "-y"], ["remove", str(a1111), "-y"],
        ["list", "--json"])))
    assert empty.returncode == 0 and "No models in" in empty.stdout and "studio models import" in empty.stdout
    assert imported.returncode == 0, imported.stderr
    assert "Imported dreamy (SD 1.x)" in imported.stdout
    assert "already in the library" in again.stdout
    assert linked.returncode == 0 and "(AUTOMATIC1111 layout): 2 usable model(s)" in linked.stdout
    assert items.returncode == 0, items.stderr
    items = {item["name"]: item for item in json.loads(items.stdout)}
    assert items["dreamy"]["label"] == "SD 1.x" and len(items["dreamy"]["hash"]) == 10
    assert items["copy"]["duplicate_of"] == items["dreamy"]["path"]
    assert items["ink"]["kind"] == "lora" and items["ink"]["source"].startswith("AUTOMATIC1111 folder")
    assert "same file as" in text.stdout and "LoRA" in text.stdout
    assert [i["name"] for i in json.loads(only.stdout)] == ["ink"]
    assert none_of_it.stdout.strip() == ("No models of the kind vae in the library; `studio models list` shows its 3 "
                                         "other models.")
    assert (none_as_json.returncode, json.loads(none_as_json.stdout)) == (0, [])  # was the sentence above, not JSON
    assert unknown_kind.returncode == 2 and "invalid choice: 'loras'" in unknown_kind.stderr
    assert refused.returncode == 2 and "does not delete other tools' files" in refused.stderr
    assert (asked.returncode, asked.stderr) == (2, "studio: there is no terminal to ask on, so nothing was removed; "
                                                   "pass -y (--yes) to remove dreamy.\n")
    # What is wrong with the name comes first.
    assert (unknown.returncode, unknown.stderr) == (2, "studio: The library has no model named 'nothing'; `studio "
                                                       "models list` shows the names.\n")
    assert removed.returncode == 0 and "Removed dreamy" in removed.stdout
    assert unlinked.returncode == 0 and "Unlinked" in unlinked.stdout
    assert (emptied.returncode, json.loads(emptied.stdout)) == (0, [])
    assert (a1111 / "models" / "Lora" / "ink.safetensors").exists()


@pytest.mark.parametrize("name", ["evil.safetensors", "evil.ckpt"])
def test_a_pickle_is_refused_and_never_runs(home, tmp_path, name):
    class Sentinel:
        def __reduce__(self):  # noqa: ANN204
            return (Path.touch, (tmp_path / "ran",))

    evil = tmp_path / name
    evil.write_bytes(pickle.dumps(Sentinel()))
    result = studio(home, "import", str(evil))
    assert result.returncode == 2
    assert "pickle checkpoint" in result.stderr and "studio convert-weights" in result.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("claimed", [3_000_000_000, 50_000_000])
def test_a_corrupt_file_gets_the_same_sentence_from_import_list_and_generate(home, tmp_path, claimed):
    """Imports and the library checked headers against 16 MiB, loads (studio generate) against 100 MiB: a header
    claiming 3 GB named two different limits, and one claiming 50 MB was 'too long' to import but 'not valid
    JSON' to generate from."""
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(claimed.to_bytes(8, "little") + b"{" + b"x" * 200)
    imported, generated = run_studio_commands(home, ["models", "import", str(bad)],
                                              ["generate", "--model", str(bad), "--prompt", "p", "-o",
                                               str(tmp_path / "o.png")])
    assert (imported.returncode, generated.returncode) == (2, 2)
    assert imported.stderr == generated.stderr, (imported.stderr, generated.stderr)
    assert imported.stderr.startswith("studio: broken.safetensors is a corrupt safetensors file: its header claims ")
    shutil.copy(bad, (home / "data" / "models" / "checkpoints").mkdir(parents=True, exist_ok=True) or
                home / "data" / "models" / "checkpoints" / bad.name)
    assert f"studio: {listing(home)['broken']['problem']}\n" == imported.stderr


def test_a_header_too_long_is_said_in_a_persons_words(home, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes((3_000_000_000).to_bytes(8, "little") + b"{" + b"x" * 200)
    result = studio(home, "import", str(bad))
    assert result.stderr == ("studio: broken.safetensors is a corrupt safetensors file: its header claims to be "
                             "3,000,000,000 bytes long, but a safetensors header holds at most 100,000,000 bytes "
                             "(100 MB).\n")


def test_an_import_into_a_models_folder_that_cannot_be_written_is_one_sentence(home, tmp_path):
    """It crashed with a traceback (the folder was made outside the error handling)."""
    assert studio(home, "list").returncode == 0
    models = home / "data" / "models"
    shutil.rmtree(models, ignore_errors=True)
    models.parent.mkdir(parents=True, exist_ok=True)
    models.write_text("not a folder")  # what a read-only folder does even to root: no sub-folder can be made
    result = studio(home, "import", str(sd1(tmp_path / "dreamy.safetensors")))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("studio: dreamy.safetensors could not be copied into ")


def test_a_copy_or_download_that_fails_midway_says_so_on_a_line_of_its_own(home, tmp_path):
    """The error was written onto the end of the progress line: "Copying big.safetensors: 39%studio: big…". A
    file-size limit (RLIMIT_FSIZE) stands in for a full disk: the write past it fails with "File too large"."""
    resource = pytest.importorskip("resource")
    unet = "model.diffusion_model."
    big = write(tmp_path / "big.safetensors", {  # an SD 1.x checkpoint's keys (as model_files.sd1's), 20 MB
        unet + "input_blocks.0.0.weight": (1, 4, 1, 1), unet + "out.0.weight": (20 * 2**20,),
        unet + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (1, 768),
        "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": (1, 1)})
    env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_DEVICE="cpu", PYTHONIOENCODING="utf-8",
               HF_HOME=str(tmp_path / "hf"), NO_PROXY="127.0.0.1")
    assert studio(home, "list").returncode == 0  # the settings and the folders are made without the limit

    def under_the_limit(*args: str) -> str:
        limited = subprocess.run(
            [sys.executable, "-m", "studio", "models", *args], env=env, cwd=home.parent, capture_output=True,
            stdin=subprocess.DEVNULL, timeout=120,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (12 * 2**20, 12 * 2**20)))
        assert limited.returncode == 2, limited.stderr
        return limited.stderr.decode("utf-8")

    copied = under_the_limit("import", str(big))
    assert copied.startswith("\rCopying big.safetensors: ") and copied.endswith(
        f"%\nstudio: big.safetensors could not be copied into {home / 'data' / 'models' / 'checkpoints'}: "
        "File too large.\n"), copied
    files = {"config.json": json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}).encode(),
             "diffusion_pytorch_model.safetensors": bytes(20 * 2**20)}
    with FakeHub({"tester/big-vae": FakeRepo(files)}) as hub:
        downloaded = under_the_limit("download", "tester/big-vae", "--endpoint", hub.url, "-y")
    assert downloaded.startswith("\r  0%  0 B of 20.0 MB  (0/2 files) config.json ") and downloaded.endswith(
        "\nstudio: Could not write tester/big-vae/diffusion_pytorch_model.safetensors into the models folder: File "
        "too large.\n"), downloaded


def test_linking_one_model_file_says_what_it_is_and_an_unusable_one_is_not_linked(home, tmp_path):
    """Linking a file said "0 usable model(s) found there" of a usable checkpoint (only folders were counted),
    and linked a corrupt file just the same."""
    model = sd1(tmp_path / "elsewhere" / "dreamy.safetensors")
    broken = tmp_path / "elsewhere" / "broken.safetensors"
    broken.write_bytes(b"\x05\0\0\0\0\0\0\0[1,2]")
    linked, listed, refused, listed_after = run_studio_commands(
        home, ["models", "link", str(model)], ["models", "list", "--json"], ["models", "link", str(broken)],
        ["models", "list", "--json"])
    assert (linked.returncode, linked.stdout) == (0, f"Linked {model}: SD 1.x, listed as dreamy.\n")
    assert {item["name"]: item for item in json.loads(listed.stdout)}["dreamy"]["source"] == f"linked: {model}"
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == ("studio: broken.safetensors is a corrupt safetensors file: its header does not start "
                              "with '{'. Nothing was linked.\n")
    assert listed_after.returncode == 0, listed_after.stderr
    assert {item["name"] for item in json.loads(listed_after.stdout)} == {"dreamy"}


def test_an_upscaler_goes_to_its_folder(home, tmp_path):
    result = studio(home, "import", str(esrgan(tmp_path / "4x-UltraSharp.safetensors")))
    assert result.returncode == 0 and "Upscaler (ESRGAN)" in result.stdout
    assert (home / "data" / "models" / "upscalers" / "4x-UltraSharp.safetensors").is_file()


def test_download_from_a_hub_and_the_recommended_list(home, tmp_path):
    files = {"config.json": json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}).encode(),
             "diffusion_pytorch_model.safetensors": b"\x08\0\0\0\0\0\0\0{}      "}
    with FakeHub({"tester/tiny-vae": FakeRepo(files)}) as hub:
        env = {"HF_HOME": str(tmp_path / "hf"), "NO_PROXY": "127.0.0.1"}
        result, listed, offline, recommended = run_studio_commands(home, *(["models", *args] for args in (
            ["download", "tester/tiny-vae", "--endpoint", hub.url, "-y"], ["list", "--json"],
            ["download", "tester/other", "--endpoint", "http://127.0.0.1:9", "-y"], ["recommended"])), env=env)
    assert result.returncode == 0, result.stderr
    assert "100%" in result.stderr and "Downloaded tester/tiny-vae" in result.stdout
    assert {item["name"]: item for item in json.loads(listed.stdout)}["tiny-vae"]["source"] == \
        "Hugging Face: tester/tiny-vae"
    assert offline.returncode == 2 and "offline" in offline.stderr
    assert "stabilityai/sd-turbo" in recommended.stdout and "about" in recommended.stdout


def test_a_download_with_no_terminal_to_ask_on_needs_yes_as_a_removal_does(home, tmp_path):
    """It asks "Download? [y/N]" on a terminal, but with none (a script, a pipe) it went ahead without asking,
    where `studio models remove` refuses."""
    files = {"config.json": json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}).encode(),
             "diffusion_pytorch_model.safetensors": b"\x08\0\0\0\0\0\0\0{}      "}
    with FakeHub({"tester/tiny-vae": FakeRepo(files)}) as hub:
        env = {"HF_HOME": str(tmp_path / "hf"), "NO_PROXY": "127.0.0.1"}
        result = studio(home, "download", "tester/tiny-vae", "--endpoint", hub.url, env=env)
        asked = list(hub.requests)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("studio: there is no terminal to ask on, so nothing was downloaded; pass -y (--yes) to "
                             "download tester/tiny-vae.\n")
    assert asked == [] and not (home / "data" / "models" / "tiny-vae").exists()


def test_generate_with_an_imported_single_file_checkpoint_by_name(studio_home, tmp_path, tiny_model_dir, capsys):
    """Through studio.cli.main in this process (the other tests here run the commands in subprocesses)."""
    models = studio_home / "data" / "models"
    shutil.copytree(tiny_model_dir, models / "configs" / "sd1", ignore=shutil.ignore_patterns("*.safetensors"))
    checkpoint = write_original_checkpoint(tiny_model_dir, tmp_path / "dreamy.safetensors")
    assert studio_here(capsys, "models", "import", str(checkpoint)).returncode == 0
    out = tmp_path / "fox.png"
    result = studio_here(capsys, "generate", "--model", "dreamy", "--prompt", "a fox", "--steps", "2", "--size",
                         "64x64", "--seed", "5", "--memory", "low", "--speed", "eager", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size == (64, 64) and "Model: dreamy" in image.info["parameters"]


def test_a_ckpt_is_imported_with_convert(home, tmp_path):
    import torch

    checkpoint = tmp_path / "ink.ckpt"
    torch.save({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.ones(4, 8),
                "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.ones(8, 4)}, checkpoint)
    refused, converted = run_studio_commands(home, ["models", "import", str(checkpoint)],
                                             ["models", "import", str(checkpoint), "--convert"])
    assert refused.returncode == 2 and "--convert" in refused.stderr
    assert converted.returncode == 0, converted.stderr
    assert (home / "data" / "models" / "loras" / "ink.safetensors").is_file()


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def undocumented(parser: argparse.ArgumentParser, name: str) -> list[str]:
    """Every argument of ``name``'s sub-commands that ``--help`` lists without a word about it."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                found += undocumented(sub, f"{name} {command}")
        elif not action.help and not isinstance(action, argparse._HelpAction):
            found.append(f"{name} {'/'.join(action.option_strings) or action.metavar or action.dest}")
    return found


def test_every_argument_of_studio_models_says_what_it_takes():
    """`studio models import --help` and `link --help` listed a bare PATH (link takes a folder or one file)."""
    from studio.cli import build_parser

    models = subcommands(build_parser())["models"]
    assert undocumented(models, "studio models") == []
    assert all(subcommands(models)[action].description for action in ("link", "remove"))


def test_commands_run_at_once_each_keep_their_change_to_the_linked_folders(home, tmp_path, monkeypatch, capsys):
    # Each read the settings at its start and saved them whole: of six `studio models link` run together, three
    # said "Linked" and were lost. Here two read the file at the same moment, as they did.
    import threading

    from studio.cli import build_parser
    from studio.cli_models import run_models
    from studio.core import settings as settings_module
    from studio.core import settings_writing

    monkeypatch.setenv("STUDIO_HOME", str(home))
    folders = [lora(tmp_path / f"l{n}" / "Lora" / f"ink{n}.safetensors").parent.parent for n in (1, 2)]
    read = settings_writing.read_settings
    together = threading.Barrier(2, timeout=1)

    def read_together(paths):  # noqa: ANN001, ANN202
        settings = read(paths)
        try:
            together.wait()  # where the file is read under the lock, the other waits for it: the wait times out
        except threading.BrokenBarrierError:
            pass
        return settings

    monkeypatch.setattr(settings_writing, "read_settings", read_together)
    codes: list[int] = []
    commands = [threading.Thread(target=lambda f=folder: codes.append(
        run_models(build_parser().parse_args(["models", "link", str(f)])))) for folder in folders]
    for command in commands:
        command.start()
    for command in commands:
        command.join()
    assert codes == [0, 0] and capsys.readouterr().out.count("Linked ") == 2
    monkeypatch.setattr(settings_writing, "read_settings", read)
    assert sorted(settings_module.load_settings().extra_model_paths) == folders


def test_linking_the_models_folder_or_a_linked_folder_again_is_said_and_a_gone_one_is_noted(home, tmp_path):
    models = home / "data" / "models"
    assert studio(home, "import", str(lora(tmp_path / "ink.safetensors"))).returncode == 0
    own = studio(home, "link", str(models))
    assert own.returncode == 2 and own.stderr == f"studio: {models} is Studio's own models folder; its models are " \
                                                 "in the library already, so there is nothing to link.\n"
    unplugged = tmp_path / "unplugged"
    lora(unplugged / "Lora" / "kohya.safetensors")
    assert studio(home, "link", str(unplugged)).stdout == f"Linked {unplugged}: 1 usable model(s) found there.\n"
    again = studio(home, "link", str(unplugged))
    assert again.returncode == 0 and again.stdout == f"{unplugged} is already linked: 1 usable model(s) found " \
                                                     "there.\n"
    assert listing(home)["kohya"]["kind"] == "lora"
    shutil.rmtree(unplugged)
    loras = studio(home, "list", "--kind", "lora", "--no-hash")
    assert loras.stdout.startswith("ink ") and loras.stderr == (
        f"note: The linked folder {unplugged} is not there (moved, or on a drive that is not plugged in), so its "
        f"models are not listed; they come back when it is, or unlink it with `studio models remove {unplugged}`.\n")


def test_a_downloaded_lora_is_filed_with_the_loras_and_the_same_one_is_not_kept_twice(home, tmp_path):
    ink = lora(tmp_path / "ink.safetensors")
    assert studio(home, "import", str(ink)).returncode == 0
    loras = home / "data" / "models" / "loras"
    with FakeHub({"tester/ink": FakeRepo({"ink.safetensors": ink.read_bytes()}),
                  "tester/kohya": FakeRepo({"kohya-ink.safetensors": write(tmp_path / "k.safetensors", {
                      "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 8),
                      "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": (8, 4)}, fill=3).read_bytes()})
                  }) as hub:
        env = {"HF_HOME": str(tmp_path / "hf"), "NO_PROXY": "127.0.0.1"}
        same = studio(home, "download", "tester/ink", "--endpoint", hub.url, "-y", env=env)
        other = studio(home, "download", "tester/kohya", "--endpoint", hub.url, "-y", env=env)
    assert same.returncode == 0 and same.stdout.endswith(f"Downloaded tester/ink to {loras / 'ink.safetensors'}.\n")
    assert same.stderr.endswith(f"note: tester/ink is the same model as {loras / 'ink.safetensors'}, which is in the "
                                "library already; the download was not kept twice.\n")
    assert other.returncode == 0 and f"into {home / 'data' / 'models'}\n" in other.stdout
    assert other.stdout.endswith(f"Downloaded tester/kohya to {loras / 'kohya-ink.safetensors'}.\n")
    items = listing(home)
    assert sorted(items) == ["ink", "kohya-ink"] and items["kohya-ink"]["source"] == "Hugging Face: tester/kohya"


def test_models_list_shows_a_bar_while_it_hashes_new_files_on_a_terminal_and_says_how_to_skip_it(
        home, tmp_path, monkeypatch, capsys):
    # Four new 1 GB files kept `studio models list` silent for 8.6 s on a terminal.
    import io

    from studio import cli_models
    from studio.cli import build_parser

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("STUDIO_HOME", str(home))
    for n in (1, 2):
        sd1(home / "data" / "models" / "checkpoints" / f"m{n}.safetensors", fill=n)
    size = sum(p.stat().st_size for p in (home / "data" / "models" / "checkpoints").iterdir())
    monkeypatch.setattr(cli_models, "HASH_NOTICE_BYTES", size, raising=False)
    listed = build_parser().parse_args(["models", "list"])

    def listing_on(terminal: bool) -> str:  # what it said on stderr
        if terminal:
            monkeypatch.setattr(sys, "stderr", Terminal())
        assert cli_models.run_models(listed) == 0
        captured = capsys.readouterr()
        assert captured.out.count(" SD 1.x ") == 2
        return sys.stderr.getvalue() if terminal else captured.err

    assert listing_on(terminal=False) == ""  # a script's stderr gets no bar
    (home / "cache" / "model-hashes.json").unlink()
    said = listing_on(terminal=True)
    assert said.startswith(f"Hashing 2 new models ({cli_models.format_size(size)}), once: hashes are kept "
                           "(--no-hash lists without them)…\n") and " 0%|" in said  # the bar
    assert listing_on(terminal=True) == ""  # kept: nothing to hash


def test_generate_with_a_single_file_of_another_size_than_its_configs_is_bad_input_in_a_sentence(home, tmp_path,
                                                                                                 tiny_model_dir):
    # It printed diffusers' "Cannot load  because … expected shape … github issue" and exited 1, after loading.
    checkpoint = write_original_checkpoint(tiny_model_dir, tmp_path / "a1111" / "linked-sd.safetensors")
    assert studio(home, "link", str(checkpoint)).returncode == 0
    result = run_studio(home, "generate", "--model", "linked-sd", "--prompt", "a fox", "-o", str(tmp_path / "x.png"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("studio: linked-sd.safetensors does not fit the SD 1.x layout Studio loads it "
                                    "with: its UNet's first layer (model.diffusion_model.input_blocks.0.0.weight) is "
                                    "8×4×3×3, where SD 1.x has 320×4×3×3.")


def test_importing_a_model_inside_a_linked_folder_says_it_is_in_the_library_and_copies_nothing(studio_home, tmp_path,
                                                                                                capsys):
    """It was copied into the models folder, and the model picker listed it twice."""
    comfy = tmp_path / "ComfyUI" / "models"
    model = sd1(comfy / "checkpoints" / "dreamy.safetensors")
    assert studio_here(capsys, "models", "link", str(comfy)).returncode == 0
    result = studio_here(capsys, "models", "import", str(model))
    assert result.returncode == 0 and result.stdout == (f"dreamy.safetensors is already in the library (linked from "
                                                        f"{comfy}); nothing was copied.\n")
    assert not (studio_home / "data" / "models" / "checkpoints").exists()
    listed = studio_here(capsys, "models", "list", "--json", "--no-hash")
    assert [item["name"] for item in json.loads(listed.stdout)] == ["dreamy"]


def test_an_import_whose_record_cannot_be_written_says_the_model_is_in_place_in_one_sentence(studio_home, tmp_path,
                                                                                             capsys):
    """It printed a traceback (IsADirectoryError from the record's write) after the copy was done."""
    models = studio_home / "data" / "models"
    (models / ".studio-imports.json").mkdir(parents=True)  # what even root cannot write a file over
    source = sd1(tmp_path / "dreamy.safetensors")
    result = studio_here(capsys, "models", "import", str(source))
    target = models / "checkpoints" / "dreamy.safetensors"
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.endswith(
        f"studio: dreamy.safetensors is in the library at {target}, but where it came from could not be written to "
        f"{models / '.studio-imports.json'} (Is a directory), so the library will not say where it was imported "
        "from.\n")
    assert target.read_bytes() == source.read_bytes()
    listed = studio_here(capsys, "models", "list", "--json", "--no-hash")
    assert [item["name"] for item in json.loads(listed.stdout)] == ["dreamy"]


@pytest.mark.timeout(60)
def test_a_named_pipe_named_as_weights_is_refused_in_a_sentence_and_nothing_waits_on_it(studio_home, tmp_path,
                                                                                          tiny_model_dir, capsys):
    """A named pipe called *.safetensors made import, link, list, a name lookup, --lora and remove wait for ever on
    its read (a link was saved and could not be undone)."""
    pipe = tmp_path / "pipe.safetensors"
    os.mkfifo(pipe)
    folder = tmp_path / "pipes"
    folder.mkdir()
    os.mkfifo(folder / "a.safetensors")
    os.mkfifo(folder / "b.ckpt")
    imported = studio_here(capsys, "models", "import", str(pipe))
    assert imported.returncode != 0 and imported.stderr.strip() == f"studio: {pipe} is a named pipe (FIFO), not a " \
                                                               "weights file."
    linked = studio_here(capsys, "models", "link", str(folder))
    assert linked.returncode == 0 and linked.stdout == f"Linked {folder}: 0 usable model(s) found there, and 2 files " \
                                                      "Studio cannot use.\n", linked.stderr
    listed = studio_here(capsys, "models", "list")
    assert f"{folder / 'a.safetensors'} is a named pipe (FIFO), not a weights file." in listed.stdout
    assert f"{folder / 'b.ckpt'} is a named pipe (FIFO), not a weights file." in listed.stdout
    assert "same file as" not in listed.stdout  # nothing was read for a hash
    out = str(tmp_path / "out.png")
    unknown = studio_here(capsys, "generate", "--model", "nosuch", "--prompt", "x", "-o", out)
    assert unknown.returncode == 2 and "No model file or folder named 'nosuch'" in unknown.stderr
    lora = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--lora", str(pipe), "--prompt", "x",
                       "-o", out)
    assert lora.returncode == 2 and f"{pipe} is a named pipe (FIFO), not a weights file." in lora.stderr
    as_model = studio_here(capsys, "generate", "--model", str(pipe), "--prompt", "x", "-o", out)
    assert as_model.returncode == 2 and f"{pipe} is a named pipe (FIFO), not a weights file." in as_model.stderr
    in_prompt = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "x <lora:zzz>", "-o", out)
    assert in_prompt.returncode == 2 and "zzz" in in_prompt.stderr
    removed = studio_here(capsys, "models", "remove", str(folder), "-y")
    assert removed.returncode == 0 and "Unlinked" in removed.stdout, removed.stderr


@pytest.mark.skipif(os.name != "posix", reason="the system folders are POSIX ones")
def test_the_root_or_a_system_folder_is_not_linked_as_the_models_folder_is_not_set_there(studio_home, capsys):
    """`models link /` (or /proc, /dev) was saved: `models list` then took seconds over ~1,400 of the system's
    files (/proc/4275/cwd/...)."""
    for folder, why in (("/", "is the root of the filesystem, not a folder for models"),
                        ("/proc", "is a system folder, which cannot hold models"),
                        ("/dev", "is a system folder, which cannot hold models")):
        refused = studio_here(capsys, "models", "link", folder)
        assert (refused.returncode, refused.stderr) == (2, f"studio: {folder} {why}; nothing was linked.\n")
    listed = studio_here(capsys, "models", "list", "--json", "--no-hash")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def lora_checkpoint_with_more(path: Path) -> Path:
    """A LoRA's weights under 'state_dict', with a step count among them and the training's epoch beside them."""
    import torch

    torch.save({"state_dict": {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.ones(4, 8),
                               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.ones(8, 4),
                               "step": 7},
                "epoch": 3}, path)
    return path


CONVERSION_NOTES = ["note: Wrote only the weights under 'state_dict'; left out the rest of the checkpoint: epoch.",
                    "note: Left out 1 value that is not a tensor: step (int)."]


def test_an_import_with_convert_says_what_the_conversion_left_out(studio_home, tmp_path, capsys):
    # convert-weights said these; models import --convert kept quiet about what it left out.
    checkpoint = lora_checkpoint_with_more(tmp_path / "ink.pt")
    done = studio_here(capsys, "models", "import", str(checkpoint), "--convert")
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("note: ")] == CONVERSION_NOTES
    converted = studio_here(capsys, "convert-weights", str(checkpoint), str(tmp_path / "ink.safetensors"))
    assert [line for line in converted.stderr.splitlines() if line.startswith("note: ")] == CONVERSION_NOTES


def test_an_import_with_convert_of_a_sparse_tensor_is_one_sentence_and_leaves_nothing(studio_home, tmp_path, capsys):
    # A traceback (exit 1): "unsupported memory format option Contiguous".
    import torch

    checkpoint = tmp_path / "sparse.pth"
    torch.save({"s": torch.ones(3, 3).to_sparse()}, checkpoint)
    done = studio_here(capsys, "models", "import", str(checkpoint), "--convert")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (f"studio: {checkpoint} holds a sparse tensor 's', which a safetensors "
                                            "file cannot store; it was not converted.")
    listed = studio_here(capsys, "models", "list", "--json", "--no-hash")
    assert json.loads(listed.stdout) == []


def test_a_converted_import_names_the_file_given_and_says_what_was_left_out_however_it_ends(
        studio_home, tmp_path, capsys):
    # "mo.safetensors is a safetensors file, but not a kind of model…" named Studio's temporary file, and the
    # conversion's notes were said only for a new import: not on that refusal, nor for a model already there.
    import torch

    unknown = tmp_path / "mo.pth"
    torch.save({"model": {"m1": torch.ones(2)}, "optimizer": {"o": torch.ones(1)}}, unknown)
    refused = studio_here(capsys, "models", "import", str(unknown), "--convert")
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[1:] == [
        "studio: mo.pth, converted, is a safetensors file, but not a kind of model Studio knows (checkpoint, LoRA, "
        "VAE, ControlNet, upscaler, IP-Adapter, embedding or style weights).",
        "note: Wrote only the weights under 'model'; left out the rest of the checkpoint: optimizer."]

    checkpoint = lora_checkpoint_with_more(tmp_path / "ink.pt")
    assert studio_here(capsys, "models", "import", str(checkpoint), "--convert").returncode == 0
    again = studio_here(capsys, "models", "import", str(lora_checkpoint_with_more(tmp_path / "ink2.pt")), "--convert")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"ink2.pt, converted, is already in the library as {studio_home}/data/models/loras/ink.safetensors."]
    assert [line for line in again.stderr.splitlines() if line.startswith("note: ")] == CONVERSION_NOTES


def test_a_download_address_that_answers_with_a_web_page_is_one_sentence_and_bad_input(home, tmp_path):
    """A login portal's HTML page was a JSONDecodeError traceback and exit 1."""
    with FakeHub({}, odd_listing=("text/html", b"<html>login portal</html>")) as hub:
        result = studio(home, "download", "tester/x", "--endpoint", hub.url, "-y",
                        env={"HF_HOME": str(tmp_path / "hf"), "NO_PROXY": "127.0.0.1"})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"studio: The address {hub.url} did not answer like a Hugging Face model hub when asked "
                             "for tester/x (a login page, or a mistyped mirror?); check the address, or sign in to "
                             "the network in a browser first.\n")


def test_a_hub_that_dies_mid_download_is_one_sentence_that_says_run_it_again_to_resume(home, tmp_path):
    """huggingface_hub's "Trying to resume download..." / "Max retries exceeded." reached the terminal five times,
    then "Could not reach the model hub ...; Studio may be offline", though the partial file was kept."""
    files = {"config.json": json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}).encode(),
             "diffusion_pytorch_model.safetensors": bytes(2 * 2**20)}
    hub = FakeHub({"tester/vae": FakeRepo(files)}, chunk=4096, delay=0.001,
                  cut_after={"diffusion_pytorch_model.safetensors": 200_000}, cut_with_reset=False)
    with hub:
        url = hub.url

        def die_once_the_file_flows() -> None:  # the listener closes; then the transfer, as a killed server's
            while not hub.file_gets("diffusion_pytorch_model.safetensors"):
                threading.Event().wait(0.01)
            hub.__exit__()

        killer = threading.Thread(target=die_once_the_file_flows)
        killer.start()
        result = studio(home, "download", "tester/vae", "--endpoint", url, "-y",
                        env={"HF_HOME": str(tmp_path / "hf"), "NO_PROXY": "127.0.0.1"})
        killer.join()
        hub._server = None
    assert result.returncode == 2 and "Trying to resume" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.endswith(
        "\nstudio: The connection to the model hub broke while fetching tester/vae/diffusion_pytorch_model.safetensors "
        "(Connection refused), so the download stopped; run the download again to resume where it stopped.\n"), \
        result.stderr
    assert "Trying to resume download" in (home / "data" / "studio.log").read_text()
