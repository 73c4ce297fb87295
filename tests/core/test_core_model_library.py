"""The model library: every model in the models folder and in other tools' folders, by content."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

from model_files import controlnet, diffusers_folder, esrgan, lora, sd1, sdxl
from studio.core.model_library import detect_layout, find_item, scan_library, with_hashes
from studio.core.models import find_models, resolve_model


def test_every_kind_is_listed_with_its_label_size_and_source(tmp_path):
    models = tmp_path / "models"
    sd1(models / "checkpoints" / "dreamy.safetensors")
    sdxl(models / "checkpoints" / "sdxl" / "nested" / "juggernaut.safetensors")  # any depth
    lora(models / "loras" / "ink.safetensors")
    esrgan(models / "upscalers" / "4x-UltraSharp.safetensors")
    diffusers_folder(models / "tiny-sd")
    (models / "old.ckpt").write_bytes(pickle.dumps({"state_dict": {}}))
    items = {i.name: i for i in scan_library(models)}
    assert {n: i.label for n, i in items.items() if i.usable} == {
        "dreamy": "SD 1.x", "juggernaut": "SDXL", "tiny-sd": "SD 1.x", "ink": "LoRA",
        "4x-UltraSharp": "Upscaler (ESRGAN)"}
    assert items["tiny-sd"].source == "Hugging Face: someone/tiny-sd" and items["tiny-sd"].is_folder
    assert items["tiny-sd"].size == (models / "tiny-sd" / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size
    assert items["dreamy"].source == "models folder"
    assert items["dreamy"].size == (models / "checkpoints" / "dreamy.safetensors").stat().st_size
    assert "pickle" in items["old"].problem and "convert-weights" in items["old"].problem
    # Checkpoints first, then by kind and name.
    assert [i.kind for i in scan_library(models)][:3] == ["checkpoint"] * 3


def test_the_model_picker_lists_single_files_and_folders(tmp_path):
    models = tmp_path / "models"
    sd1(models / "checkpoints" / "dreamy.safetensors")
    diffusers_folder(models / "tiny-sd")
    lora(models / "loras" / "ink.safetensors")
    (models / "broken.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{not json}")
    entries = find_models(models)
    assert [(e.name, e.label) for e in entries] == [("dreamy", "SD 1.x"), ("tiny-sd", "SD 1.x")]
    assert resolve_model("dreamy", models) == (models / "checkpoints" / "dreamy.safetensors").resolve()
    assert resolve_model("dreamy.safetensors", models) == entries[0].path


def test_other_tools_folders_are_used_in_place_and_duplicates_found_by_hash(tmp_path):
    models = tmp_path / "models"
    mine = sd1(models / "checkpoints" / "dreamy.safetensors")
    a1111 = tmp_path / "stable-diffusion-webui"
    sd1(a1111 / "models" / "Stable-diffusion" / "dreamy-copy.safetensors")  # same bytes as mine
    sd1(a1111 / "models" / "Stable-diffusion" / "other.safetensors", fill=7)
    lora(a1111 / "models" / "Lora" / "ink.safetensors")
    comfy = tmp_path / "ComfyUI" / "models"
    for sub in ("checkpoints", "loras", "upscale_models"):
        (comfy / sub).mkdir(parents=True)
    esrgan(comfy / "upscale_models" / "4x.safetensors")
    assert detect_layout(a1111) == "AUTOMATIC1111" and detect_layout(comfy) == "ComfyUI"
    items = with_hashes(scan_library(models, [a1111, comfy]), tmp_path / "hashes.json")
    by_name = {i.name: i for i in items}
    assert by_name["dreamy-copy"].source == f"AUTOMATIC1111 folder {a1111}"
    assert by_name["4x"].source == f"ComfyUI folder {comfy}"
    assert by_name["dreamy"].hash == hashlib.sha256(mine.read_bytes()).hexdigest()[:10]  # AutoV2
    assert by_name["dreamy-copy"].duplicate_of == mine.resolve()
    assert by_name["other"].duplicate_of is None and by_name["dreamy"].duplicate_of is None
    assert [e.name for e in find_models(models, [a1111])] == ["dreamy", "dreamy-copy", "other"]
    assert find_item("ink.safetensors", items).kind == "lora"


def test_an_a1111_folder_is_read_only_in_its_model_folders_not_its_outputs_extensions_or_venv(tmp_path):
    """Linking ~/stable-diffusion-webui listed a training run's saves in outputs/ (and weights under extensions/,
    venv/, repositories/) as LoRAs of the library."""
    webui = tmp_path / "stable-diffusion-webui"
    sd1(webui / "models" / "Stable-diffusion" / "dreamy.safetensors")
    lora(webui / "models" / "Lora" / "ink.safetensors")
    lora(webui / "models" / "LyCORIS" / "loose.safetensors")
    esrgan(webui / "models" / "ESRGAN" / "4x.safetensors")
    lora(webui / "embeddings" / "beside.safetensors")  # A1111 keeps embeddings beside models/: still read
    # The ControlNet extension keeps its models in its own models/ folder: read, the extension's other folders not.
    controlnet(webui / "extensions" / "sd-webui-controlnet" / "models" / "control_canny.safetensors")
    for elsewhere in ("outputs/txt2img-images/2024-01-01/step-500.safetensors", "extensions/ext/lib/x.safetensors",
                      "extensions/sd-webui-controlnet/annotator/w.safetensors",
                      "venv/lib/site-packages/pkg/w.safetensors", "repositories/repo/weights.safetensors",
                      "log/run/last.safetensors", "stray.safetensors"):
        lora(webui / elsewhere)
    assert detect_layout(webui) == "AUTOMATIC1111"
    items = scan_library(tmp_path / "models", [webui])
    assert sorted(i.path.relative_to(webui).as_posix() for i in items) == [
        "embeddings/beside.safetensors", "extensions/sd-webui-controlnet/models/control_canny.safetensors",
        "models/ESRGAN/4x.safetensors", "models/Lora/ink.safetensors",
        "models/LyCORIS/loose.safetensors", "models/Stable-diffusion/dreamy.safetensors"]
    assert find_item("control_canny", items).kind == "controlnet"
    # models/ linked: with the embeddings A1111 keeps beside it (a prompt names them), not the rest of its folder
    assert {i.name for i in scan_library(webui / "models")} == {"dreamy", "ink", "loose", "4x", "beside"}
    comfy = tmp_path / "ComfyUI"  # the same for ComfyUI's own folder: its output/ and custom_nodes/ are not read
    lora(comfy / "models" / "loras" / "ink2.safetensors")
    (comfy / "models" / "checkpoints").mkdir()
    lora(comfy / "custom_nodes" / "node" / "x.safetensors")
    lora(comfy / "output" / "y.safetensors")
    assert [i.name for i in scan_library(comfy)] == ["ink2"]
    plain = tmp_path / "my-loras"  # a folder of no tool's layout is read whole
    lora(plain / "deep" / "down" / "z.safetensors")
    assert [i.name for i in scan_library(plain)] == ["z"]


def test_a_model_reachable_twice_is_listed_once(tmp_path):
    models = tmp_path / "models"
    file = sd1(models / "checkpoints" / "dreamy.safetensors")
    assert len(scan_library(models, [file, models / "checkpoints"])) == 1


def test_hidden_folders_and_downloads_in_progress_are_skipped(tmp_path):
    models = tmp_path / "models"
    sd1(models / ".cache" / "huggingface" / "download" / "x.safetensors")
    sd1(models / "checkpoints" / ".dreamy.safetensors.importing")
    assert scan_library(models) == []
    assert scan_library(tmp_path / "missing") == []


def test_linked_folders_inside_are_followed_and_a_link_loop_ends(tmp_path):
    models = tmp_path / "models"
    sd1(tmp_path / "elsewhere" / "dreamy.safetensors")
    models.mkdir()
    (models / "shared").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "loop").symlink_to(tmp_path / "elsewhere")
    assert [i.name for i in scan_library(models)] == ["dreamy"]


def test_taesd_preview_decoders_are_listed_as_such(tmp_path):
    folder = tmp_path / "models" / "taesdxl"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"_class_name": "AutoencoderTiny"}')
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"\x08\0\0\0\0\0\0\0{}      ")
    [item] = scan_library(tmp_path / "models")
    assert (item.name, item.kind, item.label) == ("taesdxl", "preview-decoder", "TAESD preview decoder")


def test_a_linked_folder_that_is_gone_is_listed_as_missing_not_dropped(tmp_path):
    models = tmp_path / "models"
    sd1(models / "checkpoints" / "dreamy.safetensors")
    gone, drive = tmp_path / "unplugged" / "ComfyUI" / "models", tmp_path / "drive"
    sd1(drive / "juggernaut.safetensors")
    items = {i.name: i for i in scan_library(models, [gone, drive])}
    assert items["models"].label == "Missing" and items["models"].linked and not items["models"].usable
    assert items["models"].problem.startswith(f"The linked folder {gone} is not there (moved, or on a drive")
    assert items["juggernaut"].usable and items["dreamy"].usable
    assert [i.name for i in with_hashes(items.values(), None) if i.hash == ""] == ["models"]


def test_a_single_file_downloaded_from_the_hub_names_its_repository(tmp_path):
    models = tmp_path / "models"
    sd1(models / "sd-turbo-single" / "model.safetensors")
    (models / "sd-turbo-single" / ".studio-source.json").write_text('{"source": "hub", "repo_id": "someone/turbo"}')
    sd1(models / "checkpoints" / "dreamy.safetensors")
    items = {i.name: i.source for i in scan_library(models)}
    assert items == {"model": "Hugging Face: someone/turbo", "dreamy": "models folder"}


def test_a_symlink_loop_is_listed_as_unusable_and_the_rest_of_the_library_still_is(tmp_path):
    """A looping link anywhere crashed the whole scan (Path.resolve raises RuntimeError "Symlink loop")."""
    models = tmp_path / "models"
    sd1(models / "checkpoints" / "good.safetensors")
    (models / "checkpoints" / "a.safetensors").symlink_to("b.safetensors")
    (models / "checkpoints" / "b.safetensors").symlink_to("a.safetensors")
    (tmp_path / "loop").symlink_to("loop")  # a linked folder that became a loop
    items = {i.name: i for i in with_hashes(scan_library(models, [tmp_path / "loop"]), None)}
    assert items["good"].usable and items["good"].label == "SD 1.x"
    assert not items["a"].usable and items["a"].problem == (
        f"{models / 'checkpoints' / 'a.safetensors'} is a loop of symbolic links (it leads back to itself), so it "
        "cannot be read; fix or delete the link.")
    assert not items["b"].usable and items["a"].label == "Unusable"
    assert not items["loop"].usable
    assert resolve_model("good", models) == (models / "checkpoints" / "good.safetensors").resolve()
    assert [m.name for m in find_models(models, [tmp_path / "loop"])] == ["good"]


def test_a_lycoris_loha_file_is_listed_with_why_it_cannot_be_used(tmp_path):
    from model_files import write

    models = tmp_path / "models"
    write(models / "loras" / "my_loha.safetensors", {"lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a": (4, 4),
                                                     "lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_b": (4, 4)})
    lora(models / "loras" / "plain.safetensors")
    items = {i.name: i for i in scan_library(models)}
    assert items["plain"].usable
    assert items["my_loha"].label.startswith("LyCORIS LoHa") and not items["my_loha"].usable
    assert items["my_loha"].problem == ("my_loha.safetensors is a LyCORIS LoHa file; Studio applies LoRA and LoCon "
                                        "files, not LyCORIS LoHa or LoKr ones.")


def test_controlnets_are_listed_in_their_folder_with_their_family_and_what_cannot_guide_with_why(tmp_path):
    import json

    import numpy as np
    from safetensors.numpy import save_file

    from studio.core.model_library import KIND_FOLDERS

    assert KIND_FOLDERS["controlnet"] == "controlnet"
    models = tmp_path / "models"
    folder = models / "controlnet"
    folder.mkdir(parents=True)
    to_k = "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    save_file({to_k: np.zeros((1, 768), np.uint8), "control_model.input_hint_block.0.weight": np.zeros(1, np.uint8)},
              str(folder / "control_v11p_sd15_canny.safetensors"))
    save_file({"lora_controlnet": np.zeros(1, np.uint8)}, str(folder / "control-lora-canny.safetensors"))
    canny_xl = folder / "controlnet-canny-sdxl-1.0"
    canny_xl.mkdir()
    (canny_xl / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel", "cross_attention_dim": 2048}))
    save_file({"conv_in.weight": np.zeros(1, np.uint8)}, str(canny_xl / "diffusion_pytorch_model.safetensors"))
    items = {i.name: i for i in scan_library(models)}
    assert {n: (i.kind, i.family, i.label, i.usable) for n, i in items.items()} == {
        "control_v11p_sd15_canny": ("controlnet", "sd1", "ControlNet (SD 1.x)", True),
        "controlnet-canny-sdxl-1.0": ("controlnet", "sdxl", "ControlNet (SDXL)", True),
        "control-lora-canny": ("controlnet", "", "Control-LoRA", False)}
    assert items["controlnet-canny-sdxl-1.0"].is_folder
    assert "is a Control-LoRA, which Studio cannot use" in items["control-lora-canny"].problem
    canny = folder / "control_v11p_sd15_canny.safetensors"
    hashed = {i.name: i.hash for i in with_hashes(items.values(), None)}
    assert hashed["control_v11p_sd15_canny"] == hashlib.sha256(canny.read_bytes()).hexdigest()[:10]  # AutoV2


def test_a_controlnets_recipe_hash_is_sd_webui_controlnets(tmp_path):
    """A1111's old model_hash: SHA-256 of the 64 KiB at 1 MiB, 8 digits (``Model: control_v11p_sd15_canny
    [d14c016b]``); of a diffusers folder, its weights file's."""
    from studio.core.hashing import controlnet_hash

    data = bytes(range(256)) * 5000  # 1.28 MB
    (tmp_path / "canny.safetensors").write_bytes(data)
    assert controlnet_hash(tmp_path / "canny.safetensors") == hashlib.sha256(data[2**20:2**20 + 2**16]).hexdigest()[:8]
    folder = tmp_path / "canny-folder"
    folder.mkdir()
    (folder / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"small")
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(data)
    assert controlnet_hash(folder) == controlnet_hash(tmp_path / "canny.safetensors")  # the full-precision file
    (tmp_path / "empty").mkdir()
    assert controlnet_hash(tmp_path / "empty") == ""  # no weights


