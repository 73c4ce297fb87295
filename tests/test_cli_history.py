"""``studio history search|show|rerun`` in subprocesses, on a history made by one real ``studio generate`` (the
commands a test runs one after another share a process where nothing happens between them)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_testing import (
    requests_run,
    run_studio,
    run_studio_commands,
    studio_here,
    why_root_cannot_give_up_writes,
)

from studio.core.hashing import model_hash
from studio.services.history_store import HistoryEntry

PROMPT = 'a fox \x1b[31min red\x1b[0m, "snow"\nsecond line ü 狐'


def studio(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_studio(home, *args, timeout=timeout)


@pytest.fixture(scope="module")
def made(tiny_model_dir, tmp_path_factory) -> dict:
    """One inpaint job of two images through ``studio generate``: the history it left, and its files."""
    root = tmp_path_factory.mktemp("cli-history")
    home, out = root / "home", root / "out"
    out.mkdir()
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8), "RGB")
    picture.save(root / "picture.png")
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (8, 8, 40, 30))
    mask.save(root / "mask.png")
    result = studio(home, "generate", "--model", str(tiny_model_dir), "--prompt", PROMPT, "--negative", "blurry",
                    "--seed", "77", "--steps", "2", "--cfg", "5", "--scheduler", "Euler", "--batch-count", "2",
                    "--init-image", str(root / "picture.png"), "--mask", str(root / "mask.png"),
                    "--strength", "0.8", "--whole-picture", "--feather", "2", "-o", str(out / "fox.png"))
    assert result.returncode == 0, result.stderr
    return {"root": root, "home": home, "out": out, "model": tiny_model_dir, "picture": picture, "mask": mask}


def copy_home(made: dict, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(made["home"], home)
    return home


def sql(home: Path, statement: str, *args: object) -> None:
    conn = sqlite3.connect(home / "data" / "history.db")
    with conn:
        conn.execute(statement, args)
    conn.close()


def test_generate_records_its_job_and_search_and_show_print_it(made):
    home = made["home"]
    found, nothing, other_model, starred, table, shown, human = run_studio_commands(
        home, ["history", "search", "fox", "sno", "--json"], ["history", "search", "nothing-like-this", "--json"],
        ["history", "search", "--model", "other", "--json"], ["history", "search", "--starred", "--json"],
        ["history", "search", "--limit", "1"], ["history", "show", "1", "--json"], ["history", "show", "1"])
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert [r["id"] for r in rows] == [2, 1]
    assert set(rows[0]) == {f.name for f in fields(HistoryEntry)}  # exactly the entry's fields
    assert [r["seed"] for r in rows] == [78, 77]
    for row in rows:
        assert row["prompt"] == PROMPT and row["negative_prompt"] == "blurry"
        assert (row["steps"], row["cfg_scale"], row["sampler"], row["strength"]) == (2, 5.0, "Euler", 0.8)
        assert (row["width"], row["height"]) == (64, 48)
        assert row["model_name"] == made["model"].name and row["model_path"] == str(made["model"])
        assert row["model_hash"] == model_hash(made["model"])
        assert (row["generator"], row["outcome"], row["postprocess"]) == ("diffusers", "ok", [])
        assert row["generator_version"]
        assert row["params"]["inpaint"] == {"masked_only": False, "padding": 32, "fill": "original", "feather": 2.0}
        assert Path(row["image_path"]).is_file() and Path(row["image_path"]).is_relative_to(home)
        assert Path(row["source_image_path"]).is_file() and Path(row["source_mask_path"]).is_file()
    # The outputs-folder copy is the picture written to -o.
    with Image.open(rows[1]["image_path"]) as kept, Image.open(made["out"] / "fox-1.png") as written:
        assert np.array_equal(np.asarray(kept), np.asarray(written))
    assert json.loads(nothing.stdout) == []
    assert json.loads(other_model.stdout) == []
    assert json.loads(starred.stdout) == []

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "DATE", "MODEL", "SEED", "OUTCOME", "PROMPT"]
    assert len(lines) == 2 and lines[1].split()[0] == "2" and " 78 " in lines[1]
    assert "\x1b" not in table.stdout and "\\x1b[31m" in lines[1]  # recorded text is shown escaped
    assert table.stderr == "note: 1 of 2 entries are shown; --limit shows more.\n"  # a notice, said as all are

    assert json.loads(shown.stdout) == rows[1]
    assert human.returncode == 0 and "\x1b" not in human.stdout
    assert "Seed 77" in human.stdout and "Strength 0.8" in human.stdout and "Mask:" in human.stdout
    assert re.search(r"Took: +\d+\.\d+ s\n", human.stdout), human.stdout  # as the window and generate say it


def test_unknown_ids_and_bad_options_are_one_sentence_and_exit_2(made, tmp_path):
    home = made["home"]
    refusals = (("show", "999"), ("rerun", "999", "-o", str(tmp_path / "x.png")),
                ("rerun", "1", "-o", str(tmp_path / "x.gif")), ("search", "--limit", "0"))
    results = run_studio_commands(home, *(["history", *args] for args in refusals))
    for args, result in zip(refusals, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("studio: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "There is no history entry 999" in results[0].stderr
    assert not (tmp_path / "x.png").exists()


def test_rerun_remakes_the_picture_exactly_warns_about_a_changed_model_and_is_recorded(made, tmp_path, monkeypatch,
                                                                                     capsys):
    """Through studio.cli.main in this process: the subprocess runs of the rerun are the read-only history's test
    and test_cli_control's guided picture."""
    home = copy_home(made, tmp_path)
    monkeypatch.setenv("STUDIO_HOME", str(home))
    sql(home, "UPDATE entries SET model_hash = '0000000000' WHERE id = 2")
    result = studio_here(capsys, "history", "rerun", "2", "-o", str(tmp_path / "again.png"))
    assert result.returncode == 0, result.stderr
    assert "note: The model file changed since history entry 2 was made (hash 0000000000 then" in result.stderr
    with Image.open(tmp_path / "again.png") as again, Image.open(made["out"] / "fox-2.png") as original:
        assert np.array_equal(np.asarray(again), np.asarray(original))  # same seed, settings, source and mask
    rows = json.loads(studio_here(capsys, "history", "search", "--json").stdout)
    assert [r["id"] for r in rows] == [3, 2, 1]
    new = rows[0]
    assert new["seed"] == 78 and new["params"]["batch_count"] == 1 and new["prompt"] == PROMPT
    assert new["model_hash"] == model_hash(made["model"])  # the hash of the model actually used
    with Image.open(new["source_mask_path"]) as mask:
        assert np.array_equal(np.asarray(mask), np.asarray(made["mask"]))


