"""The Model Library window: import a single-file checkpoint, pick it, generate; download; remove."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hub_server import FakeHub, FakeRepo, isolated_hub_client

from single_file import write_original_checkpoint
from studio.core.paths import studio_paths


@pytest.fixture
def checkpoint(tiny_model_dir: Path, tmp_path: Path, settings) -> Path:  # noqa: ANN001
    """The tiny model as an original-layout checkpoint somewhere on disk, and its config in the models folder."""
    shutil.copytree(tiny_model_dir, settings.models_dir / "configs" / "sd1",
                    ignore=shutil.ignore_patterns("*.safetensors"))
    return write_original_checkpoint(tiny_model_dir, tmp_path / "Downloads" / "dreamy.safetensors")


def open_library(qtbot, window):  # noqa: ANN001, ANN201
    window.models.library_action.trigger()
    dialog = window.models.dialog
    qtbot.waitUntil(lambda: dialog.message.text() == "" and dialog.tree.topLevelItemCount() > 0, timeout=10000)
    return dialog


def rows(dialog) -> dict[str, list[str]]:  # noqa: ANN001
    tree = dialog.tree
    return {tree.topLevelItem(i).text(0): [tree.topLevelItem(i).text(c) for c in range(5)]
            for i in range(tree.topLevelItemCount())}


def test_import_a_checkpoint_pick_it_and_generate(qtbot, window, checkpoint, artifacts_dir):
    dialog = open_library(qtbot, window)
    assert rows(dialog)[window.settings.extra_model_paths[0].name][1] == "SD 1.x"
    dialog.start(dialog.import_path(checkpoint))
    qtbot.waitUntil(lambda: "Imported dreamy" in dialog.message.text(), timeout=20000)
    qtbot.waitUntil(lambda: rows(dialog).get("dreamy", [""] * 4)[3] not in ("", "…"), timeout=10000)
    name, kind, size, digest, source = rows(dialog)["dreamy"]
    assert kind == "SD 1.x" and size.endswith("KB") and len(digest) == 10
    assert source == f"imported from {checkpoint.resolve()}"
    dialog.grab().save(str(artifacts_dir / "model-library.png"))
    # The picker lists it at once; generating with it goes through single-file loading.
    combo = window.prompt_panel.model_combo
    combo.setCurrentIndex(combo.findText("dreamy"))
    dialog.close()
    window.generate()
    qtbot.waitUntil(lambda: window.document.image is not None, timeout=60000)
    assert window.document.image.size == (64, 64)


def test_cancel_stops_an_import_and_leaves_nothing(qtbot, window, checkpoint, monkeypatch):
    """The Cancel button showed during an import but did nothing."""
    import studio.services.model_copying as model_copying

    monkeypatch.setattr(model_copying, "CHUNK", 256)  # many chunks: the copy is still going when Cancel is hit
    dialog = open_library(qtbot, window)
    dialog._show_progress = lambda done, total, text: dialog.cancel_button.click()
    to_ui = dialog._loop_callback

    def held(callback):  # noqa: ANN001, ANN202 — the copy waits for the click it asked for (no race)
        send = to_ui(callback)
        return lambda *args: (send(*args), dialog._cancel.wait(10))

    dialog._loop_callback = held
    dialog.start(dialog.import_path(checkpoint))
    qtbot.waitUntil(lambda: "cancelled" in dialog.message.text(), timeout=20000)
    assert "The import of dreamy.safetensors was cancelled." in dialog.message.text()
    folder = window.settings.models_dir / "checkpoints"
    assert not (folder / "dreamy.safetensors").exists() and not list(folder.glob(".importing-*"))
    assert "dreamy" not in rows(dialog)


def test_a_pickle_is_refused_with_the_sentence_and_nothing_is_copied(qtbot, window, tmp_path):
    evil = tmp_path / "model.safetensors"
    evil.write_bytes(b"\x80\x04\x95" + b"\0" * 32)
    dialog = open_library(qtbot, window)
    asked = []
    dialog.confirm = lambda title, text, action=None: asked.append(text) or False  # "Convert?" — no
    dialog.start(dialog.import_path(evil))
    qtbot.waitUntil(lambda: "pickle" in dialog.message.text(), timeout=10000)
    assert "weights_only=True" in asked[0]
    assert "studio convert-weights" in dialog.message.text()
    assert not (window.settings.models_dir / "checkpoints").exists()


def test_download_shows_progress_and_lands_in_the_library(qtbot, window, tmp_path, monkeypatch):
    files = {"config.json": json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}).encode(),
             "diffusion_pytorch_model.safetensors": (b"\x08\0\0\0\0\0\0\0{}      ")}
    with isolated_hub_client(tmp_path / "hf", monkeypatch), FakeHub({"tester/tiny-vae": FakeRepo(files)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        dialog = open_library(qtbot, window)
        dialog.confirm = lambda title, text, action=None: True
        seen = []
        dialog.progress.valueChanged.connect(seen.append)
        dialog.start(dialog.download("tester/tiny-vae"))
        qtbot.waitUntil(lambda: dialog.message.text().startswith("Downloaded"), timeout=20000)
    assert seen and seen[-1] == 1000
    target = window.settings.models_dir / "vae" / "tiny-vae"  # filed by kind, as an import is
    assert (target / "diffusion_pytorch_model.safetensors").is_file()
    assert dialog.message.text() == f"Downloaded tester/tiny-vae to {target.resolve()}."
    assert rows(dialog)["tiny-vae"][4] == "Hugging Face: tester/tiny-vae"


def test_remove_deletes_from_the_models_folder_only_after_asking(qtbot, window, checkpoint):
    dialog = open_library(qtbot, window)
    dialog.start(dialog.import_path(checkpoint))
    qtbot.waitUntil(lambda: "dreamy" in rows(dialog), timeout=20000)
    item = next(i for i in dialog.items if i.name == "dreamy")
    answers = iter([False, True])
    dialog.confirm = lambda title, text, action=None: next(answers)
    dialog.start(dialog.remove(item))
    qtbot.wait(200)
    assert item.path.exists()  # said no
    dialog.start(dialog.remove(item))
    qtbot.waitUntil(lambda: "dreamy" not in rows(dialog), timeout=10000)
    assert not item.path.exists() and checkpoint.exists()  # the person's own file stays
    assert window.prompt_panel.model_combo.findText("dreamy") < 0
    assert studio_paths().settings_file.exists()


def test_a_linked_folder_that_is_gone_shows_why_and_remove_unlinks_it(qtbot, window, tmp_path):  # noqa: ANN001
    gone = tmp_path / "unplugged" / "models"
    window.settings.extra_model_paths = [gone]
    dialog = open_library(qtbot, window)
    assert rows(dialog)["models"][1] == "Missing"
    item = next(i for i in dialog.items if i.name == "models")
    asked: list[str] = []
    dialog.confirm = lambda title, text, action=None: asked.append(text) or True
    dialog.start(dialog.remove(item))
    qtbot.waitUntil(lambda: "models" not in rows(dialog), timeout=10000)
    assert asked == [f"Unlink {gone}? Its files are untouched."] and window.settings.extra_model_paths == []
    assert dialog.message.text() == f"Unlinked {gone}; its files are untouched."


def test_a_lora_from_the_library_applies_to_the_next_generation_and_is_remembered(qtbot, window, tiny_model_dir,
                                                                                  artifacts_dir):
    from tiny_loras import lora_state, save_lora, tiny_unet

    from studio.core.hashing import lora_hash
    from studio.core.images import read_recipe

    lora = save_lora(lora_state(tiny_unet(tiny_model_dir)), window.settings.models_dir / "loras" / "ink.safetensors")
    window.models.refresh()
    box = window.prompt_panel.lora_box
    qtbot.waitUntil(lambda: bool(box._loras), timeout=5000)  # the library is scanned off the UI thread
    box._fill_menu()
    entries = [a.text() for a in box.add_menu.actions()]
    assert entries == ["ink  ·  LoRA"]  # the tiny model is 32 wide: no family to name
    box.add_menu.actions()[0].trigger()
    box._rows[0][1].setValue(0.8)
    qtbot.wait(50)  # the new row is shown by a queued call
    window.grab().save(str(artifacts_dir / "main-window-lora.png"))
    window.prompt_panel.seed_edit.setText("7")
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=60000)
    qtbot.waitUntil(lambda: any(window.settings.outputs_dir.rglob("*.png")), timeout=5000)
    recipe = read_recipe(next(window.settings.outputs_dir.rglob("*.png")))
    assert [(r.name, r.hash, r.weight) for r in recipe.loras] == [("ink", lora_hash(lora), 0.8)]
    remembered = window.prompt_panel.defaults()
    assert [(entry.name, entry.weight) for entry in remembered.loras] == [(str(lora.resolve()), 0.8)]
    box.set_values([], "")
    window.prompt_panel.load_defaults(remembered)
    assert box.choices()[0].weight == 0.8


def test_the_gpu_menu_sets_memory_and_speed_for_the_next_jobs(qtbot, window):
    window.models.gpu_menu.show_device("cuda")  # on the CPU: test_gpu_menu
    actions = {a.data(): a for a in window.models.gpu_menu.actions() if a.data()}
    assert actions["auto"].isChecked() and actions["fast"].isChecked()
    actions["low"].trigger()
    actions["compile"].trigger()
    assert (window.settings.memory, window.settings.speed) == ("low", "compile")
    assert "Fastest (compiled)" in window.status.message_label.text()
    seen = []
    window.service.submit = lambda request: seen.append(request) or 1
    window.prompt_panel.prompt_edit.setPlainText("a fox")
    window.generate()
    assert (seen[0].memory, seen[0].speed) == ("low", "compile")


def test_switching_back_to_the_model_before_in_the_picker_reads_nothing(qtbot, window, tiny_model_dir, tmp_path,
                                                                         monkeypatch):
    """The window's own flow: pick another model, generate, pick the first again, generate."""
    from tiny_models import build_tiny_sd

    import studio.engine.diffusion as diffusion
    from studio.engine import model_keeping

    monkeypatch.setattr(model_keeping, "available_ram", lambda: (64 * 2**30, 128 * 2**30))
    loads: list[str] = []
    real_load = diffusion.load_model
    monkeypatch.setattr(diffusion, "load_model", lambda path, *a, **k: loads.append(Path(path).name)
                        or real_load(path, *a, **k))
    other = build_tiny_sd(tmp_path / "other-models" / "tiny-b", seed=1)
    window.settings.extra_model_paths.append(other)
    window.models.refresh()
    picker = window.prompt_panel.model_picker
    qtbot.waitUntil(lambda: picker.select_model(str(other.resolve())), timeout=10000)
    for model, name in ((other, "tiny-b"), (tiny_model_dir, "tiny-sd")):
        assert picker.select_model(str(model.resolve()))
        finished = len(window.queue_panel.job_ids("finished"))
        window.generate()
        qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == finished + 1, timeout=60000)
        assert window.status.model_label.text() == name
    assert loads == ["tiny-b"]  # tiny-sd was preloaded at start and kept while tiny-b ran: not read again


