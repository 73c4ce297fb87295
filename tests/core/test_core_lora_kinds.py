"""LoRA files in kohya's, PEFT's and diffusers' layouts, and LyCORIS files told from them."""

from __future__ import annotations

import pytest
from model_files import kind_of

from studio.core.lora_kinds import lycoris_problem


def test_lycoris_loha_and_lokr_files_are_told_from_loras(tmp_path):
    """They showed as "LoRA (kohya)" and then failed inside diffusers."""
    block = "lora_unet_input_blocks_4_1_proj_in"
    loha = kind_of(tmp_path, {f"{block}.hada_w1_a": (4, 4), f"{block}.hada_w2_b": (4, 4)}, "a.safetensors")
    lokr = kind_of(tmp_path, {f"{block}.lokr_w1": (2, 2), f"{block}.lokr_w2": (4, 4)}, "b.safetensors")
    assert (loha.kind, loha.label, loha.detail) == ("lora", "LyCORIS LoHa (SDXL)", "LyCORIS LoHa")
    assert (lokr.kind, lokr.label) == ("lora", "LyCORIS LoKr (SDXL)")
    assert lycoris_problem(loha, "a.safetensors") == (
        "a.safetensors is a LyCORIS LoHa file; Studio applies LoRA and LoCon files, not LyCORIS LoHa or LoKr ones.")
    locon = kind_of(tmp_path, {"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": (4, 8, 3, 3)})
    assert locon.label == "LoRA" and not lycoris_problem(locon, "c.safetensors")


KOHYA_SD1 = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 768),
             "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (1, 4),
             "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": (),
             "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 1)}
KOHYA_SDXL = {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 2048),
              "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": (1, 4),
              "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 1),
              "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 1)}
PEFT_SD1 = {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": (4, 768),
            "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": (1, 4)}
OLD_DIFFUSERS_SDXL = {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight": (4, 1),
                      "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight":
                          (4, 1)}

LORAS = {
    "kohya sd1": (KOHYA_SD1, None, ("sd1", "LoRA (SD 1.x)", "kohya")),
    "kohya sdxl": (KOHYA_SDXL, None, ("sdxl", "LoRA (SDXL)", "kohya")),
    "kohya sdxl unet only, by block names": (
        {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": (4, 1)}, None,
        ("sdxl", "LoRA (SDXL)", "kohya")),
    "kohya sd2 by metadata": ({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 1)},
                              {"ss_base_model_version": "sd_v2"}, ("sd2", "LoRA (SD 2.x)", "kohya")),
    "peft sd1": (PEFT_SD1, None, ("sd1", "LoRA (SD 1.x)", "diffusers")),
    "old diffusers sdxl": (OLD_DIFFUSERS_SDXL, None, ("sdxl", "LoRA (SDXL)", "diffusers")),
}


@pytest.mark.parametrize("case", list(LORAS))
def test_loras(tmp_path, case):
    shapes, metadata, (family, label, detail) = LORAS[case]
    kind = kind_of(tmp_path, shapes, metadata=metadata)
    assert (kind.kind, kind.family, kind.label, kind.detail) == ("lora", family, label, detail)

