"""Model files for library tests: real key names and tiny arrays, so detection sees what it would in real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from studio.core.model_kind import ModelKind
from studio.core.model_kinds import detect_kind
from studio.core.weight_files import check_weights_file

UNET = "model.diffusion_model."


class RunsCodeOnLoad:
    """Pickled, this object touches ``path`` when it is loaded: proof that a pickle was (or was never) run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.path,))


def write(path: Path, shapes: dict[str, tuple[int, ...]], fill: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.full(s, fill, np.uint8) for k, s in shapes.items()}, str(path))
    return path


def sd1(path: Path, fill: int = 0) -> Path:
    return write(path, {UNET + "input_blocks.0.0.weight": (1, 4, 1, 1),
                        UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (1, 768),
                        "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": (1, 1)},
                 fill)


def sdxl(path: Path) -> Path:
    return write(path, {UNET + "input_blocks.0.0.weight": (1, 4, 1, 1),
                        UNET + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (1, 2048),
                        UNET + "label_emb.0.0.weight": (1, 2816),
                        "conditioner.embedders.1.model.positional_embedding": (1, 1)})


def lora(path: Path) -> Path:
    return write(path, {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 8),
                        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": (8, 4)})


def aliased_lora(path: Path, alias: str, fill: int = 1) -> Path:
    """A LoRA whose trainer named it ``alias`` (kohya's ss_output_name), as AUTOMATIC1111's "use alias" option tags
    it (``<lora:ALIAS:…>``); another ``fill``, another file (and hash)."""
    shapes = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 8),
              "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": (8, 4)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.full(s, fill, np.uint8) for k, s in shapes.items()}, str(path),
              metadata={"ss_output_name": alias} if alias else None)
    return path


def esrgan(path: Path) -> Path:
    return write(path, {"conv_first.weight": (64, 3, 3, 3), "body.0.rdb1.conv1.weight": (32, 64, 3, 3),
                        "conv_up1.weight": (64, 64, 3, 3), "conv_last.weight": (3, 64, 3, 3)})


def diffusers_folder(path: Path) -> Path:
    (path / "unet").mkdir(parents=True)
    (path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (path / "unet" / "config.json").write_text(json.dumps({"in_channels": 4, "cross_attention_dim": 768}))
    write(path / "unet" / "diffusion_pytorch_model.safetensors", {"conv_in.weight": (4, 25)}, fill=119)
    (path / ".studio-source.json").write_text(json.dumps({"source": "hub", "repo_id": "someone/tiny-sd"}))
    return path


def controlnet(path: Path, width: int = 768) -> Path:
    """A ControlNet in lllyasviel's original layout (``control_model.``), for SD 1.x (768), 2.x (1024) or SDXL."""
    block = "input_blocks.4.1" if width == 2048 else "input_blocks.1.1"
    return write(path, {"control_model.input_hint_block.0.weight": (16, 3, 3, 3),
                        "control_model.zero_convs.0.0.weight": (1, 1, 1, 1),
                        f"control_model.{block}.transformer_blocks.0.attn2.to_k.weight": (1, width)})


def kind_of(tmp_path: Path, shapes: dict[str, tuple[int, ...]], name: str = "model.safetensors",
            metadata: dict[str, str] | None = None) -> ModelKind:
    """What detect_kind makes of a file with these tensor names and shapes (zero-filled)."""
    path = tmp_path / name
    save_file({key: np.zeros(shape, np.uint8) for key, shape in shapes.items()}, str(path), metadata=metadata)
    return detect_kind(check_weights_file(path), name)
