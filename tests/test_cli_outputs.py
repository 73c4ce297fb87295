"""Where ``studio generate``, ``postprocess`` and ``history rerun`` write (studio.cli_outputs): nothing is written
over without ``--overwrite``, and never a picture the command reads or one the history keeps; run in-process with a
quick stand-in for the diffusers generator."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

import studio.cli_generate as cli_generate
import studio.cli_plugins as cli_plugins
from studio.cli import main
from studio.cli_exit import EXIT_BAD_INPUT
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest
from studio.plugin_host.builtins import BUILTIN_CONTRIBUTIONS
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution, Registry
from studio_testing import studio_here


@pytest.fixture
def quick_engine(studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Studio's own post-processors, and the stand-in generator as the diffusers one, for every command."""
    registry = Registry()
    registry.add(Contribution(GENERATOR, "diffusers", "Flat pictures", "studio_testing:FlatPictures"))
    for contribution in BUILTIN_CONTRIBUTIONS:
        if contribution.kind == POSTPROCESSOR:
            registry.add(contribution)
    host = SimpleNamespace(registry=registry)
    monkeypatch.setattr(cli_generate, "open_host", lambda safe_mode=False: host)
    monkeypatch.setattr(cli_plugins, "open_host", lambda safe_mode=False: host)
    return registry


