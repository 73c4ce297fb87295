"""A model loaded on the CPU holds its weights in Studio's own memory, not in pages of its files: a weights file cut
short in place while a job runs (another program rewriting it) must not kill Studio with SIGBUS.

The job runs in a child process, as SIGBUS would end the test run itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from single_file import write_original_checkpoint
from studio_testing import DirectContext, tiny_request
from tiny_controlnets import build_tiny_controlnet, original_layout, tiny_controlnet
from tiny_depth import depth_model_in
from tiny_models import build_tiny_ip_adapter

from studio.core.control import DEPTH, ControlGuide
from studio.core.environment import GeneratorEnvironment
from studio.engine import control_nets, depth_maps, ip_adapter
from studio.engine.device import DeviceInfo, select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.loader import load_model
from studio.engine.memory import GIB, apply_plan, plan_memory

ROOT = Path(__file__).resolve().parents[2]

# Loads the model through a first job (Studio's loader and CPU layout), cuts every weights file in the folder
# short in place, then runs the loaded pipeline again: the second job's denoising steps and decoding.
JOB_AFTER_TRUNCATION = """
import os, sys
from pathlib import Path
from studio_testing import DirectContext, tiny_request
from studio.core.environment import GeneratorEnvironment
from studio.engine.diffusion import DiffusersGenerator

model, root = Path(sys.argv[1]), Path(sys.argv[2])
generator = DiffusersGenerator(GeneratorEnvironment("cpu", root / "data", root / "cache"))
list(generator.generate(tiny_request(model, prepared=True), DirectContext()))
for weights in model.rglob("*.safetensors"):
    os.truncate(weights, 100)
