"""ControlNet files and folders, and the guide models like them that Studio cannot run."""

from __future__ import annotations

import json

import pytest
from model_files import kind_of

from studio.core.controlnet_kinds import control_problem
from studio.core.model_kinds import detect_folder_kind

CN = "control_model."
CONTROLNETS = {
    # lllyasviel's ControlNet 1.1 for SD 1.5, as A1111 and ComfyUI people have them
    "sd1 original": ({CN + "input_hint_block.0.weight": (16, 3, 3, 3), CN + "zero_convs.0.0.weight": (1, 1, 1, 1),
                      CN + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768)},
                     ("sd1", "ControlNet (SD 1.x)", "original")),
    # thibaud's SD 2.1 ControlNets: the same layout without the prefix
    "sd2 original, bare": ({"input_hint_block.0.weight": (16, 3, 3, 3), "time_embed.0.weight": (1, 1),
                            "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024)},
                           ("sd2", "ControlNet (SD 2.x)", "original")),
    # SDXL's first cross-attention is in input block 4 (block 0 has none), and it keeps SDXL's size conditioning
    "sdxl original": ({CN + "input_hint_block.0.weight": (16, 3, 3, 3), CN + "label_emb.0.0.weight": (1, 2816),
                       CN + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048)},
                      ("sdxl", "ControlNet (SDXL)", "original")),
    "sd1 diffusers": ({"controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
                       "controlnet_down_blocks.0.weight": (1, 1, 1, 1),
                       "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": (320, 768)},
                      ("sd1", "ControlNet (SD 1.x)", "diffusers")),
    # diffusers/controlnet-canny-sdxl-1.0 as one file
    "sdxl diffusers": ({"controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
                        "add_embedding.linear_1.weight": (1280, 2816),
                        "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": (640, 2048)},
                       ("sdxl", "ControlNet (SDXL)", "diffusers")),
    "sdxl diffusers small": ({"controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
                              "add_embedding.linear_1.weight": (1280, 2816)},
                             ("sdxl", "ControlNet (SDXL)", "diffusers")),
    "control-lora": ({"lora_controlnet": (1,), "input_hint_block.0.weight": (16, 3, 3, 3),
                      "label_emb.0.0.weight": (1, 2816)}, ("sdxl", "Control-LoRA (SDXL)", "Control-LoRA")),
    "t2i-adapter original": ({"conv_in.weight": (1, 1, 1, 1), "body.0.block1.weight": (1, 1, 1, 1)},
                             ("", "T2I-Adapter", "T2I-Adapter")),
    "t2i-adapter diffusers": ({"adapter.conv_in.weight": (1, 1, 1, 1),
                               "adapter.body.0.resnets.0.block1.weight": (1, 1, 1, 1)},
                              ("", "T2I-Adapter", "T2I-Adapter")),
    "controlnet union": ({"controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3), "task_embedding": (8, 320)},
                         ("sdxl", "ControlNet Union (SDXL)", "ControlNet Union")),
}


@pytest.mark.parametrize("case", list(CONTROLNETS))
def test_controlnets(tmp_path, case):
    shapes, (family, label, detail) = CONTROLNETS[case]
    kind = kind_of(tmp_path, shapes)
    assert (kind.kind, kind.family, kind.label, kind.detail) == ("controlnet", family, label, detail)


def test_what_cannot_guide_says_why(tmp_path):
    lora = kind_of(tmp_path, CONTROLNETS["control-lora"][0])
    assert control_problem(lora, "control-lora-canny-rank256.safetensors") == (
        "control-lora-canny-rank256.safetensors is a Control-LoRA, which Studio cannot use as a control guide yet; "
        "it runs ControlNet models (ControlNetModel in diffusers' layout, or lllyasviel's original control_model "
        "layout).")
    assert control_problem(kind_of(tmp_path, CONTROLNETS["sd1 original"][0]), "x") == ""


@pytest.mark.parametrize("config, expected", [
    ({"_class_name": "ControlNetModel", "cross_attention_dim": 768}, ("sd1", "ControlNet (SD 1.x)", "diffusers")),
    ({"_class_name": "ControlNetModel", "cross_attention_dim": 1024}, ("sd2", "ControlNet (SD 2.x)", "diffusers")),
    ({"_class_name": "ControlNetModel", "cross_attention_dim": 2048,
      "addition_embed_type": "text_time"}, ("sdxl", "ControlNet (SDXL)", "diffusers")),
    ({"_class_name": "ControlNetModel", "cross_attention_dim": 32}, ("", "ControlNet", "diffusers")),
    ({"_class_name": "T2IAdapter", "in_channels": 3}, ("", "T2I-Adapter", "T2I-Adapter")),
    ({"_class_name": "ControlNetUnionModel", "cross_attention_dim": 2048},
     ("sdxl", "ControlNet Union (SDXL)", "ControlNet Union")),
])
def test_controlnet_folders(tmp_path, config, expected):
    (tmp_path / "config.json").write_text(json.dumps(config))
    kind = detect_folder_kind(tmp_path)
    assert (kind.kind, kind.family, kind.label, kind.detail) == ("controlnet", *expected)
