"""The LoRAs, VAE and clip skip of ComfyUI, InvokeAI and Fooocus pictures, which sd-parsers does not read, and the
notes naming what Studio does not carry over (they were dropped with no word)."""

from __future__ import annotations

import json

from metadata_images import comfy_graph, comfy_png, pillow_png

from studio.core.image_info import recipe_fields, refused_values
from studio.core.image_inspection import inspect_image
from studio.core import other_tools_extras
from studio.core.other_tools_extras import weights_name


def test_weights_names_lose_their_extension_as_studio_names_them():
    assert weights_name("vae-ft-mse-840000-ema-pruned.safetensors") == "vae-ft-mse-840000-ema-pruned"
    assert weights_name("sd_xl_offset_example-lora_1.0.safetensors") == "sd_xl_offset_example-lora_1.0"
    assert weights_name("kl-f8-anime2.ckpt") == "kl-f8-anime2" and weights_name("detail.PT") == "detail"
    assert weights_name("sdxl_vae_1.0") == "sdxl_vae_1.0" and weights_name("  ") is None and weights_name(None) is None


def test_a_comfyui_lora_loader_chain_clip_skip_and_vae_loader_are_carried_over(tmp_path):
    graph = comfy_graph()
    graph["10"] = {"class_type": "LoraLoader", "inputs": {"lora_name": "add_detail.safetensors", "strength_model": 0.6,
                                                          "strength_clip": 0.6, "model": ["4", 0], "clip": ["4", 1]}}
    graph["12"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": "ink.safetensors",
                                                                   "strength_model": -0.5, "model": ["10", 0]}}
    graph["11"] = {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -2, "clip": ["10", 1]}}
    graph["13"] = {"class_type": "VAELoader", "inputs": {"vae_name": "vae-ft-mse-840000-ema-pruned.safetensors"}}
    graph["3"]["inputs"]["model"] = ["12", 0]
    graph["6"]["inputs"]["clip"] = graph["7"]["inputs"]["clip"] = ["11", 0]
    graph["8"]["inputs"]["vae"] = ["13", 0]
    info = inspect_image(comfy_png(tmp_path / "comfy.png", graph, links=None))
    assert (info.tool, info.prompt) == ("ComfyUI", "beautiful scenery, glass bottle, purple galaxy")
    assert info.loras == (("add_detail", 0.6), ("ink", -0.5))  # in the order they apply
    assert info.vae == "vae-ft-mse-840000-ema-pruned" and info.clip_skip == 2
    assert recipe_fields(info)["loras"] == [("add_detail", 0.6), ("ink", -0.5)]
    assert recipe_fields(info)["vae"] == "vae-ft-mse-840000-ema-pruned"
    assert refused_values(info)["clip_skip"] == "Studio has no clip skip setting (this picture used Clip skip 2)"
    assert info.notes == ()


def test_comfyui_lora_nodes_studio_does_not_follow_and_apart_clip_strengths_are_notes(tmp_path):
    graph = comfy_graph()
    graph["10"] = {"class_type": "LoraLoader", "inputs": {"lora_name": "add_detail.safetensors", "strength_model": 0.6,
                                                          "strength_clip": 1.0, "model": ["4", 0], "clip": ["4", 1]}}
    graph["11"] = {"class_type": "Power Lora Loader (rgthree)", "inputs": {"model": ["10", 0], "clip": ["10", 1]}}
    graph["3"]["inputs"]["model"] = ["11", 0]
    info = inspect_image(comfy_png(tmp_path / "comfy.png", graph, links=None))
    assert info.loras == () and recipe_fields(info)["vae"] == ""  # decoded with the checkpoint's own VAE
    assert info.notes == ("Studio did not carry over its LoRA nodes other than a LoraLoader chain into the sampler "
                          "(LoraLoader, Power Lora Loader (rgthree)).",)
    del graph["11"]
    graph["3"]["inputs"]["model"] = ["10", 0]
    info = inspect_image(comfy_png(tmp_path / "apart.png", graph, links=None))
    assert info.loras == (("add_detail", 0.6),)
    assert info.notes == ("The LoRA 'add_detail' had text encoder strength 1 apart from its model strength 0.6; "
                          "Studio applies 0.6 to both.",)


INVOKE_V4 = {"generation_mode": "txt2img", "positive_prompt": "a lighthouse at dusk", "negative_prompt": "lowres",
             "width": 512, "height": 768, "seed": 3141592, "cfg_scale": 7.5, "steps": 30, "scheduler": "dpmpp_2m_k",
             "clip_skip": 1, "model": {"key": "a1b2", "hash": "blake3:abcd", "name": "dreamshaper_8", "base": "sd-1",
                                       "type": "main"},
             "loras": [{"model": {"key": "x", "hash": "blake3:ef", "name": "add_detail", "base": "sd-1",
                                  "type": "lora"}, "weight": 0.75}],
             "vae": {"key": "v", "hash": "blake3:01", "name": "vae-ft-mse-840000-ema-pruned", "base": "sd-1",
                     "type": "vae"},
             "controlnets": [{"control_model": {"name": "canny"}}], "app_version": "4.2.4"}


def test_invokeai_loras_vae_and_clip_skip_are_carried_over_and_its_adapters_are_a_note(tmp_path):
    info = inspect_image(pillow_png(tmp_path / "inv4.png", {"invokeai_metadata": json.dumps(INVOKE_V4)}))
    assert (info.tool, info.model) == ("InvokeAI", "dreamshaper_8")
    assert info.loras == (("add_detail", 0.75),) and info.vae == "vae-ft-mse-840000-ema-pruned"
    assert info.clip_skip == 2  # InvokeAI counts the layers skipped: one is A1111's Clip skip 2
    assert info.notes == ("Studio did not carry over its InvokeAI ControlNets.",)
    v3 = INVOKE_V4 | {"app_version": "3.3.0", "clip_skip": 0, "controlnets": [], "vae": None,
                      "loras": [{"lora": {"model_name": "ink", "base_model": "sd-1"}, "weight": 0.5}]}
    info = inspect_image(pillow_png(tmp_path / "inv3.png", {"invokeai_metadata": json.dumps(v3)}))
    assert info.loras == (("ink", 0.5),) and info.clip_skip == 1 and info.notes == ()
    assert recipe_fields(info)["vae"] == ""  # none named: the model's own