def picture(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    Image.new("RGB", (64, 64), colour).save(path)
    return path.read_bytes()


def generate(model: Path, output: Path, *args: str) -> int:
    return main(["generate", "--model", str(model), "--prompt", "a fox", "--steps", "2", "--size", "64x64",
                 "-o", str(output), *args])


def refusal(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("studio: ")]


def test_a_batch_is_refused_before_the_job_when_one_of_its_files_exists(quick_engine, tiny_model_dir, tmp_path,
                                                                        monkeypatch, capsys):
    # `--batch-count 3 -o o.png` replaced the o-2.png that was there, without a word.
    (tmp_path / "o-2.png").write_text("precious")
    ran: list[object] = []
    monkeypatch.setattr(cli_generate, "run_job", lambda *args, **kwargs: ran.append(args) or 0)
    assert generate(tiny_model_dir, tmp_path / "o.png", "--batch-count", "3") == EXIT_BAD_INPUT
    assert refusal(capsys) == [f"studio: {tmp_path / 'o-2.png'} already exists; give another -o or add --overwrite "
                               "to replace it."]
    assert not ran and (tmp_path / "o-2.png").read_text() == "precious"
    assert not (tmp_path / "o-1.png").exists()


def test_what_is_wrong_with_the_request_is_said_before_an_output_that_exists(quick_engine, tiny_model_dir, tmp_path,
                                                                              capsys):
    # `--size 0x0 -o existing.png` said "… already exists"; only with --overwrite did it say the size was wrong.
    (tmp_path / "o.png").write_text("precious")
    assert main(["generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--size", "0x0",
                 "-o", str(tmp_path / "o.png")]) == EXIT_BAD_INPUT
    assert refusal(capsys) == ["studio: The width must be between 64 and 4096 pixels, not 0."]
    assert (tmp_path / "o.png").read_text() == "precious"


def test_overwrite_replaces_the_files_of_a_batch(quick_engine, tiny_model_dir, tmp_path, capsys):
    (tmp_path / "o-2.png").write_text("old")
    assert generate(tiny_model_dir, tmp_path / "o.png", "--batch-count", "3", "--seed", "5", "--overwrite") == 0
    assert [Image.open(tmp_path / f"o-{i}.png").getpixel((0, 0)) for i in (1, 2, 3)] == [
        (5, 40, 90), (6, 40, 90), (7, 40, 90)]


def test_an_output_that_exists_is_refused_by_postprocess_and_rerun_too(quick_engine, tiny_model_dir, tmp_path,
                                                                       capsys):
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryEntry, HistoryStore

    original = picture(tmp_path / "in.png")
    kept = picture(tmp_path / "kept.png", (1, 2, 3))
    said = f"studio: {tmp_path / 'kept.png'} already exists; give another -o or add --overwrite to replace it."
    assert main(["postprocess", str(tmp_path / "in.png"), "-o", str(tmp_path / "kept.png"), "--method",
                 "color", "--style", str(tmp_path / "in.png")]) == EXIT_BAD_INPUT
    assert refusal(capsys) == [said]
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a tower", model_path=str(tiny_model_dir), seed=5, steps=2))
    store.close()
    assert main(["history", "rerun", str(entry_id), "-o", str(tmp_path / "kept.png")]) == EXIT_BAD_INPUT
    assert refusal(capsys) == [said]
    assert (tmp_path / "kept.png").read_bytes() == kept and (tmp_path / "in.png").read_bytes() == original
    assert main(["history", "rerun", str(entry_id), "-o", str(tmp_path / "kept.png"), "--overwrite"]) == 0
    assert Image.open(tmp_path / "kept.png").getpixel((0, 0)) == (5, 40, 90)


@pytest.mark.parametrize("case", ["init-image", "mask", "control", "post", "batch"])
def test_generate_never_writes_over_a_picture_it_reads(case, quick_engine, tiny_model_dir, tmp_path, monkeypatch,
                                                       capsys):
    # `--init-image photo.png -o photo.png` replaced the photo, with nothing kept anywhere.
    photo = picture(tmp_path / "photo.png")
    mask = picture(tmp_path / "mask.png", (255, 255, 255))
    ran: list[object] = []
    monkeypatch.setattr(cli_generate, "run_job", lambda *args, **kwargs: ran.append(args) or 0)
    output, what, args = {
        "init-image": ("photo.png", "the --init-image picture", ["--init-image", "photo.png"]),
        "mask": ("mask.png", "the --mask picture", ["--init-image", "photo.png", "--mask", "mask.png"]),
        "control": ("photo.png", "the control picture of --control", ["--control", "canny", "photo.png"]),
        "post": ("photo.png", "the picture given to --post color:style=", ["--post", "color:style=photo.png"]),
        "batch": ("photo-2.png", "the --init-image picture", ["--init-image", "photo-2.png", "--batch-count", "2"]),
    }[case]
    if case == "batch":
        (tmp_path / "photo.png").rename(tmp_path / "photo-2.png")
    if case == "control":  # one there: the request is checked before the outputs
        from model_files import controlnet

        from studio.core.paths import studio_paths

        controlnet(studio_paths().data_dir / "models" / "controlnet" / "canny.safetensors", 32)
    monkeypatch.chdir(tmp_path)
    written = Path(output if case != "batch" else "photo.png")
    assert generate(tiny_model_dir, written, *args, "--overwrite") == EXIT_BAD_INPUT
    assert refusal(capsys) == [f"studio: {output} is {what}, which this command reads; Studio does not write over "
                               "it, even with --overwrite: give another -o."]
    assert not ran
    assert (tmp_path / output).read_bytes() == (mask if case == "mask" else photo)


@pytest.mark.parametrize("output", ["in.png", "style.png", "mask.png"])
def test_postprocess_never_writes_over_a_picture_it_reads(output, quick_engine, tmp_path, monkeypatch, capsys):
    # `studio postprocess photo.png -o photo.png` replaced the original.
    before = {name: picture(tmp_path / name, colour) for name, colour in
              (("in.png", (10, 20, 30)), ("style.png", (200, 100, 0)), ("mask.png", (255, 255, 255)))}
    monkeypatch.chdir(tmp_path)
    what = {"in.png": "the picture to process", "style.png": "the picture given to --style",
            "mask.png": "the --mask picture"}[output]
    assert main(["postprocess", "in.png", "-o", output, "--method", "color", "--style", "style.png",
                 "--mask", "mask.png", "--overwrite"]) == EXIT_BAD_INPUT
    assert refusal(capsys) == [f"studio: {output} is {what}, which this command reads; Studio does not write over "
                               "it, even with --overwrite: give another -o."]
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_a_picture_the_history_keeps_is_never_written_over(quick_engine, tiny_model_dir, tmp_path, capsys):
    # `studio history rerun 1 -o <entry 3's picture>` replaced it: `history show 3` then showed another picture.
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.services.history_store import HistoryEntry, HistoryStore

    folder = load_settings().outputs_dir / "2026-12-07"
    folder.mkdir(parents=True)
    kept = picture(folder / "00003-7.png")
    own = picture(folder / "mine.png", (9, 9, 9))  # the person's own file in the outputs folder: theirs to replace
    store = HistoryStore(studio_paths().data_dir / "history.db")
    entry_id = store.add(HistoryEntry(prompt="a tower", model_path=str(tiny_model_dir), seed=5, steps=2))
    store.add(HistoryEntry(prompt="a fox", model_path=str(tiny_model_dir), seed=7, steps=2,
                           image_path=str(folder / "00003-7.png")))
    store.close()
    said = (f"studio: {folder / '00003-7.png'} is a picture Studio's history keeps; Studio does not write over it, "
            "even with --overwrite (its entry would show another picture): give another -o.")
    assert main(["history", "rerun", str(entry_id), "-o", str(folder / "00003-7.png"), "--overwrite"]) == 2
    assert refusal(capsys) == [said]
    # Named another way (through "..") it is the same file.
    roundabout = folder.parent / ".." / folder.parent.name / folder.name / "00003-7.png"
    assert generate(tiny_model_dir, roundabout, "--overwrite") == EXIT_BAD_INPUT
    assert refusal(capsys) == [said.replace(str(folder / "00003-7.png"), str(roundabout))]
    assert (folder / "00003-7.png").read_bytes() == kept
    assert generate(tiny_model_dir, folder / "mine.png", "--overwrite") == 0
    assert (folder / "mine.png").read_bytes() != own


def test_a_file_that_appears_while_the_job_runs_is_left_as_it_is(tmp_path, capsys):
    # Checked free before the job, the name was still written over by a file another program made meanwhile.
    from studio.cli_job import JobOutcome, _JobView
    from studio.core.events import GeneratedImage, JobFinished

    request = GenerationRequest(model="m", prompt="p")
    recipe = Recipe("p", "", 2, "Euler", 7.0, 3, 64, 64, "quick")
    output = GeneratedImage(Image.new("RGB", (64, 64)), recipe, tmp_path / "kept" / "00001-3.png")
    (tmp_path / "out.png").write_text("made meanwhile")
    view = _JobView(request, [tmp_path / "out.png"], SimpleNamespace(close=lambda: None), None, JobOutcome(),
                    Registry())
    assert view.show(JobFinished(1, (output,), 0.5)) == 1
    assert (tmp_path / "out.png").read_text() == "made meanwhile"
    assert (f"studio: {tmp_path / 'out.png'} could not be written (a file of that name appeared while the job ran, "
            f"and was left as it is); it is kept in {tmp_path / 'kept' / '00001-3.png'}.") in capsys.readouterr().err


@pytest.mark.parametrize("case", ["generate", "in a folder", "batch", "postprocess", "rerun", "inspect", "init image"])
def test_a_name_too_long_for_the_file_system_is_one_sentence(case, quick_engine, tiny_model_dir, tmp_path, capsys):
    # Each of these ended in a traceback (OSError: File name too long), exit 1: a stat of the name raised.
    long, source = tmp_path / f"{'a' * 300}.png", tmp_path / "in.png"
    picture(source)
    commands = {"generate": (["generate", "--model", str(tiny_model_dir), "--prompt", "x", "-o", str(long)], long),
                "in a folder": (["generate", "--model", str(tiny_model_dir), "--prompt", "x", "-o",
                                 str(tmp_path / ("a" * 300) / "x.png")], tmp_path / ("a" * 300) / "x.png"),
                # The stem fits alone; "-1" takes it past 255 bytes.
                "batch": (["generate", "--model", str(tiny_model_dir), "--prompt", "x", "--batch-count", "2", "-o",
                           str(tmp_path / f"{'b' * 250}.png")], tmp_path / f"{'b' * 250}-1.png"),
                "postprocess": (["postprocess", str(source), "--method", "histogram", "--style", str(source), "-o",
                                 str(long)], long),
                "rerun": (["history", "rerun", "1", "-o", str(long)], long),
                "inspect": (["inspect", str(long)], long),
                "init image": (["generate", "--model", str(tiny_model_dir), "--prompt", "x", "--init-image", str(long),
                                "-o", str(tmp_path / "out.png")], long)}
    args, named = commands[case]
    if case == "rerun":  # an entry to rerun: the request is checked before -o
        from studio.services.history_store import HistoryEntry, HistoryStore

        store = HistoryStore(tmp_path / "studio-home" / "data" / "history.db")
        store.add(HistoryEntry(prompt="x", model_name="tiny-sd", model_path=str(tiny_model_dir), seed=1, steps=2,
                               width=64, height=64, sampler="Euler a", cfg_scale=7.0))
        store.close()
    result = studio_here(capsys, *args)
    part = "a folder name in it" if case == "in a folder" else "the file name"
    assert (result.returncode, result.stderr.splitlines()) == (
        EXIT_BAD_INPUT, [f"studio: {named}: {part} is too long for this file system."])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.png", "studio-home"]


@pytest.mark.parametrize("option", ["inspect", "--init-image"])
def test_a_named_pipe_given_as_a_picture_is_said_to_be_one(option, quick_engine, tiny_model_dir, tmp_path, capsys):
    # It was said not to exist ("The image …/fifo.png does not exist."), though it does: it is no regular file.
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    args = (["inspect", str(fifo)] if option == "inspect" else
            ["generate", "--model", str(tiny_model_dir), "--prompt", "x", "--init-image", str(fifo), "-o",
             str(tmp_path / "out.png")])
    result = studio_here(capsys, *args)
    assert (result.returncode, result.stderr.splitlines()) == (
        EXIT_BAD_INPUT, [f"studio: {fifo} is a named pipe (FIFO), not an image file; Studio reads pictures from "
                         "regular files."])
    assert not (tmp_path / "out.png").exists()


def test_a_picture_is_kept_in_the_outputs_folder_where_the_history_cannot_record_it(quick_engine, tiny_model_dir,
                                                                                    studio_home, tmp_path, capsys):
    # With no history to record it, the command left the outputs folder out too, without a word: -o was the one copy.
    data = studio_home / "data"
    (data / "history.db").mkdir(parents=True)  # no database can be opened there
    result = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--steps", "2",
                         "--size", "64x64", "-o", str(tmp_path / "fox.png"))
    assert result.returncode == 0, result.stderr
    assert "This job is not recorded in the history." in result.stderr
    kept = list((data / "outputs").rglob("*.png"))
    assert len(kept) == 1
    with Image.open(kept[0]) as copy, Image.open(tmp_path / "fox.png") as written:
        assert copy.tobytes() == written.tobytes()


