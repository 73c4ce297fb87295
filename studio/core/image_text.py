"""Getting the metadata text out of an image file, with limits: PNG text chunks, or EXIF UserComment.

Read here rather than by Pillow or sd-parsers (see studio.core.image_inspection for why). A text over
``MAX_TEXT_BYTES`` is skipped with a note; the file is never decoded beyond its header and text chunks.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from studio.core.errors import ImageError
from studio.core.images import EXIF_IFD, EXIF_USER_COMMENT, MAX_PIXELS, MAX_TEXT_BYTES, user_comment_text
from studio.core.metadata import PARAMETERS_CHUNK, RECIPE_CHUNKS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_MAX_PNG_CHUNKS = 100_000  # a file of nothing but tiny chunks is not worth walking to the end


def read_png_texts(f: Any, name: str, notes: list[str]) -> tuple[tuple[int, int], dict[str, str]]:
    """Walk the PNG's chunks: its size from IHDR, its text chunks (within limits), to IEND."""
    texts: dict[str, str] = {}
    size = None
    for count in range(_MAX_PNG_CHUNKS):
        header = f.read(8)
        if len(header) < 8:
            raise ImageError(f"The image {name} is truncated (it ends before the PNG end marker).")
        length, kind = struct.unpack(">I4s", header)
        if count == 0 and (kind != b"IHDR" or length != 13):
            raise ImageError(f"{name} is not a PNG image Studio can read (it has no proper header).")
        if kind == b"IEND":
            break
        if kind == b"IHDR" and count == 0:
            data = f.read(length + 4)
            width, height = struct.unpack(">II", data[:8]) if len(data) == length + 4 else (0, 0)
            if not (0 < width < 2**31 and 0 < height < 2**31):
                raise ImageError(f"The image {name} has a damaged header.")
            size = (width, height)
            continue
        if kind in _PNG_TEXT_CHUNKS and length <= MAX_TEXT_BYTES:
            data = f.read(length)
            if len(data) < length:
                raise ImageError(f"The image {name} is truncated (a metadata chunk is cut short).")
            _add_png_text(kind, data, texts, notes)
            f.seek(4, os.SEEK_CUR)
            continue
        if kind in _PNG_TEXT_CHUNKS:
            keyword = _png_keyword(f.read(80))
            notes.append(f"The metadata text {keyword!r} is larger than 1 MB; it was ignored.")
            f.seek(length - 80 + 4, os.SEEK_CUR)
        else:
            f.seek(length + 4, os.SEEK_CUR)
        if f.tell() > os.fstat(f.fileno()).st_size:
            raise ImageError(f"The image {name} is truncated.")
    else:
        notes.append("The PNG has too many chunks to read to the end; later metadata was not read.")
    assert size is not None
    return size, texts


def _png_keyword(data: bytes) -> str:
    return data.split(b"\0", 1)[0][:79].decode("latin-1")


def _add_png_text(kind: bytes, data: bytes, texts: dict[str, str], notes: list[str]) -> None:
    """Decode one tEXt / zTXt / iTXt chunk into texts; a damaged or oversized one only adds a note."""
    keyword, sep, rest = data.partition(b"\0")
    if not sep or not keyword or len(keyword) > 79:
        return  # not a text chunk anyone could have meant; Pillow drops these too
    key = keyword.decode("latin-1")
    try:
        if kind == b"tEXt":
            value = rest.decode("latin-1")
        elif kind == b"zTXt":
            if rest[:1] != b"\0":
                raise ValueError("unknown compression")
            value = _inflate(rest[1:], key, notes).decode("latin-1")
        else:  # iTXt: flag, method, language\0, translated keyword\0, UTF-8 text
            if len(rest) < 2:
                raise ValueError("too short")
            compressed, method, rest = rest[0], rest[1], rest[2:]
            _language, _translated, raw = rest.split(b"\0", 2)
            if compressed:
                if method != 0:
                    raise ValueError("unknown compression")
                raw = _inflate(raw, key, notes)
            value = raw.decode("utf-8")
    except _TooLarge:
        return
    except (ValueError, zlib.error):  # UnicodeDecodeError is a ValueError
        notes.append(f"The metadata text {key!r} is damaged; it was ignored.")
        return
    texts[key] = value


class _TooLarge(Exception):
    pass


def _inflate(data: bytes, key: str, notes: list[str]) -> bytes:
    """Decompress at most MAX_TEXT_BYTES: a small chunk that expands to gigabytes stops here."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT_BYTES + 1)
    if len(out) > MAX_TEXT_BYTES or inflater.unconsumed_tail:
        notes.append(f"The metadata text {key!r} is larger than 1 MB when decompressed; it was ignored.")
        raise _TooLarge
    return out


def read_exif_texts(path: Path, notes: list[str]) -> tuple[tuple[int, int], dict[str, str]]:
    """JPEG, WebP and the rest, through Pillow: size, and the EXIF UserComment as A1111's 'parameters'."""
    try:
        with Image.open(path) as img:
            size = img.size
            if img.width * img.height <= MAX_PIXELS:
                img.load()  # a truncated file fails here, not later in the person's hands
            try:
                exif = img.getexif()
                comment = exif.get_ifd(EXIF_IFD).get(EXIF_USER_COMMENT)
                if comment is None:  # Fooocus writes it in the main directory
                    comment = exif.get(EXIF_USER_COMMENT)
            except Exception:  # noqa: BLE001 - Pillow's EXIF reader on damaged EXIF
                notes.append("The image's EXIF data is damaged; it was ignored.")
                comment = None
    except Image.DecompressionBombError:
        raise ImageError(f"The image {path.name} is too large to open safely.") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path.name} is not an image file Studio can read.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"The image {path.name} could not be read; it may be truncated or damaged ({exc}).") from None
    if size[0] <= 0 or size[1] <= 0:
        raise ImageError(f"The image {path.name} is empty.")
    text = user_comment_text(comment, notes)
    return size, ({PARAMETERS_CHUNK: text} if text else {})


def other_tools_text(path: str | os.PathLike[str]) -> dict[str, str]:
    """A PNG's text chunks other than Studio's and A1111's (ComfyUI's workflow, InvokeAI's metadata…), to carry
    over to a picture made from it, read within the same limits as for inspecting; empty for other formats or an
    unreadable file."""
    try:
        with open(path, "rb") as f:
            if f.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
                return {}
            _, texts = read_png_texts(f, Path(path).name, [])
    except (OSError, ImageError):
        return {}
    return {key: value for key, value in texts.items() if key not in RECIPE_CHUNKS}
