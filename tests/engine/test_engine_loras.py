"""LoRAs and a VAE override on the real engine: the tiny SD pipeline, loaded through Studio's loader."""

from __future__ import annotations

import logging
import os
import pickle
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_testing import (
    DirectContext,
    collect_until_done,
    run,
    running_service,
    terminal,
    tiny_request,
)
from tiny_loras import (
    build_tiny_vae_folder,
    ldm_vae_state,
    lora_state,
    other_tiny_unet,
    save_kohya_lora,
    save_lora,
    tiny_unet,
    widen_context,
)
from tiny_models import build_tiny_ip_adapter

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import ModelError
from studio.core.events import JobFailed, JobFinished
from studio.core.hashing import lora_hash, model_hash
from studio.core.images import read_recipe
from studio.core.metadata import LoraRecord
from studio.core.requests import GenerationRequest, LoraChoice
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.loras import merged_key, resolve_loras, use_loras
from studio.services.changed_files import recorded_files
from studio.services.history_reuse import request_for_entry
from studio.services.history_store import HistoryStore
from studio.services.outputs import OutputStore


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory) -> Path:
    """A models folder: the tiny model, LoRAs for it (diffusers and kohya layout), and another VAE."""
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("lora-models")
    state = lora_state(tiny_unet(tiny_model_dir))
    save_lora(state, root / "loras" / "detail.safetensors")
    save_kohya_lora(state, root / "loras" / "styles" / "detail-kohya.safetensors")
    save_lora(widen_context(state, 2048), root / "loras" / "xl-detail.safetensors")
    save_lora(lora_state(other_tiny_unet()), root / "loras" / "wide-blocks.safetensors")
    vae_dir = build_tiny_vae_folder(root / "vae" / "other-vae", tiny_model_dir)
    vae_state = load_file(vae_dir / "diffusion_pytorch_model.safetensors")
    save_file(vae_state, str(root / "vae" / "other-vae-file.safetensors"))
    save_file(ldm_vae_state(vae_state), str(root / "vae" / "other-vae-ldm.safetensors"))
    build_tiny_ip_adapter(root, tiny_model_dir)
    return root


@pytest.fixture(scope="module")
def generator(models, tmp_path_factory) -> DiffusersGenerator:
    root = tmp_path_factory.mktemp("lora-env")
    return DiffusersGenerator(GeneratorEnvironment("cpu", root / "data", root / "cache", models))


def request(model: Path, **kwargs) -> GenerationRequest:  # noqa: ANN003
    return tiny_request(model, prepared=True, **kwargs)


def make(generator: DiffusersGenerator, req: GenerationRequest):  # noqa: ANN201
    ((image, recipe),) = list(generator.generate(req, DirectContext()))
    return np.asarray(image, dtype=np.int16), recipe


def loras(*pairs) -> tuple[LoraChoice, ...]:  # noqa: ANN002
    return tuple(LoraChoice(name, weight) for name, weight in pairs)


def test_a_lora_changes_the_picture_for_its_job_only(generator, tiny_model_dir, models):
    plain, plain_recipe = make(generator, request(tiny_model_dir))
    with_lora, recipe = make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0))))
    at_zero, _ = make(generator, request(tiny_model_dir, loras=loras(("detail", 0.0))))
    after, _ = make(generator, request(tiny_model_dir))
    again, _ = make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0))))

    assert np.abs(with_lora - plain).mean() > 2  # the LoRA has a visible effect
    assert np.abs(at_zero - plain).max() <= 1  # weight 0: the base model, within rounding
    assert np.array_equal(after, plain)  # unloaded: the next job is exactly the base model
    assert np.array_equal(again, with_lora)
    assert plain_recipe.loras == () and plain_recipe.vae_name == ""
    assert recipe.loras == (LoraRecord("detail", lora_hash(models / "loras" / "detail.safetensors"), 1.0),)
    assert 'Lora hashes: "detail: ' in recipe.to_parameters()
    assert generator._model.text2img.get_list_adapters() == {}  # no PEFT layers left behind
    # img2img shares the UNet: the LoRA works there too, and comes off again.
    init = Image.new("RGB", (64, 64), (200, 40, 40))
    img_plain, _ = make(generator, request(tiny_model_dir, init_image=init, strength=0.6, steps=4))
    img_lora, _ = make(generator, request(tiny_model_dir, init_image=init, strength=0.6, steps=4,
                                          loras=loras(("detail", 1.0))))
    assert np.abs(img_lora - img_plain).mean() > 1
    assert np.array_equal(make(generator, request(tiny_model_dir))[0], plain)