def test_unhashed_items_are_those_a_listing_reads_whole_and_hashing_reports_their_bytes(tmp_path):
    from studio.core.model_library import unhashed

    models, cache = tmp_path / "models", tmp_path / "hashes.json"
    sd1(models / "checkpoints" / "a.safetensors")
    lora(models / "loras" / "ink.safetensors")
    items = scan_library(models)
    assert unhashed(items, cache) == items
    read: list[int] = []
    with_hashes(items, cache, progress=read.append)
    assert sum(read) == sum(item.size for item in items)
    assert unhashed(items, cache) == []
    sd1(models / "checkpoints" / "a.safetensors", fill=7)  # changed: read again
    assert [item.name for item in unhashed(scan_library(models), cache)] == ["a"]


def test_a_folder_that_cannot_hold_models_is_said_why(tmp_path, monkeypatch):
    import os

    from studio.core.model_library import models_folder_problem

    assert models_folder_problem(tmp_path) == ""
    assert models_folder_problem(Path("/")) == "/ is the root of the filesystem, not a folder for models"
    for system in ("/proc", "/sys/kernel", "/dev", "/usr"):
        assert models_folder_problem(Path(system)) == f"{system} is a system folder, which cannot hold models"
    assert models_folder_problem(sd1(tmp_path / "a.safetensors")) == f"{tmp_path / 'a.safetensors'} is not a folder"
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root may write anywhere: as a person sees it
    assert models_folder_problem(tmp_path) == (f"{tmp_path} cannot be written to, so models could not be imported or "
                                               "downloaded into it")