def test_the_picker_keeps_the_persons_pick_after_the_selected_model_was_removed(qtbot, tmp_path):  # noqa: ANN001
    from studio.core.model_library import ModelEntry
    from studio.ui.model_picker import ModelPicker

    alpha, bravo, charlie = (ModelEntry(name, tmp_path / name) for name in ("alpha", "bravo", "charlie"))
    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.set_models([alpha, bravo, charlie], str(bravo.path), str(tmp_path))
    picker.set_models([alpha, charlie], "", str(tmp_path))  # bravo removed: kept in mind in case it comes back
    index = picker.combo.findData(str(charlie.path))
    picker.combo.setCurrentIndex(index)
    picker.combo.activated.emit(index)  # the person picks charlie
    picker.set_models([alpha, charlie], "", str(tmp_path))  # any later refresh of the library
    assert picker.selected_model() == str(charlie.path)


def test_the_kind_filter_lists_the_controlnets_alone_and_has_every_kind_imports_sort_into(qtbot, window):  # noqa: ANN001
    from model_files import controlnet

    from studio.core.model_library import KIND_FOLDERS
    from studio.ui.models_dialog import KIND_FILTERS

    controlnet(window.settings.models_dir / "controlnet" / "control_v11p_sd15_canny.safetensors")
    dialog = open_library(qtbot, window)
    assert set(rows(dialog)) == {"control_v11p_sd15_canny", window.settings.extra_model_paths[0].name}
    dialog.kind_filter.setCurrentIndex(dialog.kind_filter.findText("ControlNets"))
    assert {name: row[1] for name, row in rows(dialog).items()} == {"control_v11p_sd15_canny": "ControlNet (SD 1.x)"}
    filtered = {kind for _, kind in KIND_FILTERS}
    assert {kind for kind, folder in KIND_FOLDERS.items() if folder} <= filtered  # each kind an import puts away


