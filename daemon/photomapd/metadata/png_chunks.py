"""PNG chunk walker: reads tEXt/zTXt/iTXt/eXIf/tIME and seeks past everything else (pixels are never decoded)."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime, timezone
from typing import BinaryIO

from photomapd.metadata._values import MAX_TEXT_BYTES
from photomapd.metadata.chunks import Extracted

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_TYPES = {b"tEXt", b"zTXt", b"iTXt"}
_READ_TYPES = _TEXT_TYPES | {b"eXIf", b"tIME"}
# A 100-megapixel PNG written with 8 KiB IDATs has ~40k chunks; past this many the file is hostile, not big.
MAX_CHUNKS = 200_000
# eXIf blocks are small (JPEG caps them at 64 KiB); 1 MiB is generous.
MAX_EXIF_BYTES = 1024 * 1024


def read_png(stream: BinaryIO, out: Extracted) -> None:
    """Fill `out` from the PNG in `stream` (positioned after the signature). Never raises on bad content."""
    out.format = "png"
    for _ in range(MAX_CHUNKS):
        header = stream.read(8)
        if len(header) < 8:
            out.note("PNG is truncated (no IEND chunk)")
            return
        length, ctype = struct.unpack(">I4s", header)
        if not ctype.isalpha() or length > 0x7FFFFFFF:
            out.note("PNG chunk structure is corrupt; stopped reading")
            return
        if ctype == b"IEND":
            return
        if ctype not in _READ_TYPES or not _fits(ctype, length, out):
            stream.seek(length + 4, io.SEEK_CUR)  # skip data + CRC without reading it
            continue
        data = stream.read(length)
        crc = stream.read(4)
        if len(data) < length or len(crc) < 4:
            out.note(f"PNG is truncated inside a {ctype.decode()} chunk")
            return
        if zlib.crc32(data, zlib.crc32(ctype)) != struct.unpack(">I", crc)[0]:
            out.note(f"CRC mismatch in a {ctype.decode()} chunk; its contents may be damaged")
        _read_chunk(ctype, data, out)
    out.note(f"PNG has more than {MAX_CHUNKS} chunks; stopped reading")


def _fits(ctype: bytes, length: int, out: Extracted) -> bool:
    if ctype == b"eXIf":
        if length > MAX_EXIF_BYTES:
            out.note("eXIf chunk too large; skipped")
            return False
        return True
    if ctype == b"tIME":
        return length == 7
    return out.has_room(f"a {ctype.decode()} chunk", length)


def _read_chunk(ctype: bytes, data: bytes, out: Extracted) -> None:
    if ctype == b"eXIf":
        out.exif = out.exif or data
    elif ctype == b"tIME":
        year, month, day, hour, minute, second = struct.unpack(">HBBBBB", data)
        try:
            out.modified = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=timezone.utc)
        except ValueError:
            out.note("tIME chunk holds an invalid date")
    else:
        entry = _decode_text(ctype, data, out)
        if entry is not None:
            out.add_text(*entry)


def _decode_text(ctype: bytes, data: bytes, out: Extracted) -> tuple[str, str] | None:
    key_bytes, sep, rest = data.partition(b"\0")
    if not sep or not 1 <= len(key_bytes) <= 79:
        out.note(f"{ctype.decode()} chunk has no valid keyword; skipped")
        return None
    key = key_bytes.decode("latin-1")
    if ctype == b"tEXt":
        return key, _decode_bytes(rest, key, out, latin1_ok=True)
    if ctype == b"zTXt":
        if not rest or rest[0] != 0:
            out.note(f"zTXt chunk '{key}' uses an unknown compression method; skipped")
            return None
        text = _inflate(rest[1:], key, out)
        return None if text is None else (key, _decode_bytes(text, key, out, latin1_ok=True))
    # iTXt: compression flag, method, language tag \0, translated keyword \0, UTF-8 text
    if len(rest) < 2:
        out.note(f"iTXt chunk '{key}' is truncated; skipped")
        return None
    compressed, method = rest[0], rest[1]
    _lang, _, tail = rest[2:].partition(b"\0")
    _translated, _, body = tail.partition(b"\0")
    if compressed:
        if method != 0:
            out.note(f"iTXt chunk '{key}' uses an unknown compression method; skipped")
            return None
        inflated = _inflate(body, key, out)
        if inflated is None:
            return None
        body = inflated
    return key, _decode_bytes(body, key, out, latin1_ok=False)


def _inflate(data: bytes, key: str, out: Extracted) -> bytes | None:
    """zlib-decompress at most MAX_TEXT_BYTES: a zip bomb stops at the cap instead of filling memory."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, MAX_TEXT_BYTES + 1)
    except zlib.error:
        out.note(f"compressed text chunk '{key}' is corrupt; skipped")
        return None
    if len(text) > MAX_TEXT_BYTES:
        out.note(f"compressed text chunk '{key}' inflates past the {MAX_TEXT_BYTES >> 20} MiB cap; skipped")
        return None
    if not out.has_room(f"text chunk '{key}'", len(text)):
        return None
    return text


def _decode_bytes(data: bytes, key: str, out: Extracted, *, latin1_ok: bool) -> str:
    """UTF-8 first: many writers put UTF-8 in tEXt although the spec says Latin-1, and Latin-1 never fails."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if latin1_ok:
            return data.decode("latin-1")
        out.note(f"text chunk '{key}' is not valid UTF-8; bad bytes replaced")
        return data.decode("utf-8", errors="replace")
