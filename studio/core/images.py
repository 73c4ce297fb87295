"""Reading and writing image files: clear refusals, atomic writes, recipes embedded."""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from studio.core.errors import ImageError, os_reason
from studio.core.mask import eight_bit_grey
from studio.core.metadata import PARAMETERS_CHUNK, RECIPE_CHUNKS, STUDIO_CHUNK, Recipe
from studio.core.temp_files import temp_file_beside

SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
MAX_SIDES = {"JPEG": 65_500, "WEBP": 16_383}  # the formats' own limits on width and height (libjpeg, libwebp)
EXIF_MAX_BYTES = 65_533  # JPEG keeps EXIF in one APP1 segment
MAX_PIXELS = 16384 * 16384  # refuse decompression bombs above this
EXIF_USER_COMMENT = 0x9286  # where A1111 keeps "parameters" in JPEG and WebP files
EXIF_IFD = 0x8769
MAX_TEXT_BYTES = 1024 * 1024  # a metadata text larger than this is ignored (with a note)
# Studio sets Pillow's limit to MAX_PIXELS and refuses past it in its own sentence (too_large): Pillow's warning from
# 1x to 2x its limit (past 2x it refuses itself) reached the terminal as Python's bare two lines before that sentence.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: mkstemp makes 0600 files, saved images should get the usual mode


def too_large(width: int, height: int) -> bool:
    """Over Studio's pixel limit: a picture it would refuse to open again (so it must not make one)."""
    return width * height > MAX_PIXELS


def open_image(path: str | os.PathLike[str], trusted: bool = False, keep_mode: bool = False) -> Image.Image:
    """Open an image file fully, upright (EXIF orientation applied), as RGB or RGBA (``keep_mode``: in its own
    mode, for a mask: mask_from_image reads 16-bit grey and alpha better than their RGB conversion).

    ``trusted``: a file Studio wrote itself (an autosave to recover), opened past MAX_PIXELS, up to Pillow's own
    limit (twice it): a canvas made that large must still be recovered, not lost after a crash."""
    path = Path(path)
    check_image_file(path)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path) as img:
            # Pillow only refuses at twice its limit; refuse at the limit, before decoding anything.
            if too_large(img.width, img.height) and not trusted:
                raise Image.DecompressionBombError(f"{img.width}x{img.height}")
            img.load()
            upright = ImageOps.exif_transpose(img)
    except Image.DecompressionBombError:
        raise ImageError(f"The image {path.name} is too large to open safely (over {MAX_PIXELS:,} pixels).") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path.name} is not an image file Studio can read.") from None
    except PermissionError:
        raise ImageError(f"Studio may not read {path.name}: permission denied.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"The image {path.name} could not be read; it may be truncated or damaged ({exc}).") from None
    if upright.width == 0 or upright.height == 0:
        raise ImageError(f"The image {path.name} is empty.")
    return upright if keep_mode else _to_rgb_or_rgba(upright)


def first_page_words(path: str | os.PathLike[str]) -> str:
    """Where the file holds more than one picture (a multi-page TIFF, an animated GIF or WebP), which one Studio
    opens: "its first page of 3", "its first frame of 12"; else "". open_image takes the first, and said nothing."""
    try:
        with Image.open(path) as img:
            count = getattr(img, "n_frames", 1)
            kind = "page" if img.format == "TIFF" else "frame"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):  # open_image says what is wrong
        return ""
    return f"its first {kind} of {count}" if isinstance(count, int) and count > 1 else ""


