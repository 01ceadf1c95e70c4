"""JPEG and WebP walkers: pull the EXIF block, XMP packet and JPEG comment; image data is never read."""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

from photomapd.metadata.chunks import Extracted

_EXIF_PREFIX = b"Exif\0\0"
_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\0"
# A WebP EXIF/XMP chunk is a few KiB; 4 MiB bounds a hostile size field.
MAX_WEBP_META_BYTES = 4 * 1024 * 1024
# JPEGs carry a handful of APPn segments before the scan; more than this and the file is junk.
MAX_JPEG_SEGMENTS = 1000
MAX_WEBP_CHUNKS = 10_000


def read_jpeg(stream: BinaryIO, out: Extracted) -> None:
    """Fill `out` from the JPEG in `stream` (positioned after SOI). Stops at the first scan (SOS)."""
    out.format = "jpeg"
    for _ in range(MAX_JPEG_SEGMENTS):
        marker = stream.read(2)
        while len(marker) == 2 and marker == b"\xff\xff":  # fill bytes before a marker
            marker = b"\xff" + stream.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            out.note("JPEG is truncated or corrupt before the image data")
            return
        code = marker[1]
        if code in (0xD9, 0xDA):  # EOI, SOS: metadata segments all come before the scan
            return
        if 0xD0 <= code <= 0xD7 or code == 0x01:  # standalone markers carry no length
            continue
        size_bytes = stream.read(2)
        if len(size_bytes) < 2:
            out.note("JPEG is truncated inside a segment header")
            return
        size = struct.unpack(">H", size_bytes)[0] - 2
        if size < 0:
            out.note("JPEG segment has an invalid length")
            return
        if code not in (0xE1, 0xFE):
            stream.seek(size, io.SEEK_CUR)
            continue
        data = stream.read(size)
        if len(data) < size:
            out.note("JPEG is truncated inside a metadata segment")
            return
        _read_segment(code, data, out)
    out.note("JPEG has too many segments; stopped reading")


def _read_segment(code: int, data: bytes, out: Extracted) -> None:
    if code == 0xFE:
        if out.comment is None:
            out.comment = _text(data)
    elif data.startswith(_EXIF_PREFIX):
        out.exif = out.exif or data[len(_EXIF_PREFIX) :]
    elif data.startswith(_XMP_PREFIX):
        out.xmp = out.xmp or _text(data[len(_XMP_PREFIX) :])


def read_webp(stream: BinaryIO, out: Extracted) -> None:
    """Fill `out` from the WebP in `stream` (positioned after the 12-byte RIFF/WEBP header)."""
    out.format = "webp"
    for _ in range(MAX_WEBP_CHUNKS):
        header = stream.read(8)
        if len(header) == 0:
            return
        if len(header) < 8:
            out.note("WebP is truncated inside a chunk header")
            return
        fourcc, size = struct.unpack("<4sI", header)
        padded = size + (size & 1)
        if fourcc not in (b"EXIF", b"XMP ") or size > MAX_WEBP_META_BYTES:
            if fourcc in (b"EXIF", b"XMP "):
                out.note(f"WebP {fourcc.decode().strip()} chunk too large; skipped")
            stream.seek(padded, io.SEEK_CUR)
            continue
        data = stream.read(padded)[:size]
        if len(data) < size:
            out.note("WebP is truncated inside a metadata chunk")
            return
        if fourcc == b"EXIF":
            out.exif = out.exif or (data[len(_EXIF_PREFIX) :] if data.startswith(_EXIF_PREFIX) else data)
        else:
            out.xmp = out.xmp or _text(data)
    out.note("WebP has too many chunks; stopped reading")


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8").rstrip("\0")
    except UnicodeDecodeError:
        return data.decode("latin-1").rstrip("\0")
