"""Builders for hand-made test images: real PNG/JPEG/WebP byte layouts, written chunk by chunk."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(ctype: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    value = zlib.crc32(data, zlib.crc32(ctype)) if crc is None else crc
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", value)


def text_chunk(key: str, value: str | dict[str, Any] | list[Any], kind: str = "tEXt") -> bytes:
    text = value if isinstance(value, str) else json.dumps(value)
    name = key.encode("latin-1")
    if kind == "tEXt":
        return chunk(b"tEXt", name + b"\0" + text.encode("latin-1"))
    if kind == "zTXt":
        return chunk(b"zTXt", name + b"\0\0" + zlib.compress(text.encode("latin-1")))
    compressed = kind == "iTXt-z"
    body = zlib.compress(text.encode("utf-8")) if compressed else text.encode("utf-8")
    return chunk(b"iTXt", name + b"\0" + bytes([int(compressed), 0]) + b"\0\0" + body)


def png(*chunks: bytes, text_after_idat: bool = False) -> bytes:
    """A valid 1x1 grey PNG with `chunks` before (or after) IDAT."""
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    idat = chunk(b"IDAT", zlib.compress(b"\0\x80"))
    middle = idat + b"".join(chunks) if text_after_idat else b"".join(chunks) + idat
    return PNG_SIGNATURE + ihdr + middle + chunk(b"IEND", b"")


def png_with_texts(texts: dict[str, Any], kind: str = "tEXt") -> bytes:
    return png(*(text_chunk(key, value, kind) for key, value in texts.items()))


Entry = tuple[int, int, bytes]


def tiff(entries_ifd0: list[Entry], entries_exif: list[Entry], order: str = ">") -> bytes:
    """A TIFF block: IFD0 (+ a pointer to an Exif IFD when `entries_exif`). Entries are (tag, type, raw bytes)."""
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 7: 1}
    magic = b"MM\0*" if order == ">" else b"II*\0"

    def ifd(entries: list[Entry], offset: int, extra: list[tuple[int, int, int]]) -> bytes:
        count = len(entries) + len(extra)
        data_offset = offset + 2 + 12 * count + 4
        table, blob = b"", b""
        for tag, typ, raw in entries:
            n = len(raw) // sizes[typ]
            if len(raw) <= 4:
                table += struct.pack(order + "HHI", tag, typ, n) + raw.ljust(4, b"\0")
            else:
                table += struct.pack(order + "HHII", tag, typ, n, data_offset + len(blob))
                blob += raw
        for tag, typ, value in extra:
            table += struct.pack(order + "HHII", tag, typ, 1, value)
        return struct.pack(order + "H", count) + table + b"\0\0\0\0" + blob

    first = ifd(entries_ifd0, 8, [(0x8769, 4, 0)] if entries_exif else [])
    if not entries_exif:
        return magic + struct.pack(order + "I", 8) + first
    exif_offset = 8 + len(first)
    first = ifd(entries_ifd0, 8, [(0x8769, 4, exif_offset)])
    return magic + struct.pack(order + "I", 8) + first + ifd(entries_exif, exif_offset, [])


def jpeg(*segments: tuple[int, bytes]) -> bytes:
    """SOI, the given (marker, payload) segments, a tiny SOS and EOI."""
    body = b"".join(bytes([0xFF, marker]) + struct.pack(">H", len(data) + 2) + data for marker, data in segments)
    return b"\xff\xd8" + body + b"\xff\xda\x00\x02" + b"\x00" * 16 + b"\xff\xd9"


def webp(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"".join(
        fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"") for fourcc, data in chunks
    )
    vp8l = b"VP8L" + struct.pack("<I", 5) + b"\x2f\0\0\0\0" + b"\0"
    payload = b"WEBP" + vp8l + body
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


@pytest.fixture
def build() -> SimpleNamespace:
    """The builders above, for test modules (importlib import mode keeps conftest out of `import`)."""
    return SimpleNamespace(
        chunk=chunk, text_chunk=text_chunk, png=png, png_with_texts=png_with_texts, tiff=tiff, jpeg=jpeg, webp=webp
    )