@pytest.mark.parametrize("temp_folder", ["there", "gone"])
def test_a_picture_neither_o_nor_the_outputs_folder_can_keep_goes_to_the_temporary_folder(
        temp_folder, quick_engine, tiny_model_dir, studio_home, tmp_path, monkeypatch, capsys):
    # A full disk: "…/out.png could not be written (File too large)." then "Done in 18.8 s.", and the picture was
    # nowhere (the outputs folder had failed too, with only a note).
    import errno
    import tempfile

    import studio.cli_job as cli_job

    (studio_home / "data").mkdir(parents=True)
    (studio_home / "data" / "outputs").write_text("a file where the outputs folder should be")
    temp = tmp_path / "temp"
    if temp_folder == "there":
        temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def disk_full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(cli_job, "save_image", disk_full)
    out = tmp_path / "out.png"
    result = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "a fox", "--steps", "2",
                         "--size", "64x64", "-o", str(out))
    assert result.returncode == 1 and not out.exists()
    assert "only copy" not in result.stderr  # the outputs folder's note said the -o file was
    said = [line for line in result.stderr.splitlines() if line.startswith("studio: ")]
    kept = list(temp.glob("studio-out-*.png"))
    if temp_folder == "there":
        assert len(kept) == 1 and said == [f"studio: {out} could not be written (File too large); it is kept in "
                                           f"{kept[0]} instead."]
        with Image.open(kept[0]) as picture_kept:
            assert "a fox" in picture_kept.text["parameters"]
        assert "Done in" in result.stderr
    else:
        assert said == [f"studio: {out} could not be written (File too large); it could not be kept anywhere else "
                        "either: the picture is lost."]
        assert "Done in" not in result.stderr