def test_invokeai_loras_of_another_shape_are_a_note_and_the_prompt_and_model_are_kept(tmp_path):
    info = inspect_image(pillow_png(tmp_path / "inv.png", {"invokeai_metadata": json.dumps(INVOKE_V4 | {"loras": 5})}))
    assert (info.tool, info.prompt, info.model) == ("InvokeAI", "a lighthouse at dusk", "dreamshaper_8")
    assert info.loras == () and info.vae == "vae-ft-mse-840000-ema-pruned"
    assert "Studio could not read the LoRAs and VAE in this picture's InvokeAI metadata" in " ".join(info.notes)


def test_a_tool_reader_failing_on_an_odd_value_leaves_the_rest_of_the_picture(tmp_path, monkeypatch):
    def odd(info, data, notes):
        raise AttributeError("'int' object has no attribute 'get'")

    monkeypatch.setattr(other_tools_extras, "_invokeai", odd)
    info = inspect_image(pillow_png(tmp_path / "inv.png", {"invokeai_metadata": json.dumps(INVOKE_V4)}))
    assert (info.tool, info.prompt, info.model, info.seed) == ("InvokeAI", "a lighthouse at dusk", "dreamshaper_8",
                                                               3141592)
    assert info.notes == ("Studio could not read the LoRAs and VAE in this picture's InvokeAI metadata, so they were "
                          "not carried over.",)


FOOOCUS = {"prompt": "a knight on a horse", "negative_prompt": "unrealistic",
           "styles": "['Fooocus V2', 'Fooocus Enhance']", "performance": "Speed", "resolution": "(1152, 896)",
           "guidance_scale": 4, "sharpness": 2, "base_model": "juggernautXL_v8Rundiffusion",
           "base_model_hash": "aeb7e9e689", "refiner_model": "None", "refiner_switch": 0.5, "sampler": "dpmpp_2m",
           "scheduler": "karras", "seed": "12345", "steps": 30, "clip_skip": 2, "vae": "Default (model)",
           "lora_combined_2": "ink.safetensors : -0.5",
           "lora_combined_1": "sd_xl_offset_example-lora_1.0.safetensors : 0.1",
           "full_prompt": ["a knight on a horse, cinematic, intricate"], "full_negative_prompt": ["unrealistic"],
           "metadata_scheme": "fooocus", "version": "Fooocus v2.4.3"}


def test_fooocus_loras_vae_and_clip_skip_are_carried_over_and_its_styles_are_a_note(tmp_path):
    info = inspect_image(pillow_png(tmp_path / "fooocus.png", {"parameters": json.dumps(FOOOCUS),
                                                              "fooocus_scheme": "fooocus"}))
    assert (info.tool, info.prompt) == ("Fooocus", "a knight on a horse")
    assert info.loras == (("sd_xl_offset_example-lora_1.0", 0.1), ("ink", -0.5))
    assert recipe_fields(info)["vae"] == "" and info.clip_skip == 2
    assert info.notes == ("Studio did not carry over its Fooocus styles ('Fooocus V2', 'Fooocus Enhance'), its full "
                          "prompt made by its styles and prompt expansion (the typed prompt is loaded).",)


A1111_SETTINGS = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model: dreamy"


def test_a1111_settings_studio_lacks_are_named_in_one_sentence(tmp_path):
    text = (f"a castle\nNegative prompt: blurry\n{A1111_SETTINGS}, Variation seed: 77, Variation seed strength: 0.3, "
            "Tiling: True, Face restoration: CodeFormer, Refiner: sd_xl_refiner_1.0 [7440042bbd], Refiner switch at: "
            "0.8, ADetailer model: face_yolov8n.pt, ADetailer confidence: 0.3, Version: v1.9.4\n"
            "Template: a {castle|tower}")
    info = inspect_image(pillow_png(tmp_path / "a1111.png", {"parameters": text}))
    assert (info.tool, info.prompt, info.seed) == ("AUTOMATIC1111", "a castle", 5)
    assert info.notes == ("Studio did not carry over its variation seed, tiling, face restoration, refiner, ADetailer "
                          "and Dynamic Prompts template.",)
    plain = inspect_image(pillow_png(tmp_path / "plain.png", {"parameters": f"a castle\n{A1111_SETTINGS}, "
                                                                            "Template: a {castle|tower}"}))
    assert plain.notes == ("Studio did not carry over its Dynamic Prompts template.",)


def test_a1111_and_and_wildcards_are_said_to_be_read_as_plain_words(tmp_path):
    def notes(prompt: str, negative: str = "blurry") -> tuple[str, ...]:
        text = f"{prompt}\nNegative prompt: {negative}\n{A1111_SETTINGS}"
        return inspect_image(pillow_png(tmp_path / "a.png", {"parameters": text})).notes

    assert notes("a cat AND a dog, __hair_colors__") == (
        "Its prompt uses A1111's AND (composable diffusion) and __wildcards__; Studio reads them as plain words.",)
    assert notes("a cat", "__bad_hands__") == ("Its prompt uses A1111's __wildcards__; Studio reads it as plain "
                                               "words.",)
    assert notes("a cat and a dog, sand dune, _under_score_, BRAND") == ()
