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
from single_file import write_original_checkpoint

from studio.engine.device import select_device
from studio.engine.loader import load_model

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
        module = getattr(loaded.text2img, name)
        # torch cannot resize memory it did not allocate itself, such as a mapped file's pages
        assert all(t.untyped_storage().resizable() for t in (*module.parameters(), *module.buffers())), name
    if Path("/proc/self/maps").exists():
        assert [line for line in Path("/proc/self/maps").read_text().splitlines() if str(models) in line] == []