def test_a_kohya_lora_in_a_subfolder_and_weights_combine(generator, tiny_model_dir, models):
    diffusers_format, _ = make(generator, request(tiny_model_dir, loras=loras(("detail", 0.7))))
    kohya, recipe = make(generator, request(tiny_model_dir, loras=loras(("styles/detail-kohya", 0.7))))
    assert np.abs(kohya - diffusers_format).max() <= 2  # the same layers, converted by diffusers on load
    assert recipe.loras[0].name == "styles/detail-kohya"
    both, recipe = make(generator, request(tiny_model_dir, loras=loras(("detail", 0.35),
                                                                      ("styles/detail-kohya", 0.35))))
    assert np.abs(both - diffusers_format).max() <= 2  # two halves of the same LoRA make one whole
    assert [(r.name, r.weight) for r in recipe.loras] == [("detail", 0.35), ("styles/detail-kohya", 0.35)]
    # A path outside the models folder works too, recorded by its file name.
    by_path, recipe = make(generator, request(tiny_model_dir, loras=loras(
        (str(models / "loras" / "styles" / "detail-kohya.safetensors"), 0.7))))
    assert np.array_equal(by_path, kohya)


def test_a_lora_a_vae_and_a_reference_picture_work_together_and_all_come_off(generator, tiny_model_dir):
    reference = Image.new("RGB", (64, 64), (240, 140, 20))
    plain, _ = make(generator, request(tiny_model_dir))
    lora_only, _ = make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0))))
    everything, recipe = make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0)), vae="other-vae",
                                                 reference_image=reference, reference_scale=1.0))
    assert np.abs(everything - lora_only).mean() > 1
    assert (len(recipe.loras), recipe.vae_name) == (1, "other-vae")
    assert np.array_equal(make(generator, request(tiny_model_dir))[0], plain)


def test_the_vae_override_changes_the_picture_for_its_job_only(generator, tiny_model_dir, models):
    plain, _ = make(generator, request(tiny_model_dir))
    folder_vae, recipe = make(generator, request(tiny_model_dir, vae="other-vae"))
    file_vae, file_recipe = make(generator, request(tiny_model_dir, vae="other-vae-file"))
    ldm_vae, _ = make(generator, request(tiny_model_dir, vae="other-vae-ldm.safetensors"))
    after, _ = make(generator, request(tiny_model_dir))

    assert np.abs(folder_vae - plain).mean() > 2
    assert np.array_equal(file_vae, folder_vae)  # the same weights as one file (diffusers keys)
    assert np.abs(ldm_vae - folder_vae).max() <= 1  # and in the original LDM layout
    assert np.array_equal(after, plain)
    assert (recipe.vae_name, recipe.vae_hash) == ("other-vae", model_hash(models / "vae" / "other-vae"))
    assert file_recipe.vae_hash == model_hash(models / "vae" / "other-vae-file.safetensors")
    assert "VAE hash: " in recipe.to_parameters() and "VAE: other-vae" in recipe.to_parameters()


def test_the_recorded_recipe_and_the_history_run_it_again(tiny_model_dir, models, tmp_path):
    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models)
    store = HistoryStore(tmp_path / "history.db")
    first = request(tiny_model_dir, loras=loras(("detail", 0.8)), vae="other-vae")

    async def scenario(requests):  # noqa: ANN001, ANN202
        async with running_service(env, outputs=OutputStore(tmp_path / "outputs"), history=store) as service:
            stream = service.subscribe()
            jobs = [service.submit(r) for r in requests]
            events = await collect_until_done(stream, jobs)
            return [terminal(events, job) for job in jobs]

    (made,) = run(scenario([first]))
    assert isinstance(made, JobFinished), made
    output = made.outputs[0]
    recipe = read_recipe(output.path)
    assert recipe == output.recipe
    assert [(r.name, r.weight) for r in recipe.loras] == [("detail", 0.8)] and recipe.vae_name == "other-vae"
    from_recipe = request(tiny_model_dir, prompt=recipe.prompt, negative_prompt=recipe.negative_prompt,
                          seed=recipe.seed, loras=tuple(LoraChoice(r.name, r.weight) for r in recipe.loras),
                          vae=recipe.vae_name)
    (row,) = store.search()
    from_history = request_for_entry(row)
    assert (from_history.loras, from_history.vae) == (first.loras, first.vae)
    # The history keeps the files' hashes beside their names: a rerun checks them after the picture is deleted.
    assert (row.params["loras"][0]["hash"], row.params["vae_hash"]) == (recipe.loras[0].hash, recipe.vae_hash)
    gone = replace(row, image_path=str(tmp_path / "deleted.png"))
    assert [(f.kind, f.chosen, f.digest) for f in recorded_files(gone)] == [
        ("LoRA", "detail", recipe.loras[0].hash), ("VAE", "other-vae", recipe.vae_hash)]
    again = run(scenario([from_recipe, from_history]))
    store.close()
    expected = np.asarray(output.image, dtype=np.int16)
    for end in again:
        assert isinstance(end, JobFinished), end
        assert np.array_equal(np.asarray(end.outputs[0].image, dtype=np.int16), expected)