def test_search_show_and_rerun_read_a_history_studio_may_not_write(made, tmp_path):
    """On a read-only data folder every history command failed: 'could not be opened for writing'. The commands
    run by a user bound by file permissions (root too). The outputs folder in it may still be written: the rerun's
    picture is kept there (it was not, without a word, where the history could not record it)."""
    if why := why_root_cannot_give_up_writes():
        pytest.skip(why)
    home = copy_home(made, tmp_path)
    data = home / "data"
    assert not (data / "history.db-wal").exists()  # closed by the generate that made it
    files = sorted(data.rglob("*"))
    before = (data / "history.db").read_bytes()
    outputs = data / "outputs"
    read_only = [path for path in [data, *files] if not (path.is_dir() and path.is_relative_to(outputs))]
    for path in read_only:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        probe, shown, again = run_studio_commands(
            home, ["history", "search", "fox", "--json"], ["history", "show", "2"],
            ["history", "rerun", "2", "-o", str(tmp_path / "again.png")], bound_by_permissions=True)
        assert probe.returncode == 0, probe.stderr
        assert [r["id"] for r in json.loads(probe.stdout)] == [2, 1] and probe.stderr == ""
        assert shown.returncode == 0 and shown.stdout.startswith("Entry 2\n"), shown.stderr
        assert again.returncode == 0, again.stderr
        assert (f"note: Studio may not write to the history database {data / 'history.db'}; this job is not recorded "
                "in the history.") in again.stderr
        with Image.open(tmp_path / "again.png") as remade, Image.open(made["out"] / "fox-2.png") as original:
            assert np.array_equal(np.asarray(remade), np.asarray(original))
    finally:
        for path in read_only:
            path.chmod(0o755 if path.is_dir() else 0o644)
    new = sorted(set(data.rglob("*")) - set(files))
    assert len(new) == 1 and new[0].parent.parent == outputs and new[0].suffix == ".png"
    with Image.open(new[0]) as kept, Image.open(tmp_path / "again.png") as remade:
        assert np.array_equal(np.asarray(kept), np.asarray(remade))
    assert (data / "history.db").read_bytes() == before  # nothing else written: not recorded