def test_asking_the_history_about_an_output_does_not_wait_for_another_programs_lock(studio_home, tmp_path):
    # check_outputs opened the history to write: an entry a killed Studio left in the journal, not added while another
    # program held the lock, made its close wait 5 s for that lock before every job writing into the outputs folder.
    import time

    from history_testing import Locker, entry

    from studio.cli_outputs import check_outputs
    from studio.core.errors import InvalidRequest
    from studio.core.paths import studio_paths
    from studio.services.history_store import HistoryEntry, HistoryStore

    outputs_dir = tmp_path / "outputs"
    outputs_dir.mkdir()
    kept = picture(outputs_dir / "00001-7.png")
    path = studio_paths().data_dir / "history.db"
    killed = HistoryStore(path)
    killed.add(HistoryEntry(prompt="a fox", seed=7, image_path=str(outputs_dir / "00001-7.png")))
    locker = Locker(path)
    try:
        killed.keep_for_later(entry("kept by a killed Studio"))
        del killed
        started = time.monotonic()
        with pytest.raises(InvalidRequest, match="is a picture Studio's history keeps"):
            check_outputs([outputs_dir / "00001-7.png"], overwrite=True, reads=[], outputs_dir=outputs_dir)
        check_outputs([outputs_dir / "new.png"], overwrite=False, reads=[], outputs_dir=outputs_dir)
        took = time.monotonic() - started
    finally:
        locker.release()
    assert took < 2.0, f"checking the outputs took {took:.1f} s"
    assert (outputs_dir / "00001-7.png").read_bytes() == kept