def test_a_missing_lora_or_vae_says_where_studio_looked(generator, tiny_model_dir, models):
    with pytest.raises(ModelError) as missing:
        make(generator, request(tiny_model_dir, loras=loras(("no-such", 1.0))))
    assert str(missing.value) == (f"No LoRA named 'no-such' was found: Studio looked for "
                                  f"{models / 'loras' / 'no-such.safetensors'} and for a file at no-such.")
    with pytest.raises(ModelError, match=r"^No VAE named 'gone' was found: Studio looked for the folder .*vae/gone"):
        make(generator, request(tiny_model_dir, vae="gone"))


@pytest.mark.parametrize("protocol", [0, 4])
def test_a_pickle_renamed_safetensors_is_refused_unread(generator, tiny_model_dir, models, tmp_path, protocol):
    sentinel = tmp_path / "pwned.txt"

    class Payload:
        def __reduce__(self):  # noqa: ANN204
            return (exec, (f"open({str(sentinel)!r}, 'w').write('ran')",))

    lora = models / "loras" / f"evil-{protocol}.safetensors"
    lora.write_bytes(pickle.dumps({"unet.x.lora_A.weight": Payload()}, protocol=protocol))
    vae = tmp_path / "evil-vae.safetensors"
    vae.write_bytes(lora.read_bytes())
    plain, _ = make(generator, request(tiny_model_dir))
    with pytest.raises(ModelError, match=f"^evil-{protocol}.safetensors is a pickle checkpoint, which can run code"):
        make(generator, request(tiny_model_dir, loras=loras((f"evil-{protocol}", 1.0))))
    with pytest.raises(ModelError, match="^evil-vae.safetensors is a pickle checkpoint"):
        make(generator, request(tiny_model_dir, vae=str(vae)))
    assert not sentinel.exists()
    assert np.array_equal(make(generator, request(tiny_model_dir))[0], plain)


def test_a_lora_for_another_kind_of_model_is_refused_with_a_sentence(generator, tiny_model_dir):
    plain, _ = make(generator, request(tiny_model_dir))
    with pytest.raises(ModelError) as wrong_family:
        make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0), ("xl-detail", 1.0))))
    assert str(wrong_family.value) == (
        "The LoRA xl-detail was made for SDXL models and does not fit tiny-sd, which is a 32-wide text-embedding "
        "model; choose a LoRA made for 32-wide text-embedding models.")
    # Same text width, other layer sizes: caught from diffusers' own error.
    with pytest.raises(ModelError) as wrong_sizes:
        make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0), ("wide-blocks", 1.0))))
    assert str(wrong_sizes.value) == ("The LoRA wide-blocks does not fit tiny-sd: its layers were made for a "
                                      "different kind of model; choose a LoRA made for this one.")
    assert generator._model.text2img.get_list_adapters() == {}  # the one that did load was taken off
    assert np.array_equal(make(generator, request(tiny_model_dir))[0], plain)


def test_merging_keeping_and_putting_back_time_on_the_tiny_model(generator, tiny_model_dir, models):
    make(generator, request(tiny_model_dir))
    pipe = generator._model.text2img
    files = resolve_loras(models, loras(("detail", 1.0)))
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        assert use_loras(pipe, files, "tiny-sd")
        merged = time.perf_counter()
        assert not use_loras(pipe, files, "tiny-sd")  # the same LoRAs: kept as they are
        kept = time.perf_counter()
        assert use_loras(pipe, [], "tiny-sd") and merged_key(pipe) == ()
        timings.append((merged - started, kept - merged, time.perf_counter() - kept))
    merge, keep, put_back = (min(t[i] for t in timings) for i in range(3))
    print(f"\nLoRA merge {merge * 1000:.1f} ms, kept {keep * 1000:.2f} ms, base back {put_back * 1000:.1f} ms "
          "(tiny model, CPU)")
    assert merge < 5 and keep < 0.05 and put_back < 5