def test_a_model_folder_without_its_model_index_lists_its_parts_as_what_they_are_and_unusable(tiny_model_dir,
                                                                                             tmp_path):
    """A linked model folder that lost model_index.json listed its text_encoder/ as "Image encoder
    (CLIPTextModel)" and its unet/ as "Unknown", both as if usable."""
    import shutil

    loose = tmp_path / "loose"
    shutil.copytree(tiny_model_dir, loose)
    (loose / "model_index.json").unlink()
    items = {item.name: item for item in scan_library(tmp_path / "models", [loose])}
    for name, label, part in (("text_encoder", "Text encoder (CLIPTextModel)", "text encoder"),
                              ("unet", "UNet (UNet2DConditionModel)", "UNet")):
        assert (items[name].kind, items[name].label) == ("unknown", label)
        assert items[name].problem == (f"{name} is the {part} of a Stable Diffusion model, which Studio does not use "
                                       "on its own: the folder it is in has no model_index.json, so it is no whole "
                                       "model; copy or download that model again.")
    assert items["vae"].kind == "vae" and items["vae"].usable  # a VAE is used on its own


def test_a_model_folder_naming_a_class_its_libraries_lack_is_listed_unusable_in_one_sentence(tiny_model_dir,
                                                                                              tmp_path):
    """model_index.json naming a class diffusers lacks (a newer diffusers' scheduler, a folder mixing two models)
    was listed as usable, and the picker offered it until loading it failed. (transformers' classes are left to
    loading: its class table costs seconds of import.)"""
    import json
    import os
    import shutil
    import subprocess
    import sys

    import studio

    models = tmp_path / "models"
    named = {"newer": ("scheduler", "diffusers", "NopeScheduler"), "mixed": ("unet", "diffusers", "UNet9000Model"),
             "odd-vae": ("vae", "diffusers", "AutoencoderNope")}
    for name, (component, library, class_name) in {**named, "old-sd15": ("feature_extractor", "transformers",
                                                                          "CLIPFeatureExtractor")}.items():
        folder = models / name
        shutil.copytree(tiny_model_dir, folder)
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        index[component] = [library, class_name]
        (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    (models / "old-sd15" / "feature_extractor").mkdir()  # SD 1.5's own, which diffusers loads as CLIPImageProcessor
    (models / "old-sd15" / "feature_extractor" / "preprocessor_config.json").write_text("{}", encoding="utf-8")
    shutil.copytree(tiny_model_dir, models / "whole")
    items = {item.name: item for item in scan_library(models)}
    for name, (component, library, class_name) in named.items():
        assert items[name].kind == "checkpoint" and not items[name].usable
        assert items[name].problem == (f"The model {name} names the class {class_name} for its {component} in "
                                       f"model_index.json, which {library} does not have; the folder may mix files "
                                       "of two models.")
    assert items["whole"].usable and items["old-sd15"].usable, (items["whole"].problem, items["old-sd15"].problem)
    assert [entry.name for entry in find_models(models)] == ["old-sd15", "whole"]
    # Listing looks the classes up without importing diffusers (it imports torch): `studio models` stays quick.
    listed = subprocess.run(
        [sys.executable, "-c", "import sys; from studio.core.model_library import scan_library; "
         f"print(sorted(i.name for i in scan_library(__import__('pathlib').Path({str(models)!r})) if i.usable)); "
         "print(sorted({'torch', 'diffusers', 'transformers'} & set(sys.modules)))"],
        capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "PYTHONPATH": str(Path(studio.__file__).parent.parent)})
    assert listed.stdout.split("\n")[:2] == ["['old-sd15', 'whole']", "[]"], listed.stderr


