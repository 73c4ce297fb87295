"""Image files with generation metadata, built chunk by chunk or as each tool writes them, for the tests of
reading that metadata (tests/core/test_core_image_info.py, test_core_other_tools_metadata.py)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from PIL import Image, PngImagePlugin

from studio.core.image_info import ImageInfo
from studio.core.metadata import Recipe

RECIPE = Recipe(prompt='a fox, in the snow: "winter"\nsecond line ü 狐', negative_prompt="blurry, dark", steps=31,
                sampler="DPM++ 2M Karras", cfg_scale=6.5, seed=987654321, width=512, height=768,
                model_name="tiny-sd", model_hash="0123456789")


# --- building images -------------------------------------------------------------------------------------

def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_file(path: Path, *chunks: bytes, size: tuple[int, int] = (40, 30), after_idat: bytes = b"") -> Path:
    """A PNG written chunk by chunk: for text chunks Pillow would refuse to write or to read."""
    width, height = size
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + bytes(3 * width) for _ in range(height)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + b"".join(chunks) + chunk(b"IDAT", pixels)
                     + after_idat + chunk(b"IEND", b""))
    return path


def text(key: str, value: str) -> bytes:
    return chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))


def ztext(key: str, value: bytes) -> bytes:
    return chunk(b"zTXt", key.encode("latin-1") + b"\0\0" + zlib.compress(value, 9))


def itext(key: str, value: str, compressed: bool = False) -> bytes:
    data = value.encode("utf-8")
    if compressed:
        data = zlib.compress(data, 9)
    return chunk(b"iTXt", key.encode("latin-1") + b"\0" + bytes([int(compressed), 0]) + b"\0\0" + data)


def pillow_png(path: Path, texts: dict[str, str], size: tuple[int, int] = (64, 48)) -> Path:
    """A PNG as the tools write theirs: Pillow's add_text (tEXt, or iTXt beyond Latin-1)."""
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", size, (30, 60, 90)).save(path, pnginfo=info)
    return path


def exif_jpeg(path: Path, user_comment: bytes | str, *, in_exif_ifd: bool = True, fmt: str = "JPEG",
              extra: dict[int, str] | None = None) -> Path:
    exif = Image.Exif()
    if in_exif_ifd:
        exif.get_ifd(0x8769)[0x9286] = user_comment
    else:
        exif[0x9286] = user_comment
    for tag, value in (extra or {}).items():
        exif[tag] = value
    Image.new("RGB", (48, 32), (200, 100, 50)).save(path, fmt, exif=exif.tobytes(), quality=90)
    return path


def a1111_user_comment(text_: str) -> bytes:
    """What A1111 writes (piexif.helper.UserComment.dump(text, encoding="unicode")): UTF-16BE."""
    return b"UNICODE\0" + text_.encode("utf-16-be")


def fields_of(info: ImageInfo) -> tuple:
    return (info.tool, info.prompt, info.negative_prompt, info.seed, info.steps, info.cfg_scale, info.sampler,
            info.width, info.height, info.model, info.model_hash, info.scheduler)


# An AUTOMATIC1111 (and Forge, SD.Next: the same) parameters text.
A1111_TEXT = (
    "portrait of a knight, (armor:1.3)\n"
    "Negative prompt: cartoon, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, Size: 832x1216, "
    "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Clip skip: 2, Version: v1.10.1"
)


# A ComfyUI graph, workflow and picture.

def comfy_graph(sampler_name: str = "dpmpp_2m", scheduler: str = "karras", seed: object = 156680208700286) -> dict:
    """The default text-to-image graph, as ComfyUI's SaveImage writes it in the 'prompt' chunk."""
    return {
        "3": {"class_type": "KSampler", "_meta": {"title": "KSampler"},
              "inputs": {"seed": seed, "steps": 20, "cfg": 8.0, "sampler_name": sampler_name,
                         "scheduler": scheduler, "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
                         "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "beautiful scenery, glass bottle, purple galaxy", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }


def comfy_workflow(links: list[list]) -> dict:
    """The UI workflow (schema 0.4) ComfyUI saves beside it; sd-parsers reads its link list."""
    return {"last_node_id": 9, "last_link_id": len(links), "nodes": [], "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4}


COMFY_LINKS = [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 7, 0, "CLIP"],
               [4, 6, 0, 3, 1, "CONDITIONING"], [5, 4, 1, 6, 0, "CLIP"], [6, 7, 0, 3, 2, "CONDITIONING"],
               [7, 3, 0, 8, 0, "LATENT"], [8, 4, 2, 8, 1, "VAE"], [9, 8, 0, 9, 0, "IMAGE"]]


def comfy_png(path: Path, graph: dict, links: list[list] | None = COMFY_LINKS) -> Path:
    texts = {"prompt": json.dumps(graph)}
    if links is not None:
        texts["workflow"] = json.dumps(comfy_workflow(links))
    return pillow_png(path, texts)