def test_the_same_loras_stay_merged_for_the_next_job_and_only_a_change_loads_again(generator, tiny_model_dir, models,
                                                                                  monkeypatch):
    plain, _ = make(generator, request(tiny_model_dir))
    pipe = generator._model.text2img
    loaded: list[str] = []
    load = type(pipe).load_lora_weights

    def counted(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        loaded.append(kwargs["weight_name"])
        return load(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "load_lora_weights", counted)
    first, _ = make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0))))
    second, recipe = make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0)), seed=2))
    third, _ = make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0))))
    assert loaded == ["detail.safetensors"]  # the second and third jobs loaded nothing
    assert np.array_equal(third, first) and not np.array_equal(second, first)
    assert recipe.loras[0].name == "detail"  # recorded as for any LoRA job

    half, _ = make(generator, request(tiny_model_dir, loras=loras(("detail", 0.5))))
    assert loaded == ["detail.safetensors"] * 2  # another weight: merged again, from the base weights
    assert 0 < np.abs(half - plain).mean() < np.abs(first - plain).mean()

    path = models / "loras" / "detail.safetensors"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # the file changed on disk
    again, _ = make(generator, request(tiny_model_dir, loras=loras(("detail", 0.5))))
    assert len(loaded) == 3 and np.array_equal(again, half)
    assert np.array_equal(make(generator, request(tiny_model_dir))[0], plain) and len(loaded) == 3
    assert pipe.get_list_adapters() == {}


def test_a_merge_that_fails_part_way_leaves_the_exact_base_model(generator, tiny_model_dir, models, monkeypatch):
    plain, _ = make(generator, request(tiny_model_dir))
    make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0))))  # merged before: put back first
    pipe = generator._model.text2img
    fuse = type(pipe).fuse_lora

    def fuse_then_fail(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        fuse(self, *args, **kwargs)  # every layer merged, then the failure
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(type(pipe), "fuse_lora", fuse_then_fail)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        make(generator, request(tiny_model_dir, loras=loras(("detail", 0.5))))
    monkeypatch.undo()
    assert merged_key(pipe) == () and pipe.get_list_adapters() == {}
    assert np.array_equal(make(generator, request(tiny_model_dir))[0], plain)


def test_the_lora_and_vae_are_hashed_while_the_job_runs(generator, tiny_model_dir, models, monkeypatch):
    """A first use hashes the whole file (up to 800 MB for an SDXL LoRA): the steps do not wait for it."""
    import threading

    from studio.engine import diffusion

    stepped = threading.Event()
    hashed: list[str] = []

    def after_a_step(real):  # noqa: ANN001, ANN202
        def hashing(path, cache=None):  # noqa: ANN001, ANN202
            assert stepped.wait(20), "the steps waited for the hash"
            hashed.append(Path(path).name)
            return real(path, cache)
        return hashing

    class Stepping(DirectContext):
        def report_progress(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            stepped.set()

    monkeypatch.setattr(diffusion, "lora_hash", after_a_step(lora_hash))
    monkeypatch.setattr(diffusion, "model_hash", after_a_step(model_hash))
    ((_image, recipe),) = list(generator.generate(
        request(tiny_model_dir, loras=loras(("detail", 1.0)), vae="other-vae"), Stepping()))
    assert recipe.loras == (LoraRecord("detail", lora_hash(models / "loras" / "detail.safetensors"), 1.0),)
    assert recipe.vae_hash == model_hash(models / "vae" / "other-vae") and len(recipe.vae_hash) == 10
    assert sorted(hashed) == ["detail.safetensors", "other-vae"]

def test_switching_models_lets_the_merged_model_and_its_kept_copy_go(tiny_model_dir, tiny_inpaint_model_dir, models,
                                                                     tmp_path, monkeypatch):
    import gc
    import weakref

    from studio.engine import loras as lora_module
    from studio.engine import model_keeping

    # No memory to keep the model switched away from (test_engine_model_keeping.py keeps one): it goes.
    monkeypatch.setattr(model_keeping, "available_ram", lambda: (0, 16 * 2**30))
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models))
    make(generator, request(tiny_model_dir, loras=loras(("detail", 1.0))))
    unet = weakref.ref(generator._model.text2img.unet)
    assert unet() in lora_module._merged
    gc.collect()
    kept = len(lora_module._merged)  # other tests' live generators may keep merges of their own
    make(generator, request(tiny_inpaint_model_dir))  # another model: the first one is freed
    gc.collect()
    assert unet() is None and len(lora_module._merged) == kept - 1  # the UNet, and with it the copy of its weights