def test_a_scan_reads_each_model_folders_model_index_once(tiny_model_dir, tmp_path, monkeypatch):
    """A scan read (and parsed) a diffusers folder's model_index.json three times: for its kind, for the folder's
    checks and for the classes it names; the library can hold hundreds of folders, listed beside the first frame."""
    import shutil
    from collections import Counter

    models = tmp_path / "models"
    for name in ("alpha", "beta", "gamma"):
        shutil.copytree(tiny_model_dir, models / "sd" / name)
    reads: Counter[Path] = Counter()
    read_text = Path.read_text

    def counting_read_text(self: Path, *args, **kwargs) -> str:  # noqa: ANN002, ANN003
        if self.name == "model_index.json":
            reads[self.parent.name] += 1
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting_read_text)
    items = scan_library(models)
    assert sorted((item.name, item.usable) for item in items) == [("alpha", True), ("beta", True), ("gamma", True)]
    assert reads == {"alpha": 1, "beta": 1, "gamma": 1}


def test_a_scan_lists_each_model_folders_files_once(tiny_model_dir, tmp_path, monkeypatch):
    """A scan walked a diffusers folder's files twice (rglob lists each folder twice, too): for the folder's checks
    and for its size; one listing now gives both."""
    import os
    import shutil
    from collections import Counter

    models = tmp_path / "models"
    for name in ("alpha", "beta"):
        shutil.copytree(tiny_model_dir, models / name)
    listings: Counter[str] = Counter()
    scandir = os.scandir

    def counting_scandir(path=".", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        listings[Path(path).relative_to(models).as_posix()] += 1
        return scandir(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    items = scan_library(models)
    assert sorted((item.name, item.usable, item.size > 0) for item in items) == [("alpha", True, True),
                                                                                   ("beta", True, True)]
    parts = {f"{name}/{part.name}" for name in ("alpha", "beta") for part in tiny_model_dir.iterdir() if part.is_dir()}
    assert parts and {place: listings[place] for place in parts} == dict.fromkeys(parts, 1)


def test_a_scan_reads_each_model_folders_unet_config_once(tiny_model_dir, tmp_path, monkeypatch):
    """A scan read a diffusers folder's unet/config.json twice: for its kind (SD 1.x, inpainting) and for the
    folder's checks (that every component has a config naming its class)."""
    import shutil
    from collections import Counter

    models = tmp_path / "models"
    for name in ("alpha", "beta"):
        shutil.copytree(tiny_model_dir, models / name)
    reads: Counter[str] = Counter()
    read_text = Path.read_text

    def counting_read_text(self: Path, *args, **kwargs) -> str:  # noqa: ANN002, ANN003
        if self.is_relative_to(models):
            reads[self.relative_to(models).as_posix()] += 1
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting_read_text)
    items = scan_library(models)
    assert sorted((item.name, item.usable) for item in items) == [("alpha", True), ("beta", True)]
    assert reads["alpha/unet/config.json"] == reads["beta/unet/config.json"] == 1
    assert reads["alpha/vae/config.json"] == 1  # the checks still read the configs the kind did not


def test_a_scan_does_not_look_again_for_the_component_files_the_folders_listing_found(tiny_model_dir, tmp_path,
                                                                                        monkeypatch):
    """The folder's checks looked up (a stat each) every component's config file the folder's listing had just
    found; they look only for the ones it did not find."""
    import shutil
    from collections import Counter

    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / "alpha")
    looked: Counter[str] = Counter()
    is_file = Path.is_file

    def counting_is_file(self: Path) -> bool:
        if self.is_relative_to(models):
            looked[self.relative_to(models).as_posix()] += 1
        return is_file(self)

    monkeypatch.setattr(Path, "is_file", counting_is_file)
    items = scan_library(models)
    assert [(item.name, item.usable) for item in items] == [("alpha", True)]
    configs = ["alpha/vae/config.json", "alpha/text_encoder/config.json", "alpha/scheduler/scheduler_config.json"]
    assert {config: looked[config] for config in configs} == dict.fromkeys(configs, 0)
    assert all((models / config).is_file() for config in configs)  # they are there, and the counting sees a look
    assert {config: looked[config] for config in configs} == dict.fromkeys(configs, 1)