def check_image_file(path: Path) -> None:
    """Refuse, with one sentence, a path that names no image file to read: nothing there, a folder, or a name the
    system refuses (too long)."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"The image {path} does not exist.") from None
    except OSError as exc:  # a name the system will not look at (too long), a loop of links
        raise ImageError(unusable_path(path, exc)) from None
    if stat.S_ISDIR(mode):
        raise ImageError(f"{path} is a folder, not an image file.")
    if not stat.S_ISREG(mode):  # a named pipe would block the read for ever; a device is no picture
        raise ImageError(f"{path} is {special_file_kind(mode)}, not an image file; Studio reads pictures from regular "
                         "files.")


def unusable_path(path: Path, exc: OSError) -> str:
    """The sentence for a path the system would not even look at (``exc``, from a stat of it)."""
    if exc.errno == errno.ENAMETOOLONG:
        return f"{path}: {_too_long(path)} for this file system."
    return f"{path} could not be looked at ({os_reason(exc)})."


def special_file_kind(mode: int) -> str:
    """What a file that is not a regular file nor a folder is, for a sentence: "a named pipe (FIFO)", "a device"…
    (weights files are refused in the same words)."""
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"))
    return next((kind for test, kind in kinds if test(mode)), "a special file")


def _too_long(path: Path) -> str:
    """Which part of ``path`` is too long, where that is plain: most file systems allow 255 bytes a name."""
    if len(os.fsencode(path.name)) > 255:
        return "the file name is too long"
    if any(len(os.fsencode(part)) > 255 for part in path.parent.parts):
        return "a folder name in it is too long"
    return "the name is too long"


def rgb_or_rgba(img: Image.Image, drop_opaque_alpha: bool = False) -> Image.Image:
    """``img`` as RGB, or RGBA where it has transparency (16/32-bit and float greyscale scaled by their real range);
    with ``drop_opaque_alpha``, an alpha that is opaque everywhere goes too. May be ``img`` itself."""
    picture = _to_rgb_or_rgba(img)
    if drop_opaque_alpha and picture.mode == "RGBA" and picture.getchannel("A").getextrema()[0] == 255:
        return picture.convert("RGB")
    return picture


def _to_rgb_or_rgba(img: Image.Image) -> Image.Image:
    if img.mode in ("RGB", "RGBA"):
        return img
    if img.mode.startswith("I"):
        # 16/32-bit greyscale: scaled to 8 bits by its real range, as a mask is (32-bit TIFFs opened black).
        return eight_bit_grey(img).convert("RGB")
    if img.mode == "F":
        return _float_to_rgb(img)
    has_alpha = img.mode in ("LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    return img.convert("RGBA" if has_alpha else "RGB")


def _float_to_rgb(img: Image.Image) -> Image.Image:
    """32-bit float greyscale (TIFF, some scientific and HDR tools): 0-1 scaled to 8 bits, as those tools store
    it; anything brighter than 1 is taken as already 0-255."""
    import numpy as np

    values = np.nan_to_num(np.asarray(img, dtype=np.float32))
    if values.size and values.max() <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.clip(values + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")


def flatten(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """RGB copy of img, transparent parts on a plain background."""
    if img.mode == "RGB":
        return img
    rgba = img.convert("RGBA")
    base = Image.new("RGB", rgba.size, background)
    base.paste(rgba, mask=rgba.getchannel("A"))
    return base


def save_image(img: Image.Image, path: str | os.PathLike[str], recipe: Recipe | None = None, *,
               exclusive: bool = False, other_text: Mapping[str, str] | None = None) -> Path:
    """Write img to path atomically, format from the extension, recipe embedded when given. ``exclusive``: a
    file already at path (another process's) is never replaced; FileExistsError instead. ``other_text``:
    other tools' PNG text chunks to carry over (``other_tools_text``)."""
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(
            f"Studio saves .png, .jpg and .webp files; {path.name!r} has another extension."
        )
    if not path.parent.is_dir():
        raise ImageError(f"The folder {path.parent} does not exist.")
    largest = MAX_SIDES.get(fmt)
    if largest is not None and max(img.size) > largest:
        kind = "WebP" if fmt == "WEBP" else fmt
        raise ImageError(f"{kind} pictures can be at most {largest:,} pixels wide and high, and this one is "
                         f"{img.width}×{img.height}; save it as PNG.")
    try:
        data = _encoded(img, fmt, recipe, other_text or {})
    except (OSError, ValueError) as exc:  # the encoder's own refusals
        raise ImageError(f"{path.name} could not be written as {fmt}: {exc}.") from None
    write_atomically(path, data, exclusive=exclusive)
    return path


def _encoded(img: Image.Image, fmt: str, recipe: Recipe | None, other_text: Mapping[str, str]) -> bytes:
    img = saved_alone(img)
    buffer = io.BytesIO()
    if fmt == "PNG":
        from PIL import PngImagePlugin  # loaded by the first save (or open), not at Studio's start

        info = PngImagePlugin.PngInfo()
        for key, value in other_text.items():
            if key not in RECIPE_CHUNKS:
                info.add_itxt(key, value)
        if recipe is not None:
            if recipe.describes_generation:  # a post-only recipe has no A1111 text to write: no made-up settings
                info.add_itxt(PARAMETERS_CHUNK, recipe.to_parameters())
            info.add_itxt(STUDIO_CHUNK, recipe.to_json())
        img.save(buffer, "PNG", pnginfo=info)
    else:
        out = flatten(img) if fmt == "JPEG" else img
        kwargs: dict[str, object] = {"quality": 95}
        if recipe is not None and recipe.describes_generation:
            kwargs["exif"] = _exif_with_comment(recipe.to_parameters())
            if fmt == "JPEG" and len(kwargs["exif"]) > EXIF_MAX_BYTES:
                raise ValueError(f"its prompt and settings ({len(recipe.to_parameters()):,} characters) are too long "
                                 "for a JPEG file's metadata; save it as PNG or WebP, which keep them")
        out.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def saved_alone(img: Image.Image) -> Image.Image:
    """A picture of its own to call ``save`` on. Pillow keeps a save's settings (its pnginfo, exif…) on the picture
    object while it writes, so two threads saving one shared picture (the canvas's: autosave, Save, a control guide
    kept) mix them, and one save's settings stay on it for later ones: a copy (in the saving thread) has none."""
    return img.copy()


def keep_png(img: Image.Image, folder: Path, compress_level: int = 6, suffix: str = ".png") -> Path:
    """The picture saved once in folder as a PNG named by its pixels (``pixel_digest``, then ``suffix``; no text
    chunks): the same picture kept again is named again, not encoded or written again. For pictures the settings
    and recipes refer to by path (chain steps', guides')."""
    path = folder / f"{pixel_digest(img)}{suffix}"
    if not path.is_file():
        buffer = io.BytesIO()
        saved_alone(img).save(buffer, "PNG", compress_level=compress_level)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(path, buffer.getvalue())  # another process keeping it meanwhile writes the same picture
    return path


def pixel_digest(img: Image.Image) -> str:
    """16 hex digits, equal for pictures with the same pixels, mode and size (two guides given one file are two
    Image objects; the same photo given again in another job is the same picture)."""
    import hashlib

    digest = hashlib.blake2b(img.tobytes(), digest_size=8)
    digest.update(f"{img.mode} {img.width}x{img.height}".encode())
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes, durable: bool = True, exclusive: bool = False) -> None:
    """Temp file in the same folder, fsync, rename: a reader never sees half a file.

    ``durable=False`` skips the fsync, for caches that may be lost but must never be torn. ``exclusive``: the
    name is taken only if free (FileExistsError otherwise), by a hard link, or where the file system has none
    by creating it empty first. A file replaced keeps its permissions (a 0600 settings file stays private); a new
    one gets the usual mode."""
    fd, tmp = temp_file_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        if exclusive:
            _take_name(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The permission bits of the file at path, kept when it is replaced; the usual mode for a new file."""
    try:
        existing = os.stat(path)
    except OSError:  # no file there yet (or none we may look at): a new file's mode
        return 0o666 & ~_UMASK
    return stat.S_IMODE(existing.st_mode) if stat.S_ISREG(existing.st_mode) else 0o666 & ~_UMASK


def _take_name(tmp: str, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network shares): claim the name, then fill it
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~_UMASK))
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


def _exif_with_comment(text: str) -> bytes:
    exif = Image.Exif()
    # EXIF UserComment: 8-byte charset id, then the text (A1111 writes UNICODE as UTF-16 big-endian).
    exif.get_ifd(EXIF_IFD)[EXIF_USER_COMMENT] = b"UNICODE\0" + text.encode("utf-16-be")
    return exif.tobytes()


def read_recipe(path: str | os.PathLike[str]) -> Recipe | None:
    """The recipe Studio (or A1111) embedded in an image file, or None."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            info = dict(img.info)
            comment = img.getexif().get_ifd(EXIF_IFD).get(EXIF_USER_COMMENT)
    except FileNotFoundError:
        raise ImageError(f"The image {path} does not exist.") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        raise ImageError(f"{path.name} is not an image file Studio can read.") from None
    if STUDIO_CHUNK in info:
        try:
            return Recipe.from_json(info[STUDIO_CHUNK])
        except (ValueError, TypeError):
            pass  # damaged: the A1111 text beside it, if any, says the same
    if PARAMETERS_CHUNK in info:
        return Recipe.from_parameters(info[PARAMETERS_CHUNK])
    text = user_comment_text(comment, [])
    return Recipe.from_parameters(text) if text else None


def user_comment_text(comment: Any, notes: list[str]) -> str | None:  # noqa: ANN401 - whatever the EXIF holds
    """EXIF UserComment: an 8-byte character-set id, then the text (A1111: UNICODE = UTF-16BE)."""
    if not isinstance(comment, (str, bytes)):
        if comment is not None:
            notes.append("The image's EXIF UserComment is not text; it was ignored.")
        return None
    if len(comment) > MAX_TEXT_BYTES:
        notes.append("The image's EXIF UserComment is larger than 1 MB; it was ignored.")
        return None
    if isinstance(comment, str):  # Fooocus: plain text, which Pillow hands back as str
        return comment.rstrip("\0") or None
    prefix, body = comment[:8], comment[8:]
    try:
        if prefix == b"UNICODE\0":
            text = body.decode(_utf16_byte_order(body))
        elif prefix in (b"ASCII\0\0\0", b"\0" * 8):
            text = body.decode("utf-8")
        else:  # no character-set id: plain UTF-8 text (Fooocus' newer releases)
            text = comment.decode("utf-8")
    except UnicodeDecodeError:
        notes.append("The image's EXIF UserComment is not readable text; it was ignored.")
        return None
    return text.lstrip("\ufeff").rstrip("\0") or None


def _utf16_byte_order(body: bytes) -> str:
    """A1111 (piexif) and Studio write UTF-16BE; exiftool writes the file's byte order, often little-endian.
    Mostly-Latin text shows which: its zero bytes sit on the even (BE) or odd (LE) positions."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"  # the BOM says
    if body[1::2].count(0) > body[0::2].count(0):
        return "utf-16-le"
    return "utf-16-be"
