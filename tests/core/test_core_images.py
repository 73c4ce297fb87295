"""Image files: awkward inputs open correctly or fail with a sentence; outputs carry their recipe."""

from __future__ import annotations

import os
import stat
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import ImageError
from studio.core.images import flatten, open_image, read_recipe, save_image, write_atomically
from studio.core.metadata import Recipe

RECIPE = Recipe(prompt="a castle, on a hill: \"dawn\"\nsecond line ü 城", negative_prompt="fog, rain", steps=25,
                sampler="DPM++ 2M", cfg_scale=7.5, seed=42, width=64, height=48, model_name="tiny-sd",
                model_hash="abcdef0123", strength=0.4)


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    rgb = np.stack([np.tile(x, (height, 1)), np.tile(y[:, None], (1, width)), np.full((height, width), 90, np.uint8)],
                   axis=-1)
    return Image.fromarray(rgb, "RGB")


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> bytes:
    """A PNG written by hand, for layouts Pillow will not write (16-bit RGB, lying headers)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def assert_sentence(err: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(err.value)
    assert message.endswith("."), message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# -- saving -------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".webp", ".PNG"])
def test_save_image_embeds_the_recipe(tmp_path, suffix):
    path = save_image(gradient(), tmp_path / f"out{suffix}", RECIPE)
    assert path == tmp_path / f"out{suffix}"
    assert read_recipe(path) == RECIPE
    with Image.open(path) as img:
        assert img.size == (64, 48)
        assert img.format == {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}[suffix.lower()]


def test_png_keeps_pixels_and_both_chunks(tmp_path):
    image = gradient()
    path = save_image(image, tmp_path / "out.png", RECIPE)
    with Image.open(path) as img:
        assert np.array_equal(np.asarray(img), np.asarray(image))
        assert img.info["parameters"] == RECIPE.to_parameters()
        assert Recipe.from_json(img.info["studio"]) == RECIPE


def test_a1111_parameters_alone_are_read(tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", RECIPE.to_parameters())
    path = tmp_path / "a1111.png"
    gradient().save(path, pnginfo=info)
    assert read_recipe(path) == RECIPE


def test_an_image_without_a_recipe_reads_none(tmp_path):
    for name in ("plain.png", "plain.jpg", "plain.webp"):
        path = save_image(gradient(), tmp_path / name)
        assert read_recipe(path) is None


def test_transparent_images_save_as_jpeg_on_white(tmp_path):
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    path = save_image(rgba, tmp_path / "t.jpg", RECIPE)
    with Image.open(path) as img:
        assert img.mode == "RGB"
        assert all(v > 240 for v in img.getpixel((8, 8)))
    assert flatten(rgba).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("name", ["out.gif", "out.bmp", "out", "out.png.txt"])
def test_a_bad_extension_is_refused(tmp_path, name):
    with pytest.raises(ImageError) as err:
        save_image(gradient(), tmp_path / name, RECIPE)
    assert_sentence(err, "Studio saves .png, .jpg and .webp files")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("suffix", "size", "limit"),
                         [(".webp", (16_384, 8), "16,383"), (".jpg", (8, 65_501), "65,500")])
def test_a_picture_past_the_formats_size_limit_is_refused_with_a_sentence(tmp_path, suffix, size, limit):
    with pytest.raises(ImageError) as err:
        save_image(Image.new("RGB", size), tmp_path / f"wide{suffix}")
    assert_sentence(err, limit, f"{size[0]}×{size[1]}", "save it as PNG")
    assert list(tmp_path.iterdir()) == []


def test_a_prompt_too_long_for_jpeg_metadata_is_refused_and_png_and_webp_keep_it(tmp_path):
    long = replace(RECIPE, prompt="a lighthouse, " * 3000)
    with pytest.raises(ImageError) as err:
        save_image(gradient(8, 8), tmp_path / "long.jpg", long)
    assert_sentence(err, "long.jpg", "too long for a JPEG", "PNG or WebP")
    assert list(tmp_path.iterdir()) == []
    for suffix in (".png", ".webp"):
        assert read_recipe(save_image(gradient(8, 8), tmp_path / f"long{suffix}", long)).prompt == long.prompt


def test_an_encoder_refusal_is_a_sentence(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ValueError("encoder error -2")

    monkeypatch.setattr(Image.Image, "save", refuse)
    with pytest.raises(ImageError) as err:
        save_image(gradient(), tmp_path / "out.webp")
    assert_sentence(err, "out.webp could not be written as WEBP", "encoder error -2")


def test_a_damaged_studio_chunk_falls_back_to_the_parameters_text(tmp_path):
    from PIL import PngImagePlugin

    for chunk in ("null", "[1, 2]", "{not json"):
        info = PngImagePlugin.PngInfo()
        info.add_itxt("studio", chunk)
        info.add_itxt("parameters", RECIPE.to_parameters())
        gradient().save(tmp_path / "damaged.png", pnginfo=info)
        assert read_recipe(tmp_path / "damaged.png").prompt == RECIPE.prompt


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(ImageError) as err:
        save_image(gradient(), tmp_path / "nope" / "out.png")
    assert_sentence(err, "does not exist")


def test_saving_is_atomic_and_gives_the_usual_file_mode(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"old content")
    save_image(gradient(), path, RECIPE)
    assert read_recipe(path) == RECIPE
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp files left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_file_replaced_keeps_its_permissions(tmp_path):
    """Replacing a file wrote a new one at the usual mode: a 0600 file became readable by everyone."""
    path = tmp_path / "private.json"
    path.write_bytes(b"old")
    path.chmod(0o600)
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_save_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    path.write_bytes(b"old content")

    def broken_replace(src, dst):  # noqa: ANN001, ANN202
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_image(gradient(), path, RECIPE)
    assert path.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.parametrize("name", ["a" * 246 + ".png", "ü" * 125 + ".png"])  # 250 and 254 bytes: legal names
def test_a_name_close_to_255_bytes_is_saved_with_a_temp_file_that_fits_too(tmp_path, monkeypatch, name):
    temp_names = []
    replace = os.replace

    def spying_replace(src, dst):  # noqa: ANN001, ANN202
        temp_names.append(Path(src).name)
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", spying_replace)  # the limit is checked here too, on any file system
    save_image(gradient(), tmp_path / name, RECIPE)
    assert read_recipe(tmp_path / name) == RECIPE
    assert [len(os.fsencode(temp)) <= 255 for temp in temp_names] == [True]
    assert temp_names[0].startswith(".aaaa" if name.startswith("a") else ".üüüü") and temp_names[0].endswith(".part")
    assert [p.name for p in tmp_path.iterdir()] == [name]


# -- opening ------------------------------------------------------------------------------------

def test_open_image_missing_file(tmp_path):
    with pytest.raises(ImageError) as err:
        open_image(tmp_path / "missing.png")
    assert_sentence(err, "missing.png", "does not exist")


def test_open_image_without_permission_says_so(tmp_path, monkeypatch):
    gradient().save(tmp_path / "locked.png")

    def denied(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - as for a file the person may not read (not as root)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(ImageError) as err:
        open_image(tmp_path / "locked.png")
    assert_sentence(err, "may not read locked.png: permission denied")


def test_open_image_folder(tmp_path):
    with pytest.raises(ImageError):
        open_image(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, I am text\n", b"\x89PNG\r\n\x1a\n garbage"])
def test_open_image_not_an_image(tmp_path, content):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(ImageError) as err:
        open_image(path)
    assert_sentence(err, "fake.png")


def test_open_image_truncated_png(tmp_path):
    full = tmp_path / "full.png"
    Image.effect_noise((128, 128), 60).convert("RGB").save(full)
    data = full.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as err:
        open_image(cut)
    assert_sentence(err, "cut.png", "truncated or damaged")


def test_open_image_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (20, 10), (0, 255, 255, 0)).save(path)  # pure red in CMYK
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (20, 10)
    r, g, b = img.getpixel((10, 5))
    assert r > 200 and g < 50 and b < 50


def test_open_image_16_bit_greyscale_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "grey16.png"
    values = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(values).save(path)
    img = open_image(path)
    assert img.mode == "RGB"
    grey = np.asarray(img)[..., 0].astype(int)
    assert grey.min() == 0 and grey.max() == 255
    assert abs(grey[4, 0] - 32 * 65535 / 63 / 257) <= 1  # the middle stays mid-grey
    assert len(np.unique(grey)) > 32


def test_open_image_32_bit_integer_greyscale_tiff_is_scaled_by_its_real_range(tmp_path):
    """A 32-bit ("I") TIFF of 16-bit values opened black: it was divided as if its values filled 32 bits."""
    wide = np.linspace(0, 65535, 64).reshape(8, 8).astype(np.int32)
    Image.fromarray(wide, "I").save(tmp_path / "wide.tif")
    grey = np.asarray(open_image(tmp_path / "wide.tif"))[..., 0].astype(int)
    assert grey.min() == 0 and grey.max() == 255 and abs(grey[4, 0] - 32 * 65535 / 63 / 257) <= 1
    narrow = np.arange(64).reshape(8, 8).astype(np.int32) * 4  # 8-bit values kept in 32 bits: as they are
    Image.fromarray(narrow, "I").save(tmp_path / "narrow.tif")
    np.testing.assert_array_equal(np.asarray(open_image(tmp_path / "narrow.tif"))[..., 0], narrow)
    assert open_image(tmp_path / "wide.tif", keep_mode=True).mode == "I"


def test_open_image_32_bit_float_greyscale_is_scaled_from_0_to_1(tmp_path):
    path = tmp_path / "float.tiff"
    Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), "F").save(path)
    grey = np.asarray(open_image(path))[..., 0].astype(int)
    assert grey.min() == 0 and grey.max() == 255 and abs(grey[4, 0] - 32 / 63 * 255) <= 1


def test_open_image_16_bit_rgb_png(tmp_path):
    pixels = np.zeros((4, 6, 3), np.uint16)
    pixels[..., 0] = 65535
    pixels[..., 2] = 32896  # 128 in 8 bits
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(6, 4, 16, 2, raw))
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (6, 4)
    assert img.getpixel((0, 0)) == (255, 0, 128)


def test_open_image_palette_png_with_transparency(tmp_path):
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.paste(1, (0, 0, 4, 8))
    path = tmp_path / "palette.png"
    palette.save(path, transparency=0)
    img = open_image(path)
    assert img.mode == "RGBA"
    assert img.getpixel((0, 0)) == (0, 255, 0, 255)
    assert img.getpixel((7, 7))[3] == 0  # transparent stays transparent


def test_open_image_palette_png_without_transparency_is_rgb(tmp_path):
    path = tmp_path / "palette.png"
    gradient().convert("P").save(path)
    assert open_image(path).mode == "RGB"


@pytest.mark.parametrize(("orientation", "expected_size"), [(1, (40, 20)), (3, (40, 20)), (6, (20, 40)), (8, (20, 40))])
def test_open_image_exif_rotated_jpeg_comes_back_upright(tmp_path, orientation, expected_size):
    # Stored sideways: a 40x20 picture, left half blue, right half red.
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif.tobytes(), quality=95)
    img = open_image(path)
    assert img.size == expected_size

    def colour(xy: tuple[int, int]) -> str:
        r, _, b = img.getpixel(xy)
        return "red" if r > b else "blue"

    w, h = img.size
    if orientation == 1:
        assert (colour((5, 10)), colour((35, 10))) == ("blue", "red")
    elif orientation == 3:  # turned 180 degrees
        assert (colour((5, 10)), colour((35, 10))) == ("red", "blue")
    elif orientation == 6:  # the camera was turned: upright, the blue half is on top
        assert (colour((10, 5)), colour((10, h - 5))) == ("blue", "red")
    else:
        assert (colour((10, 5)), colour((10, h - 5))) == ("red", "blue")
    assert img.getexif().get(0x0112) in (None, 1)


def test_open_image_greyscale_and_grey_alpha(tmp_path):
    Image.new("L", (8, 8), 100).save(tmp_path / "l.png")
    Image.new("LA", (8, 8), (100, 50)).save(tmp_path / "la.png")
    assert open_image(tmp_path / "l.png").getpixel((0, 0)) == (100, 100, 100)
    assert open_image(tmp_path / "la.png").getpixel((0, 0)) == (100, 100, 100, 50)


def test_open_image_refuses_decompression_bombs(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(30000, 30000, 8, 0, b"\0"))  # claims 900 megapixels
    with pytest.raises(ImageError) as err:
        open_image(path)
    assert_sentence(err, "bomb.png", "too large")


@pytest.mark.parametrize("given_as", ["IN", "--style"])
def test_pillow_s_bomb_warning_never_reaches_the_terminal(tmp_path, given_as):
    """From 1x to 2x Pillow's limit (which Studio sets to MAX_PIXELS) Pillow warned, in Python's bare two lines on
    stderr ("…/PIL/Image.py:3593: DecompressionBombWarning: …" and "warnings.warn("), before Studio's own sentence.
    In a fresh process, as a person runs it: pytest resets the warning filters a module set at its import."""
    from studio_testing import run_studio

    bomb, small = tmp_path / "bomb.png", tmp_path / "small.png"
    bomb.write_bytes(png_bytes(20000, 20000, 8, 0, b"\0"))  # claims 400 megapixels: past MAX_PIXELS, under twice it
    Image.new("RGB", (8, 8)).save(small)
    source, style = (bomb, small) if given_as == "IN" else (small, bomb)
    done = run_studio(tmp_path / "home", "postprocess", str(source), "-o", str(tmp_path / "out.png"),
                      "--method", "histogram", "--style", str(style))
    assert (done.returncode, done.stderr.count("\n")) == (2, 1), done.stderr
    assert done.stderr.startswith("studio: ") and "bomb.png is too large to open safely" in done.stderr


def test_only_studios_own_files_open_past_the_pixel_limit(tmp_path, monkeypatch):
    """A canvas past MAX_PIXELS could be made and autosaved, then never recovered: open refused its own files."""
    from studio.core import images

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # open_image sets Pillow's: put back
    monkeypatch.setattr(images, "MAX_PIXELS", 40 * 40)
    Image.new("RGB", (48, 40), (1, 2, 3)).save(tmp_path / "big.png")
    assert images.too_large(48, 40) and not images.too_large(40, 40)
    with pytest.raises(ImageError) as err:
        open_image(tmp_path / "big.png")
    assert_sentence(err, "big.png", "too large")
    assert open_image(tmp_path / "big.png", trusted=True).size == (48, 40)


def test_open_image_is_fully_loaded_and_file_closed(tmp_path):
    path = tmp_path / "img.png"
    gradient().save(path)
    img = open_image(path)
    Path(path).unlink()  # the file can go: the pixels are already in memory
    assert img.getpixel((63, 0))[0] == 255


def test_a_shared_picture_is_never_saved_itself_so_two_threads_saving_it_cannot_mix_their_settings(
        tmp_path, monkeypatch) -> None:
    # Pillow keeps a save's settings (pnginfo) on the picture object while it writes: the canvas picture, saved by
    # autosave and Save and kept for a control guide at once, came out with another save's prompt in it.
    from studio.core.images import keep_png

    shared = Image.new("RGB", (8, 8), "red")
    saved = []
    real_save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", lambda self, *a, **k: saved.append(self) or real_save(self, *a, **k))
    recipe = Recipe("a red square", "", 1, "Euler", 7, 1, 8, 8, "m")
    save_image(shared, tmp_path / "a.png", recipe)
    keep_png(shared, tmp_path / "kept")
    assert len(saved) == 2 and all(picture is not shared for picture in saved)