def test_merged_loras_make_the_picture_diffusers_lora_layers_make(generator, tiny_model_dir, models):
    """Merging adds the same products in another order: Studio's picture matches diffusers' unmerged PEFT layers."""
    import torch

    from studio.engine.schedulers import make_scheduler

    req = request(tiny_model_dir, loras=loras(("detail", 0.7), ("styles/detail-kohya", 0.4)))
    merged, _ = make(generator, req)
    make(generator, request(tiny_model_dir))
    pipe = generator._model.text2img
    pipe.load_lora_weights(str(models / "loras"), weight_name="detail.safetensors", adapter_name="a")
    pipe.load_lora_weights(str(models / "loras" / "styles"), weight_name="detail-kohya.safetensors", adapter_name="b")
    pipe.set_adapters(["a", "b"], adapter_weights=[0.7, 0.4])
    try:
        pipe.scheduler = make_scheduler(req.scheduler, pipe.scheduler.config)
        layered = pipe(prompt=req.prompt, negative_prompt=req.negative_prompt, num_inference_steps=req.steps,
                       guidance_scale=req.cfg_scale, width=64, height=64, output_type="pil",
                       generator=torch.Generator("cpu").manual_seed(req.seed)).images[0]
    finally:
        pipe.unload_lora_weights()
    difference = np.abs(merged - np.asarray(layered, dtype=np.int16))
    assert difference.max() <= 1  # float32 rounding only
    assert np.abs(merged - make(generator, request(tiny_model_dir))[0]).mean() > 2  # and the LoRAs did show


def test_a_failed_lora_job_is_reported_and_the_engine_goes_on(tiny_model_dir, models, tmp_path):
    env = GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models)
    bad = request(tiny_model_dir, loras=loras(("xl-detail", 1.0)))

    async def scenario():  # noqa: ANN202
        async with running_service(env) as service:
            stream = service.subscribe()
            jobs = [service.submit(bad), service.submit(replace(bad, loras=()))]
            events = await collect_until_done(stream, jobs)
            return [terminal(events, job) for job in jobs]

    failed, finished = run(scenario())
    assert isinstance(failed, JobFailed) and failed.message.startswith("The LoRA xl-detail was made for SDXL")
    assert isinstance(finished, JobFinished)


def test_history_reuse_prefers_the_recorded_request_values(tmp_path):
    from studio.services.history_store import HistoryEntry

    model = tmp_path / "model"
    model.mkdir()
    entry = HistoryEntry(prompt="p", model_path=str(model), steps=2, cfg_scale=5.0, seed=3, sampler="Euler",
                         params={"loras": [{"name": "/elsewhere/ink.safetensors", "weight": 0.5}, {"weight": 1},
                                           "junk"], "vae": "mse"})
    again = request_for_entry(entry)
    assert (again.loras, again.vae) == ((LoraChoice("/elsewhere/ink.safetensors", 0.5),), "mse")
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(b"not a picture")
    assert request_for_entry(replace(entry, params={}, image_path=str(damaged))).loras == ()


def test_files_of_another_kind_are_refused_as_lora_or_vae(generator, tiny_model_dir, models):
    vae_file = str(models / "vae" / "other-vae-file.safetensors")
    lora_file = str(models / "loras" / "detail.safetensors")
    with pytest.raises(ModelError) as as_lora:
        make(generator, request(tiny_model_dir, loras=loras((vae_file, 1.0))))
    assert str(as_lora.value) == ("other-vae-file.safetensors is not a LoRA but a VAE file; "
                                  "pick it where that kind is used.")
    with pytest.raises(ModelError) as as_vae:
        make(generator, request(tiny_model_dir, vae=lora_file))
    assert str(as_vae.value) == ("detail.safetensors is not a VAE but a LoRA file; pick it where that kind is used.")