def test_a_scan_resolves_each_items_path_once_for_where_it_is_and_whether_it_loops(tiny_model_dir, tmp_path,
                                                                                     monkeypatch):
    """A scan resolved every item's path (a look-up of each part of it) twice in a row: for where it really is and
    to tell a link loop; one resolve tells both. (The folder walk resolves each folder once more, to read it once.)"""
    import shutil
    from collections import Counter

    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / "alpha")
    (models / "loop.safetensors").symlink_to(models / "loop.safetensors")
    resolved: Counter[str] = Counter()
    resolve = Path.resolve

    def counting_resolve(self: Path, *args, **kwargs) -> Path:  # noqa: ANN002, ANN003
        resolved[self.name] += 1
        return resolve(self, *args, **kwargs)

    monkeypatch.setattr(Path, "resolve", counting_resolve)
    items = {item.name: item for item in scan_library(models)}
    assert items["alpha"].usable and "is a loop of symbolic links" in items["loop"].problem
    assert resolved["alpha"] == 2 and resolved["loop.safetensors"] == 1


def test_one_rule_takes_a_weights_suffix_off_a_name():
    from studio.core.model_library import without_weights_suffix

    assert without_weights_suffix("ink.SafeTensors") == "ink" and without_weights_suffix("flux.gguf") == "flux"
    assert without_weights_suffix("model.v1.5") == "model.v1.5" and without_weights_suffix(".ckpt") == ".ckpt"