def test_rerun_refuses_when_the_model_or_a_source_file_is_gone(made, tmp_path):
    home = copy_home(made, tmp_path)
    sql(home, "UPDATE entries SET model_path = ? WHERE id = 1", str(tmp_path / "no-such-model"))
    gone_model = studio(home, "history", "rerun", "1", "-o", str(tmp_path / "a.png"))
    assert gone_model.returncode == 2
    assert gone_model.stderr.strip() == (f"studio: The model {made['model'].name} is gone, so history entry 1 cannot "
                                         f"be run again; {tmp_path / 'no-such-model'} no longer exists.")
    entry = json.loads(studio(home, "history", "show", "2", "--json").stdout)
    Path(entry["source_mask_path"].replace(str(made["home"]), str(home))).unlink()
    sql(home, "UPDATE entries SET source_mask_path = replace(source_mask_path, ?, ?)", str(made["home"]), str(home))
    gone_mask = studio(home, "history", "rerun", "2", "-o", str(tmp_path / "b.png"))
    assert gone_mask.returncode == 2
    assert "The mask" in gone_mask.stderr and "of history entry 2 no longer exists." in gone_mask.stderr
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_show_and_rerun_keep_the_hires_fix(studio_home, tiny_model_dir, capsys):
    from studio.cli import main
    from studio.core.hires import HiresFix
    from studio.core.paths import studio_paths
    from studio.services.history_reuse import request_for_entry
    from studio.services.history_store import HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a tower", model_path=str(tiny_model_dir), width=512, height=640,
                                      steps=20, params={"hires": {"scale": 2, "steps": 10, "strength": 0.4,
                                                                  "upscaler": "Lanczos"}}))
    entry = store.get(entry_id)
    store.close()
    assert request_for_entry(entry).hires == HiresFix(2.0, 10, 0.4)
    assert main(["history", "show", str(entry_id)]) == 0
    assert "  Hires fix:   2× with Lanczos → 1024×1280, 10 steps, strength 0.4" in capsys.readouterr().out.splitlines()


def test_rerun_runs_the_way_the_person_s_settings_say(studio_home, tiny_model_dir, tmp_path, monkeypatch):
    # ``studio history rerun`` once ran with the request's defaults (speed "fast"), not the person's settings.
    from studio.cli import main
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings
    from studio.services.history_store import HistoryStore

    settings = load_settings()
    settings.memory, settings.speed = "low", "eager"
    save_settings(settings)
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a tower", model_path=str(tiny_model_dir), seed=5, steps=2))
    store.close()
    ran = requests_run(monkeypatch)
    assert main(["history", "rerun", str(entry_id), "-o", str(tmp_path / "again.png")]) == 0
    assert [(r.memory, r.speed, r.seed) for r in ran] == [("low", "eager", 5)]


def test_rerun_warns_of_each_lora_vae_and_controlnet_that_changed_or_is_gone(studio_home, tiny_model_dir, tmp_path,
                                                                              monkeypatch, capsys):
    from dataclasses import replace

    from recorded_files import CONTROLNET_BYTES, CONTROLNET_KEY, made_with_files, weights_file

    from studio.cli import main
    from studio.core.hashing import controlnet_hash, lora_hash, model_hash
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.services.history_store import HistoryStore

    models = load_settings().models_dir
    entry = made_with_files(models, tmp_path / "out")
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(replace(entry, model_path=str(tiny_model_dir)))
    store.close()
    then = {"ink": lora_hash(models / "loras" / "ink.safetensors"), "soft": model_hash(models / "vae" /
            "soft.safetensors"), "canny": controlnet_hash(models / "controlnet" / "canny.safetensors")}
    ink = lora_hash(weights_file(models / "loras" / "ink.safetensors", 9))
    canny = controlnet_hash(weights_file(models / "controlnet" / "canny.safetensors", 9, CONTROLNET_BYTES,
                                             CONTROLNET_KEY))
    (models / "vae" / "soft.safetensors").unlink()
    ran = requests_run(monkeypatch)
    assert main(["history", "rerun", str(entry_id), "-o", str(tmp_path / "again.png")]) == 2
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "made with" in line]
    assert warnings == [  # notices, said as every other, then the gone VAE refuses the job (as generate does)
        (f"note: The LoRA 'ink' is not the file this picture was made with (hash {then['ink']}, now {ink}): the "
         "result will differ."),
        (f"note: The VAE 'soft' this picture was made with (hash {then['soft']}) is missing, so it cannot be made "
         "the same way again."),
        (f"note: The ControlNet 'canny' is not the file this picture was made with (hash {then['canny']}, now "
         f"{canny}): the result will differ.")]
    assert "No VAE named 'soft' was found" in err and ran == []
    weights_file(models / "vae" / "soft.safetensors", 9)
    assert main(["history", "rerun", str(entry_id), "-o", str(tmp_path / "again.png")]) == 0
    assert "The VAE 'soft' is not the file this picture was made with" in capsys.readouterr().err
    assert len(ran) == 1  # a warning, not a refusal: the person may want the new files' picture