@pytest.mark.parametrize(("mark", "what"), [("hada_w1_a", "LoHa"), ("lokr_w1", "LoKr")])
def test_a_lycoris_loha_or_lokr_file_is_refused_with_a_sentence(generator, tiny_model_dir, tmp_path, mark, what):
    """They were taken for LoRAs and failed with diffusers' "keys have not been correctly renamed"."""
    from safetensors.numpy import save_file

    path = tmp_path / f"my_{what.lower()}.safetensors"
    save_file({f"lora_unet_down_blocks_0_attentions_0_proj_in.{mark}": np.zeros((4, 4), np.float32),
               "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": np.zeros((), np.float32)}, str(path))
    with pytest.raises(ModelError) as refused:
        make(generator, request(tiny_model_dir, loras=loras((str(path), 1.0))))
    assert str(refused.value) == (f"{path.name} is a LyCORIS {what} file; Studio applies LoRA and LoCon files, "
                                  "not LyCORIS LoHa or LoKr ones.")


def test_a_lora_file_not_named_safetensors_is_refused_as_what_it_is(tmp_path):
    from model_files import lora

    from studio.engine.loras import find_lora

    picture = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(picture)
    with pytest.raises(ModelError, match=r"^photo\.png is not a safetensors file"):
        find_lora(tmp_path / "models", str(picture))
    weights = lora(tmp_path / "ink.safetensors").rename(tmp_path / "ink.lora")
    with pytest.raises(ModelError, match=r"rename it to ink\.safetensors\.$"):
        find_lora(tmp_path / "models", str(weights))


def test_a_lora_that_does_not_fit_leaves_the_terminal_quiet_and_logs_diffusers_error(
        generator, tiny_model_dir, capfd, caplog):
    make(generator, request(tiny_model_dir))
    capfd.readouterr()
    caplog.clear()
    with caplog.at_level(logging.INFO), pytest.raises(ModelError, match="^The LoRA wide-blocks does not fit"):
        make(generator, request(tiny_model_dir, loras=loras(("wide-blocks", 1.0))))
    said = capfd.readouterr()
    assert (said.out, said.err) == ("", "")
    # diffusers' whole error (every "size mismatch" line) is in Studio's log, as one entry.
    entries = [r for r in caplog.records if "size mismatch" in r.getMessage()]
    assert len(entries) == 1
    assert entries[0].name.startswith("studio.")
    assert "Loading studio_lora_0 was unsuccessful" in entries[0].getMessage()


def test_a_missing_lora_named_by_its_path_is_named_once(models, tmp_path):
    gone = tmp_path / "paint.safetensors"
    with pytest.raises(ModelError) as missing:
        resolve_loras(models, loras((str(gone), 0.5)))
    assert str(missing.value) == f"The LoRA file {gone} does not exist (it was removed or moved)."
    tagged = [LoraChoice(str(gone), 0.5, tag=f"<lora:{gone}:0.5>")]
    with pytest.raises(ModelError) as from_prompt:
        resolve_loras(models, tagged)
    assert str(from_prompt.value) == (f"The LoRA file {gone} (the prompt's <lora:{gone}:0.5>) does not exist "
                                      "(it was removed or moved).")
    with pytest.raises(ModelError) as folder:
        resolve_loras(models, loras((str(tmp_path), 0.5)))
    assert str(folder.value) == f"The LoRA {tmp_path} is a folder; choose a LoRA's .safetensors file."


def test_a_lora_named_but_for_case_is_found_when_only_one_is(models, tmp_path):
    """``--lora DETAIL`` or ``<lora:Detail>`` finds detail.safetensors, as the window matches names; two files
    differing only in case leave the name unfound rather than guess."""
    (found,) = resolve_loras(models, loras(("DETAIL", 0.5)))
    assert (found.name, found.path) == ("detail", models / "loras" / "detail.safetensors")
    (nested,) = resolve_loras(models, loras(("Styles/Detail-Kohya", 0.5)))
    assert nested.name == "styles/detail-kohya"
    twice = tmp_path / "twice"
    for name in ("Ink.safetensors", "ink.safetensors"):
        (twice / "loras").mkdir(parents=True, exist_ok=True)
        (twice / "loras" / name).write_bytes((models / "loras" / "detail.safetensors").read_bytes())
    with pytest.raises(ModelError, match="^No LoRA named 'INK' was found"):
        resolve_loras(twice, loras(("INK", 0.5)))