def test_linking_the_models_folder_is_refused_and_a_folder_linked_already_is_said(qtbot, window, tmp_path):  # noqa: ANN001
    dialog = open_library(qtbot, window)
    links = list(window.settings.extra_model_paths)
    window.settings.models_dir.mkdir(parents=True, exist_ok=True)
    dialog.start(dialog.link(window.settings.models_dir))
    qtbot.waitUntil(lambda: "nothing to link" in dialog.message.text(), timeout=10000)
    assert dialog.message.text() == f"{window.settings.models_dir} is Studio's own models folder; its models are in " \
                                    "the library already, so there is nothing to link."
    dialog.start(dialog.link(links[0]))
    qtbot.waitUntil(lambda: "already linked" in dialog.message.text(), timeout=10000)
    assert dialog.message.text() == f"{links[0]} is already linked; nothing was changed."
    assert window.settings.extra_model_paths == links


@pytest.mark.parametrize("chosen", ["/proc", "/"])
def test_a_models_folder_that_cannot_hold_models_is_refused_and_the_previous_one_kept(qtbot, window, monkeypatch,
                                                                                    chosen, tmp_path):
    """It took /proc and / silently: the picker emptied, and imports would have gone there."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    previous = window.settings.models_dir
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warnings.append(text))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: chosen)
    window.models.folder_action.trigger()
    qtbot.waitUntil(lambda: bool(warnings), timeout=5000)
    reason = "is the root of the filesystem, not a folder for models" if chosen == "/" else \
        "is a system folder, which cannot hold models"
    assert warnings == [f"{chosen} {reason}; the models folder stays {previous}."]
    assert window.settings.models_dir == previous
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(tmp_path))
    window.models.folder_action.trigger()  # an ordinary folder is taken, as before
    assert window.settings.models_dir == tmp_path and len(warnings) == 1


def test_importing_a_linked_model_says_it_is_in_the_library_and_the_picker_lists_it_once(qtbot, window):
    """It was copied into the models folder, and the picker then showed the model twice."""
    dialog = open_library(qtbot, window)
    linked = window.settings.extra_model_paths[0]
    picker = window.prompt_panel.model_picker.combo
    before = [picker.itemText(i) for i in range(picker.count())]
    dialog.start(dialog.import_path(linked))
    qtbot.waitUntil(lambda: "already in the library" in dialog.message.text(), timeout=20000)
    assert dialog.message.text() == f"{linked.name} is already in the library (linked from {linked}); nothing was " \
                                    "copied."
    assert not (window.settings.models_dir / "checkpoints").exists()
    assert [picker.itemText(i) for i in range(picker.count())] == before == [linked.name]


def test_an_import_whose_record_cannot_be_written_is_listed_and_says_so(qtbot, window, checkpoint):
    """The import task failed with a traceback in the log after the copy was done, and the list was not refreshed."""
    record = window.settings.models_dir / ".studio-imports.json"
    record.mkdir(parents=True)  # what even root cannot write a file over
    dialog = open_library(qtbot, window)
    dialog.start(dialog.import_path(checkpoint))
    qtbot.waitUntil(lambda: "dreamy" in rows(dialog) and "could not be written" in dialog.message.text(),
                    timeout=20000)
    target = window.settings.models_dir / "checkpoints" / "dreamy.safetensors"
    assert dialog.message.text() == (f"dreamy.safetensors is in the library at {target}, but where it came from could "
                                     f"not be written to {record} (Is a directory), so the library will not say where "
                                     "it was imported from.")


def test_a_converted_import_says_what_the_conversion_left_out(qtbot, window, tmp_path):
    # The Model Library said only "Converted and imported ink (LoRA)." of a checkpoint whose epoch and step it left out.
    from test_cli_models import CONVERSION_NOTES, lora_checkpoint_with_more

    checkpoint = lora_checkpoint_with_more(tmp_path / "ink.pt")
    dialog = open_library(qtbot, window)
    dialog.confirm = lambda title, text, action=None: True  # "Convert?" — yes
    dialog.start(dialog.import_path(checkpoint))
    qtbot.waitUntil(lambda: "Converted and imported" in dialog.message.text(), timeout=20000)
    assert dialog.message.text() == " ".join(["Converted and imported ink (LoRA).",
                                              *(note.removeprefix("note: ") for note in CONVERSION_NOTES)])


def test_a_converted_import_refused_or_already_there_still_says_what_the_conversion_left_out(qtbot, window,
                                                                                            tmp_path):
    # The conversion's notes went with a refusal (they were only the command line's), and an import found already
    # in the library showed them on lines of their own.
    import torch
    from test_cli_models import lora_checkpoint_with_more

    checkpoint = lora_checkpoint_with_more(tmp_path / "ink.pt")
    dialog = open_library(qtbot, window)
    dialog.confirm = lambda title, text, action=None: True
    dialog.start(dialog.import_path(checkpoint))
    qtbot.waitUntil(lambda: "Converted and imported" in dialog.message.text(), timeout=20000)
    dialog.start(dialog.import_path(checkpoint))  # again: already there, said on one line with the notes
    qtbot.waitUntil(lambda: "already in the library" in dialog.message.text(), timeout=20000)
    assert "\n" not in dialog.message.text() and "Left out" in dialog.message.text()
    unknown = tmp_path / "mo.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 3}, unknown)
    dialog.start(dialog.import_path(unknown))
    qtbot.waitUntil(lambda: "not a kind of model" in dialog.message.text(), timeout=20000)
    assert "Wrote only the weights under 'model'" in dialog.message.text()


def test_generate_with_a_model_deleted_since_the_list_was_read_takes_it_off_the_list(qtbot, window, tmp_path,  # noqa: ANN001
                                                                                    tiny_model_dir):
    """Nothing watches the models folders: a model deleted from disk stayed listed, and each Generate with it was
    refused "The model folder … does not exist." until the list was read again."""
    from studio.core.models import ModelEntry

    doomed = tmp_path / "models" / "doomed"
    doomed.mkdir(parents=True)
    panel = window.prompt_panel
    panel.set_models([ModelEntry("tiny-sd", Path(tiny_model_dir)), ModelEntry("doomed", doomed)], str(doomed),
                     str(tmp_path / "models"))
    assert panel.selected_model() == str(doomed)
    doomed.rmdir()
    scans = window.models._library_scans
    window.generate()
    assert panel.error_label.text() == "The model doomed is gone; removed it from the list."
    assert panel.model_combo.findData(str(doomed)) < 0
    assert panel.selected_model() == str(tiny_model_dir)
    assert window.models._library_scans == scans + 1  # the library is looked through again for others gone


def test_a_folder_linked_just_before_the_library_closes_reaches_the_model_picker(qtbot, window, checkpoint,  # noqa: ANN001
                                                                                 monkeypatch):
    """Closing cancelled the link's scan before the window heard of it: the folder was linked and saved, and the
    picker kept the old list."""
    import threading

    from studio.ui import models_dialog

    dialog = open_library(qtbot, window)
    scanning, go_on = threading.Event(), threading.Event()
    scan = models_dialog._scan
    monkeypatch.setattr(models_dialog, "_scan", lambda *args: scanning.set() or go_on.wait(20) and scan(*args))
    dialog.start(dialog.link(checkpoint.parent))
    qtbot.waitUntil(scanning.is_set, timeout=10000)
    dialog.reject()
    go_on.set()
    picker = window.prompt_panel.model_picker.combo
    qtbot.waitUntil(lambda: "dreamy" in [picker.itemText(i) for i in range(picker.count())], timeout=20000)
    assert checkpoint.parent in window.settings.extra_model_paths


def test_linking_says_how_many_usable_models_and_unusable_files_it_found(qtbot, window, checkpoint):  # noqa: ANN001
    """The window counted files Studio cannot use as models ("12 model(s)" where the command line said 10)."""
    (checkpoint.parent / "old.ckpt").write_bytes(b"not a pickle Studio would open")
    dialog = open_library(qtbot, window)
    dialog.start(dialog.link(checkpoint.parent))
    qtbot.waitUntil(lambda: "Linked" in dialog.message.text(), timeout=20000)
    assert dialog.message.text() == f"Linked {checkpoint.parent}, used in place: 1 usable model(s) found there, " \
                                    "and 1 file Studio cannot use."



def held_removal(monkeypatch):  # noqa: ANN001, ANN201
    """remove_model waiting in its thread until the test lets it go on: (started, go_on)."""
    import threading

    from studio.services import model_removal

    removing, go_on = threading.Event(), threading.Event()
    remove = model_removal.remove_model
    monkeypatch.setattr(model_removal, "remove_model",
                        lambda *args: removing.set() or go_on.wait(20) and remove(*args))
    return removing, go_on


def test_a_model_removed_while_the_library_closes_leaves_the_model_picker(qtbot, window, checkpoint,  # noqa: ANN001
                                                                          monkeypatch):
    """Closing cancelled Remove while its thread deleted the model: the picker kept listing it."""
    dialog = open_library(qtbot, window)
    dialog.start(dialog.import_path(checkpoint))
    picker = window.prompt_panel.model_picker.combo
    qtbot.waitUntil(lambda: "dreamy" in [picker.itemText(i) for i in range(picker.count())], timeout=20000)
    removing, go_on = held_removal(monkeypatch)
    item = next(i for i in dialog.items if i.name == "dreamy")
    dialog.confirm = lambda title, text, action=None: True
    dialog.start(dialog.remove(item))
    qtbot.waitUntil(removing.is_set, timeout=10000)
    dialog.reject()
    go_on.set()
    qtbot.waitUntil(lambda: "dreamy" not in [picker.itemText(i) for i in range(picker.count())], timeout=20000)
    assert not item.path.exists()


def test_a_folder_unlinked_while_the_library_closes_leaves_the_settings(qtbot, window, tmp_path,  # noqa: ANN001
                                                                        monkeypatch):
    """Closing cancelled Remove while its thread unlinked the folder: the link stayed in the settings, and was saved
    again."""
    from studio.core.settings import load_settings

    gone = tmp_path / "unplugged" / "models"
    window.settings.extra_model_paths = [gone]
    window.persist_settings()
    dialog = open_library(qtbot, window)
    removing, go_on = held_removal(monkeypatch)
    dialog.confirm = lambda title, text, action=None: True
    dialog.start(dialog.remove(next(i for i in dialog.items if i.name == "models")))
    qtbot.waitUntil(removing.is_set, timeout=10000)
    dialog.reject()
    go_on.set()
    qtbot.waitUntil(lambda: window.settings.extra_model_paths == [], timeout=10000)
    qtbot.waitUntil(lambda: load_settings().extra_model_paths == [], timeout=10000)


def test_linking_a_comfyui_folder_counts_the_models_in_the_folders_its_yaml_names(qtbot, window, tmp_path):  # noqa: ANN001
    """The window counted the models in the ComfyUI folder alone ("0 usable model(s) found there") while the folders
    its extra_model_paths.yaml linked with it held the models; the command line says one line per folder."""
    from model_files import sd1

    comfyui, drive = tmp_path / "ComfyUI", tmp_path / "sdmodels"
    sd1(drive / "Stable-diffusion" / "extra_ckpt.safetensors")
    (comfyui / "models" / "checkpoints").mkdir(parents=True)
    (comfyui / "extra_model_paths.yaml").write_text(
        f"a111:\n    base_path: {drive}\n    checkpoints: Stable-diffusion\n    loras: Lora\n", encoding="utf-8")
    dialog = open_library(qtbot, window)
    dialog.start(dialog.link(comfyui))
    qtbot.waitUntil(lambda: "Linked" in dialog.message.text(), timeout=20000)
    assert dialog.message.text() == (
        f"Linked {comfyui}, used in place: 0 usable model(s) found there. Linked {drive / 'Stable-diffusion'} (named "
        f"in its extra_model_paths.yaml): 1 usable model(s) found there. {drive / 'Lora'}, named in "
        "extra_model_paths.yaml, is not there, so it was not linked.")
    assert window.settings.extra_model_paths[-2:] == [comfyui, drive / "Stable-diffusion"]


def test_a_removal_turns_the_buttons_off_and_keeps_a_folder_linked_meanwhile(qtbot, window, tmp_path,  # noqa: ANN001
                                                                             monkeypatch):
    """Remove left Import, Link, Download and Remove on while it ran, and on its end wrote back the links read when it
    began: a folder linked meanwhile was dropped from the settings."""
    gone, linked_meanwhile = tmp_path / "unplugged" / "models", tmp_path / "other" / "models"
    linked_meanwhile.mkdir(parents=True)
    window.settings.extra_model_paths = [gone]
    dialog = open_library(qtbot, window)
    removing, go_on = held_removal(monkeypatch)
    dialog.confirm = lambda title, text, action=None: True
    dialog.start(dialog.remove(next(i for i in dialog.items if i.name == "models")))
    qtbot.waitUntil(removing.is_set, timeout=10000)
    assert not any(button.isEnabled() for button in (dialog.import_button, dialog.link_button,
                                                     dialog.download_button, dialog.remove_button))
    window.settings.extra_model_paths = [gone, linked_meanwhile]  # linked elsewhere while it ran
    go_on.set()
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Unlinked"), timeout=10000)
    assert window.settings.extra_model_paths == [linked_meanwhile]
    assert dialog.import_button.isEnabled()


def test_a_removal_that_fails_after_the_library_closed_says_why_in_the_status_line(qtbot, window, checkpoint,  # noqa: ANN001
                                                                                    monkeypatch):
    from studio.core.errors import ModelError
    from studio.services import model_removal

    dialog = open_library(qtbot, window)
    dialog.start(dialog.import_path(checkpoint))
    qtbot.waitUntil(lambda: any(i.name == "dreamy" for i in dialog.items), timeout=20000)
    removing, go_on = held_removal(monkeypatch)
    held = model_removal.remove_model

    def refused(*args: object) -> None:
        held(*args)
        raise ModelError("dreamy could not be deleted from the models folder: it is in use.")

    monkeypatch.setattr(model_removal, "remove_model", refused)
    dialog.confirm = lambda title, text, action=None: True
    dialog.start(dialog.remove(next(i for i in dialog.items if i.name == "dreamy")))
    qtbot.waitUntil(removing.is_set, timeout=10000)
    dialog.reject()
    go_on.set()
    qtbot.waitUntil(lambda: window.status.message_label.text() ==
                    "dreamy could not be deleted from the models folder: it is in use.", timeout=10000)


def test_unlinking_a_folder_asks_with_an_unlink_button_not_remove(qtbot, window, tmp_path):  # noqa: ANN001
    """The button was read off the title's first word: "Unlink …? Its files are untouched." was asked with a
    destructive "Remove" button."""
    window.settings.extra_model_paths = [tmp_path / "unplugged" / "models"]
    dialog = open_library(qtbot, window)
    asked: list[tuple[str, str | None]] = []
    dialog.confirm = lambda title, text, action=None: asked.append((title, action)) or False
    dialog.start(dialog.remove(next(i for i in dialog.items if i.name == "models")))
    qtbot.waitUntil(lambda: asked != [], timeout=10000)
    assert asked == [("Unlink Folder", "Unlink")]