def test_search_escapes_model_names(studio_home, capsys):
    from studio.cli import main
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    store.add(HistoryEntry(prompt="a fox", model_name="m\x1b]0;owned\x07\x1b[2J"))
    store.close()
    assert main(["history", "search"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "m\\x1b]0;owned\\x07" in out


def test_a_row_with_a_date_out_of_range_is_listed_with_an_unknown_date(studio_home, capsys):
    from studio.cli import main
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    odd = store.add(HistoryEntry(prompt="ms timestamp", created=1e12))  # year 33658: datetime cannot hold it
    store.add(HistoryEntry(prompt="normal", created=1.7e9))
    store.close()
    assert main(["history", "search"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("unknown date" in line and "ms timestamp" in line for line in lines)
    assert any("2023-11-1" in line and "normal" in line for line in lines)  # the rest of the listing is kept
    assert main(["history", "show", str(odd)]) == 0
    assert "Date:        unknown date" in capsys.readouterr().out


def test_rerun_of_an_entry_whose_generator_or_post_processor_is_gone_names_it_not_an_option(studio_home, capsys,
                                                                                             tmp_path):
    # It said "No generator called 'chatty' is installed and enabled; --generator takes one of: …": rerun has no
    # --generator (nor --post).
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    made_by = store.add(HistoryEntry(prompt="a fox", generator="chatty", seed=9, width=64, height=48))
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    chained = store.add(HistoryEntry(prompt="a fox", generator="diffusers", model_path=str(model), seed=9,
                                     width=64, height=48,
                                     params={"post": [{"processor": "gone-look", "params": {}, "strength": 1.0}]}))
    store.close()
    for entry_id, what in ((made_by, "generator 'chatty'"), (chained, "post-processor 'gone-look'")):
        done = studio_here(capsys, "history", "rerun", str(entry_id), "-o", str(tmp_path / "x.png"))
        assert (done.returncode, done.stderr) == (2, f"studio: Entry {entry_id} was made by the {what}, which is not "
                                                     "installed (or switched off); install or enable it to run it "
                                                     "again.\n")
    assert not (tmp_path / "x.png").exists()


def test_search_by_model_ignores_case(studio_home, capsys):
    from studio.cli import main
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    store.add(HistoryEntry(prompt="a fox", model_name="DreamShaper"))
    store.add(HistoryEntry(prompt="an owl", model_name="other"))
    store.close()
    assert main(["history", "search", "--model", "dreamshaper"]) == 0
    out = capsys.readouterr().out
    assert "DreamShaper" in out and "a fox" in out and "an owl" not in out


def test_search_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    import os
    import sys

    from studio.services.history_store import HistoryStore

    home = tmp_path / "home"
    store = HistoryStore(home / "data" / "history.db")
    store.add_many([HistoryEntry(prompt=f"picture number {i} " * 4, model_name="tiny-sd") for i in range(3000)])
    store.close()
    env = dict(os.environ, STUDIO_HOME=str(home), PYTHONIOENCODING="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "studio", "history", "search", "--limit", "3000"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout.readline().split()[0] == b"ID"  # `| head -1`: one line read, then the pipe closes
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(60) == 141  # as for cat or grep killed by SIGPIPE
    assert stderr == ""  # no traceback, no "Exception ignored"


def test_show_lists_the_control_guides_and_marks_a_missing_picture(studio_home, tmp_path, capsys):
    from studio.cli import main
    from studio.core.control import ControlGuide
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    kept = tmp_path / "sources" / "101010-0123456789-control.png"
    kept.parent.mkdir()
    Image.new("RGB", (8, 8)).save(kept)
    records = [ControlGuide("canny-sd15", preprocessor="canny", weight=0.8, end=0.6, low_threshold=50,
                            high_threshold=150, image_path=str(kept)).to_record("c0ffee"),
               ControlGuide("lines\x1b[2J", preprocessor="invert", start=0.2,
                            image_path=str(tmp_path / "gone.png")).to_record(),
               {"model": "depth", "weight": "strong"}]
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a tower", params={"controls": records}))
    store.close()
    assert main(["history", "show", str(entry_id)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("  ControlNet")] == [
        f"  ControlNet 1: canny-sd15 [c0ffee], preprocessor canny (thresholds 50 and 150), weight 0.8, steps 0 to 0.6, "
        f"picture {kept}",
        f"  ControlNet 2: lines\\x1b[2J, preprocessor invert, weight 1, steps 0.2 to 1, picture {tmp_path / 'gone.png'}"
        "  (missing)",
        "  ControlNet 3: (a record Studio cannot read)"]
    assert main(["history", "show", str(entry_id), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["controls"] == records


def test_a_search_word_that_starts_with_a_dash_is_refused_with_how_to_give_it(studio_home, capsys):
    """argparse took "-known" for an option: studio's own usage and "unrecognized arguments", nothing on how."""
    from studio.cli import main
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    store.add(HistoryEntry(prompt="a fox, -known"))
    store.close()
    with pytest.raises(SystemExit) as exit_:
        main(["history", "search", "fox", "-known", "--limit", "3"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: studio history search ")
    assert err.endswith("studio history search: error: unrecognized arguments: -known; to find words that start "
                        "with '-', give the words after --: studio history search -- fox -known\n")
    assert main(["history", "search", "--json", "--", "fox", "-known"]) == 0
    assert [row["prompt"] for row in json.loads(capsys.readouterr().out)] == ["a fox, -known"]
    with pytest.raises(SystemExit):  # other actions take no words: argparse's own error, with the action's usage
        main(["history", "show", "-x", "1"])
    assert "\nstudio history show: error: unrecognized arguments: -x\n" in capsys.readouterr().err


def test_show_lists_the_loras_the_vae_and_the_post_processing_chain(studio_home, capsys):
    # LoRAs and the VAE were only in the raw Parameters JSON, where hires fix and ControlNet had lines of their own.
    from studio.cli import main
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    params = {"loras": [{"name": "ink", "weight": 1.0, "hash": "51333a97cda7"}, {"name": "paper", "weight": 0.25},
                        "junk"], "vae": "tiny-vae", "vae_hash": "642f4f647f"}
    post = [{"processor": "darken", "params": {"factor": 0.5}, "strength": 1.0},
            {"processor": "film-look", "params": {"grain": 0.4}, "strength": 0.3}]
    entry_id = store.add(HistoryEntry(prompt="a tower", params=params, postprocess=post))
    store.close()
    assert main(["history", "show", str(entry_id)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith(("  LoRA", "  VAE", "  Post"))] == [
        "  LoRA 1:      ink [51333a97cda7], weight 1",
        "  LoRA 2:      paper, weight 0.25",
        "  VAE:         tiny-vae [642f4f647f]",
        "  Post-processing: darken (factor 0.5) > film-look (grain 0.4), strength 0.3"]


def test_rerun_of_an_entry_whose_chain_picture_is_gone_is_refused_before_the_job(studio_home, tiny_model_dir,
                                                                                 tmp_path, monkeypatch, capsys):
    # The job ran without the step, said "choose another picture for it in the post-processing chain" (the window's
    # words) and exited 0: not the entry's picture, and nothing said so to a script.
    from studio.cli import main
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    gone = tmp_path / "gone.png"
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a tower", model_path=str(tiny_model_dir), seed=5, steps=2, params={
        "post": [{"processor": "color", "params": {"style": str(gone)}, "strength": 1.0}]}))
    store.close()
    ran = requests_run(monkeypatch)
    assert main(["history", "rerun", str(entry_id), "-o", str(tmp_path / "again.png")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"studio: Colour Transfer: Style picture: the picture {gone} does not exist. Put it back there to run entry "
        f"{entry_id} again."]
    assert not ran


def test_a_plugin_job_s_entry_shows_only_what_its_generator_took_and_names_it(studio_home, capsys):
    # show gave "Steps 20, Sampler Euler a, CFG scale 7" (Studio's defaults, which a plugin never uses) and an empty
    # model path; search gave a failed plugin job an empty MODEL column.
    from studio.cli import main
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a plugin's fox", generator="procedural", model_name="", steps=20,
                                      sampler="Euler a", cfg_scale=7, seed=9, width=64, height=48,
                                      outcome="failed", message="It broke."))
    store.close()
    assert main(["history", "show", str(entry_id)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "  Settings:    Seed 9, Size 64x48" in shown
    assert not [line for line in shown if line.startswith("  Model path:")]
    assert main(["history", "search", "fox"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.split()[3:5] == ["procedural", "9"], row


def test_generate_says_the_entries_it_added_once_another_program_let_go_of_the_history(studio_home, tiny_model_dir,
                                                                                      tmp_path, monkeypatch, capsys):
    # Entries kept while the history was locked (one left in the journal by a Studio killed meanwhile, one of this
    # job) and added when the command closed the history were added silently: only the log said so.
    import studio.cli_history as cli_history
    from history_testing import Locker, entry, prompts_on_disk

    from studio.core.paths import studio_paths
    from studio.services import history_store

    class QuickHistoryStore(history_store.HistoryStore):  # another program's lock is waited for briefly
        def __init__(self, path: Path, *, busy_timeout: float = 0.2, read_only: bool = False) -> None:
            super().__init__(path, busy_timeout=busy_timeout, read_only=read_only)

    monkeypatch.setattr(history_store, "HistoryStore", QuickHistoryStore)
    path = studio_paths().data_dir / "history.db"
    killed = QuickHistoryStore(path)
    locker = Locker(path)
    killed.keep_for_later(entry("kept by a killed Studio"))
    del killed
    said_before = cli_history.say_note

    def other_program_ends_while_studio_waits(text: str) -> None:
        said_before(text)
        if text.startswith("Waiting for the history database"):
            locker.release()

    monkeypatch.setattr(cli_history, "say_note", other_program_ends_while_studio_waits)
    result = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--steps", "1",
                         "--size", "64x64", "-o", str(tmp_path / "fox.png"))
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert notes[-2:] == [f"note: Waiting for the history database {path}, locked by another program…",
                          "note: The history database is free again: 2 entries kept while it was locked were added "
                          "to the history."]
    assert sum("were added to the history" in note for note in notes) == 1  # said once
    assert prompts_on_disk(path) == ["kept by a killed Studio", "a fox"]


@pytest.mark.parametrize("action", [["search"], ["show", "1"]])
def test_reading_the_history_does_not_wait_for_another_programs_lock(action, studio_home, capsys):
    # search and show opened the history to write: an entry a killed Studio left in the journal, which could not be
    # added while another program held the lock, made their close wait the full 5 s for that lock.
    import time

    from history_testing import Locker, entry, prompts_on_disk

    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    path = studio_paths().data_dir / "history.db"
    killed = HistoryStore(path)
    killed.add(entry("a fox"))
    locker = Locker(path)
    try:
        killed.keep_for_later(entry("kept by a killed Studio"))
        del killed
        started = time.monotonic()
        result = studio_here(capsys, "history", *action)
        took = time.monotonic() - started
    finally:
        locker.release()
    assert result.returncode == 0, result.stderr
    assert "a fox" in result.stdout
    assert took < 2.0, f"history {action[0]} took {took:.1f} s"
    assert ("note: 1 entry could not be added to the history yet (the pictures are kept): " in result.stderr
            and "Studio adds it the next time it opens the history." in result.stderr)
    assert prompts_on_disk(path) == ["a fox"]
    again = studio_here(capsys, "history", "search")  # once the lock is gone, the next open adds it: nothing lost
    assert "kept by a killed Studio" in again.stdout
    assert prompts_on_disk(path) == ["a fox", "kept by a killed Studio"]


def test_rerun_in_safe_mode_of_a_plugin_s_entry_says_safe_mode_switched_it_off(studio_home, capsys, tmp_path,
                                                                              monkeypatch):
    # It said "…which is not installed (or switched off); install or enable it…": it is installed and enabled, and
    # only --safe-mode kept it from loading.
    from types import SimpleNamespace

    import studio.cli_plugins
    from studio.core.paths import studio_paths
    from studio.plugin_host.host import SAFE_MODE
    from studio.plugin_host.registry import GENERATOR, builtin_registry
    from studio.services.history_store import HistoryStore

    store = HistoryStore(studio_paths().data_dir / "history.db")
    made_by = store.add(HistoryEntry(prompt="a fox", generator="chatty", seed=9, width=64, height=48))
    store.close()
    rerun = ("history", "rerun", str(made_by), "-o", str(tmp_path / "x.png"))
    done = studio_here(capsys, "--safe-mode", *rerun)  # no plugin installed: safe mode would not load it either
    assert (done.returncode, done.stderr) == (2, f"studio: Entry {made_by} was made by the generator 'chatty', which "
                                                 "is not installed, and --safe-mode switches every plugin off; "
                                                 "install it and run it without --safe-mode to run it again.\n")
    host = SimpleNamespace(registry=builtin_registry(), records=[SimpleNamespace(id="chat", status=SAFE_MODE)],
                           taken_contributions=lambda: {(GENERATOR, "chatty"): ("chat", "Chatty")})
    monkeypatch.setattr(studio.cli_plugins, "open_host", lambda safe_mode=False: host)
    done = studio_here(capsys, "--safe-mode", *rerun)
    assert (done.returncode, done.stderr) == (2, f"studio: Entry {made_by} was made by the generator 'chatty' of the "
                                                 "plugin Chatty, and --safe-mode switched every plugin off; run it "
                                                 "without --safe-mode to run it again.\n")
    assert not (tmp_path / "x.png").exists()


def test_rerun_of_an_entry_whose_steps_and_strength_run_no_step_says_they_are_the_entry_s(studio_home, capsys,
                                                                                         tmp_path):
    # It said "…; raise the steps or the strength.", which rerun cannot: they are the entry's, as recorded.
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    model = tmp_path / "model"
    model.mkdir()
    source = tmp_path / "source.png"
    Image.new("RGB", (64, 64)).save(source)
    store = HistoryStore(studio_paths().data_dir / "history.db")
    img2img = store.add(HistoryEntry(prompt="a fox", model_path=str(model), seed=9, width=64, height=64, steps=1,
                                     strength=0.5, source_image_path=str(source)))
    hires = store.add(HistoryEntry(prompt="a fox", model_path=str(model), seed=9, width=64, height=64, steps=4,
                                   params={"hires": {"scale": 1.5, "steps": 1, "strength": 0.3, "upscaler": ""}}))
    store.close()
    for entry_id, said in ((img2img, "With 1 step and a strength of 0.5 no denoising step would run"),
                           (hires, "With 1 step and a strength of 0.3 the hires fix's second pass would run no step")):
        done = studio_here(capsys, "history", "rerun", str(entry_id), "-o", str(tmp_path / "x.png"))
        steps = "--hires-steps or a higher --hires-strength" if entry_id == hires else "--steps or a higher --strength"
        assert (done.returncode, done.stderr) == (2, f"studio: {said} (as history entry {entry_id} recorded them), "
                                                     f"so it cannot be run again; studio generate with more {steps} "
                                                     "makes it anew.\n")
    assert not (tmp_path / "x.png").exists()


def test_the_precision_a_job_ran_in_is_recorded_shown_and_a_rerun_in_another_says_so(studio_home, tiny_model_dir,
                                                                                    tmp_path, monkeypatch, capsys):
    # On the CPU, Speed fast (bfloat16 on processors with its units) and eager (float32) make pictures a grey level
    # apart, and nothing said which ran: the recipe, the history, inspect and the command now say it.
    monkeypatch.setenv("STUDIO_CPU_DTYPE", "bfloat16")  # as Speed fast runs it on a processor with bfloat16 units
    made = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "a tower", "--seed", "5",
                       "--steps", "2", "-o", str(tmp_path / "bf16.png"))
    assert made.returncode == 0, made.stderr
    assert ("note: Ran in bfloat16 on the CPU, as STUDIO_CPU_DTYPE says; STUDIO_CPU_DTYPE=float32 runs float32 for "
            "pictures that match other tools'.") in made.stderr
    entry = json.loads(studio_here(capsys, "history", "show", "1", "--json").stdout)
    assert entry["params"]["precision"] == "bfloat16"
    assert "  Precision:   bfloat16" in studio_here(capsys, "history", "show", "1").stdout.splitlines()
    assert "Precision: bfloat16" in studio_here(capsys, "inspect", str(tmp_path / "bf16.png")).stdout
    assert json.loads(studio_here(capsys, "inspect", "--json", str(tmp_path / "bf16.png")).stdout)["precision"] == \
        "bfloat16"

    monkeypatch.setenv("STUDIO_CPU_DTYPE", "float32")
    again = studio_here(capsys, "history", "rerun", "1", "-o", str(tmp_path / "f32.png"))
    assert again.returncode == 0, again.stderr
    assert "note: This run computed in float32, the recorded one in bfloat16, so its pictures may differ from the " \
           "recorded ones by a grey level or so." in again.stderr
    assert "Ran in bfloat16" not in again.stderr
    assert json.loads(studio_here(capsys, "history", "show", "2", "--json").stdout)["params"]["precision"] == "float32"


def test_a_rerun_computes_in_the_precision_its_entry_recorded_whatever_speed_says(studio_home, tiny_model_dir,
                                                                                  tmp_path, monkeypatch, capsys):
    # A rerun computed in the precision Speed picks now, so one made with Plain diffusers (float32) came back in
    # bfloat16 under Speed fast on a processor with bfloat16 units: another picture, not the same one again.
    from studio.engine import cpu_precision

    monkeypatch.delenv("STUDIO_CPU_DTYPE", raising=False)
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: True)
    made = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "a tower", "--seed", "5",
                       "--steps", "2", "--speed", "eager", "-o", str(tmp_path / "f32.png"))
    assert made.returncode == 0, made.stderr
    again = studio_here(capsys, "history", "rerun", "1", "-o", str(tmp_path / "again.png"))  # Speed: fast
    assert again.returncode == 0, again.stderr
    assert "computed in" not in again.stderr and "Ran in bfloat16" not in again.stderr
    assert json.loads(studio_here(capsys, "history", "show", "2", "--json").stdout)["params"]["precision"] == "float32"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again.png")), np.asarray(Image.open(tmp_path / "f32.png")))

    bf16 = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "a tower", "--seed", "5",
                       "--steps", "2", "-o", str(tmp_path / "bf16.png"))
    assert bf16.returncode == 0 and "Ran in bfloat16" in bf16.stderr
    # Its rerun in bfloat16 though Plain diffusers is chosen now; a processor without bfloat16 units would emulate it,
    # many times slower, so there the rerun keeps float32 and says the pictures may differ.
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings

    settings = load_settings()
    settings.speed = "eager"
    save_settings(settings)
    rerun = studio_here(capsys, "history", "rerun", "3", "-o", str(tmp_path / "b2.png"))
    assert "note: Ran in bfloat16 on the CPU, as its history entry did; STUDIO_CPU_DTYPE=float32 runs float32 for " \
           "pictures that match other tools'." in rerun.stderr and "--speed" not in rerun.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b2.png")), np.asarray(Image.open(tmp_path / "bf16.png")))
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: False)
    slow = studio_here(capsys, "history", "rerun", "3", "-o", str(tmp_path / "b3.png"))
    assert "This run computed in float32, the recorded one in bfloat16" in slow.stderr


def test_a_bfloat16_cpu_job_of_speed_fast_says_eager_runs_float32(monkeypatch):
    from studio.cli_job import precision_notes
    from studio.core.events import GeneratedImage
    from studio.core.metadata import Recipe
    from studio.core.requests import GenerationRequest

    monkeypatch.delenv("STUDIO_CPU_DTYPE", raising=False)
    recipe = Recipe(prompt="a", negative_prompt="", steps=2, sampler="Euler", cfg_scale=7, seed=1, width=64,
                    height=64, model_name="m", precision="bfloat16")
    outputs = (GeneratedImage(Image.new("RGB", (64, 64)), recipe),)
    assert precision_notes(GenerationRequest(model="m", prompt="a", speed="fast"), outputs) == (
        "Ran in bfloat16 on the CPU (Speed: fast); `--speed eager` runs float32 for pictures that match other "
        "tools'.",)
    float32 = (GeneratedImage(Image.new("RGB", (64, 64)), Recipe(**{**recipe.__dict__, "precision": "float32"})),)
    assert precision_notes(GenerationRequest(model="m", prompt="a", speed="eager"), float32, "float32") == ()


def test_rerun_finds_a_lora_in_a_linked_folder_as_generate_does(tiny_model_dir, studio_home, tmp_path, monkeypatch,
                                                                 capsys):
    """The changed-files check counted the linked folder's LoRA as there (no warning), then the rerun failed "No
    LoRA named 'ink'": only generate looked in linked folders."""
    from tiny_loras import lora_state, save_lora, tiny_unet

    from studio.cli import main
    from studio.core.hashing import lora_hash
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryStore

    a1111 = tmp_path / "stable-diffusion-webui"
    lora = save_lora(lora_state(tiny_unet(tiny_model_dir)), a1111 / "models" / "Lora" / "ink.safetensors")
    (a1111 / "models" / "Stable-diffusion").mkdir()
    assert studio_here(capsys, "models", "link", str(a1111)).returncode == 0
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a fox", model_path=str(tiny_model_dir), seed=5, steps=2, params={
        "loras": [{"name": "ink", "weight": 0.5, "hash": lora_hash(lora)}]}))
    store.close()
    capsys.readouterr()
    ran = requests_run(monkeypatch)
    assert main(["history", "rerun", str(entry_id), "-o", str(tmp_path / "again.png")]) == 0, capsys.readouterr().err
    assert [(choice.name, choice.weight) for choice in ran[0].loras] == [(str(lora.resolve()), 0.5)]
    assert "note:" not in capsys.readouterr().err