pipe = generator._model.text2img
image = pipe("a red fox, snow", width=64, height=64, num_inference_steps=2, guidance_scale=5.0).images[0]
print("made", image.size)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="Windows refuses to truncate a file that is mapped")
def test_weights_cut_short_in_place_during_a_cpu_job_leave_the_loaded_model_whole(tiny_model_dir, tmp_path):
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny-copy"))
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run([sys.executable, "-c", JOB_AFTER_TRUNCATION, str(model), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)

    assert done.returncode != -signal.SIGBUS, "the job read weights from the truncated files"
    assert done.returncode == 0, done.stderr[-2000:]
    assert "made (64, 64)" in done.stdout


@pytest.mark.parametrize("layout", ["folder", "single file"])
def test_cpu_weights_are_no_pages_of_the_files_and_no_file_stays_mapped(layout, tiny_model_dir, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = tmp_path / "models"
    if layout == "folder":
        model = Path(shutil.copytree(tiny_model_dir, models / "tiny-copy"))
    else:
        model = write_original_checkpoint(tiny_model_dir, models / "checkpoints" / "tiny-original.safetensors")
        shutil.copytree(tiny_model_dir, models / "configs" / "sd1", ignore=shutil.ignore_patterns("*.safetensors"))
    loaded = load_model(model, select_device("cpu"), tmp_path / "hashes.json", models_dir=models,
                        cache_dir=tmp_path / "cache", place=False)
    loaded.hash  # the hashing thread's reads are done

    for name in ("unet", "vae", "text_encoder"):
        assert file_pages(getattr(loaded.text2img, name)) == 0, name
    assert mapped(models) == []


def file_pages(module: torch.nn.Module) -> int:
    """How many of the module's weights are in memory torch did not allocate (it can resize only its own, never a
    mapped file's pages)."""
    return sum(not t.untyped_storage().resizable() for t in (*module.parameters(), *module.buffers()))


def mapped(path: Path) -> list[str]:
    """The process's memory mappings of files under ``path`` (none where the system does not list them)."""
    maps = Path("/proc/self/maps")
    return [line for line in maps.read_text().splitlines() if str(path) in line] if maps.exists() else []


def edges() -> Image.Image:
    picture = Image.new("RGB", (64, 64))
    picture.paste((255, 255, 255), (12, 12, 50, 40))
    return picture


def put_addon(addon: str, models: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    """The add-on's files in ``models``, and what a job asks for to use it."""
    if addon == "VAE folder":
        return Path(shutil.copytree(tiny_model_dir / "vae", models / "vae" / "own-vae")), {"vae": "own-vae"}
    if addon == "ControlNet folder":
        folder = build_tiny_controlnet(models / "controlnet" / "edges", tiny_model_dir)
        return folder, {"controls": (ControlGuide("edges", edges()),)}
    if addon == "ControlNet single file":  # lllyasviel's layout, built from a config in <models>/configs
        net = tiny_controlnet(tiny_model_dir)
        monkeypatch.setitem(control_nets.CONFIG_KEYS, 32, "controlnet-tiny")
        net.save_config(models / "configs" / "controlnet-tiny")
        (models / "controlnet").mkdir(parents=True)
        save_file(original_layout(net), str(models / "controlnet" / "lines.safetensors"))
        return models / "controlnet" / "lines.safetensors", {"controls": (ControlGuide("lines", edges()),)}
    if addon == "IP-Adapter":
        folder = build_tiny_ip_adapter(models, tiny_model_dir)
        return folder, {"reference_image": Image.new("RGB", (64, 64), (240, 140, 20)), "reference_scale": 0.8}
    build_tiny_controlnet(models / "controlnet" / "depth-net", tiny_model_dir)
    return depth_model_in(models), {"controls": (ControlGuide("depth-net", edges(), preprocessor=DEPTH),)}


def kept_addon(addon: str, generator: DiffusersGenerator) -> list[torch.nn.Module]:
    """The add-on's modules Studio keeps for the next job."""
    if addon == "VAE folder":
        return [generator._vae.kept[1]]
    if addon.startswith("ControlNet"):
        return [net for _, net in generator._controls.kept]
    if addon == "IP-Adapter":
        return list(ip_adapter.kept_reference(generator._model.text2img))
    return [model for model, _ in depth_maps._models.values()]


@pytest.mark.parametrize("addon", ["VAE folder", "ControlNet folder", "ControlNet single file", "IP-Adapter",
                                   "depth model"])
def test_add_on_models_of_a_cpu_job_hold_their_weights_not_pages_of_their_files(addon, tiny_model_dir, tmp_path,
                                                                                monkeypatch):
    """A VAE, ControlNet, IP-Adapter (and its image encoder) or depth model loaded outside the model's loader keeps
    its weights in Studio's own memory too: a file of it cut short in place while a job runs must not be SIGBUS."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = tmp_path / "models"
    files, asked = put_addon(addon, models, tiny_model_dir, monkeypatch)
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models))
    list(generator.generate(tiny_request(tiny_model_dir, prepared=True, **asked), DirectContext()))

    kept = kept_addon(addon, generator)
    assert kept, "the add-on is kept for the next job"
    assert [file_pages(module) for module in kept] == [0] * len(kept)
    assert mapped(files) == []


def test_weights_a_low_vram_plan_keeps_on_the_cpu_are_no_pages_of_the_files(tiny_model_dir, tmp_path):
    """Model CPU offload keeps the weights on the CPU between their runs on the GPU: copied once out of the files'
    pages when the plan turns it on. A pretend GPU whose device is the CPU (offload's hooks move nothing)."""
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny-copy"))
    gpu = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")
    loaded = load_model(model, gpu, tmp_path / "hashes.json", place=False)  # a GPU's load copies nothing itself
    loaded.hash
    pipe = loaded.text2img
    assert file_pages(pipe.unet) > 0  # what the memory plan is given

    assert apply_plan(pipe, plan_memory("low", gpu, GIB, GIB, 80 * GIB), gpu, offloaded=False)[0]
    assert {name: file_pages(module) for name, module in pipe.components.items()
            if isinstance(module, torch.nn.Module)} == dict.fromkeys(("unet", "vae", "text_encoder"), 0)
    assert mapped(model) == []


def test_a_controlnet_offloaded_beside_the_model_holds_its_weights_not_pages_of_its_files(tiny_model_dir, tmp_path):
    """A Low VRAM job with a guide: the ControlNet joins the model's offload chain (``control_nets.place``) and stays
    on the CPU between its runs. A pretend GPU whose device is the CPU."""
    from diffusers import StableDiffusionControlNetPipeline

    folder = build_tiny_controlnet(tmp_path / "models" / "controlnet" / "edges", tiny_model_dir)
    gpu = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")
    pipe = load_model(tiny_model_dir, gpu, tmp_path / "hashes.json", place=False).text2img
    net = control_nets._load(control_nets.find_controlnet(tmp_path / "models", "edges"), gpu.dtype, None)
    assert file_pages(net) > 0  # as loaded, before the memory plan places it

    control_nets.place(StableDiffusionControlNetPipeline.from_pipe(pipe, controlnet=net), True, gpu)
    assert file_pages(net) == 0
    assert mapped(folder) == []
