"""A small TIFF/EXIF reader for the tags we use: UserComment (A1111 parameters), dates, camera, description.

Offsets in EXIF are untrusted: every read is bounds-checked and the IFD walk is capped, so a corrupt block yields
fewer tags, never an exception.
"""

from __future__ import annotations

import struct
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_IFD0_TAGS = {
    0x010E: "ImageDescription",
    0x010F: "Make",
    0x0110: "Model",
    0x0131: "Software",
    0x0132: "DateTime",
    0x013B: "Artist",
    0x9C9C: "XPComment",
}
_EXIF_TAGS = {
    0x9003: "DateTimeOriginal",
    0x9004: "DateTimeDigitized",
    0x9010: "OffsetTime",
    0x9011: "OffsetTimeOriginal",
    0x9012: "OffsetTimeDigitized",
    0x9286: "UserComment",
}
_EXIF_IFD_POINTER = 0x8769
# Real IFDs hold a few dozen entries; the cap bounds the work for a corrupt count field.
MAX_IFD_ENTRIES = 512
MAX_VALUE_BYTES = 1024 * 1024


def read_exif(block: bytes) -> dict[str, str]:
    """Tag name -> text for the tags above, from a TIFF block ("II*\\0..." or "MM\\0*...")."""
    if len(block) < 8 or block[:4] not in (b"II*\0", b"MM\0*"):
        return {}
    order = "<" if block[:2] == b"II" else ">"
    tags: dict[str, str] = {}
    ifd0 = struct.unpack(order + "I", block[4:8])[0]
    pointers = _read_ifd(block, order, ifd0, _IFD0_TAGS, tags)
    if pointers is not None:
        _read_ifd(block, order, pointers, _EXIF_TAGS, tags)
    return tags


def _read_ifd(block: bytes, order: str, offset: int, wanted: dict[int, str], tags: dict[str, str]) -> int | None:
    """Read `wanted` tags from the IFD at `offset`; returns the Exif sub-IFD offset when the IFD has one."""
    if offset < 8 or offset + 2 > len(block):
        return None
    count = min(struct.unpack(order + "H", block[offset : offset + 2])[0], MAX_IFD_ENTRIES)
    exif_pointer: int | None = None
    for index in range(count):
        entry = offset + 2 + 12 * index
        if entry + 12 > len(block):
            break
        tag, typ, n = struct.unpack(order + "HHI", block[entry : entry + 8])
        if tag == _EXIF_IFD_POINTER and typ in (4, 13):
            exif_pointer = struct.unpack(order + "I", block[entry + 8 : entry + 12])[0]
            continue
        name = wanted.get(tag)
        size = _TYPE_SIZES.get(typ, 0) * n
        if name is None or size == 0 or size > MAX_VALUE_BYTES:
            continue
        if size <= 4:
            raw = block[entry + 8 : entry + 8 + size]
        else:
            start = struct.unpack(order + "I", block[entry + 8 : entry + 12])[0]
            raw = block[start : start + size]
            if len(raw) < size:
                continue
        tags[name] = _decode_value(name, raw, order)
    return exif_pointer


def _decode_value(name: str, raw: bytes, order: str) -> str:
    if name == "UserComment":
        return decode_user_comment(raw, order)
    if name == "XPComment":  # Windows tag: UTF-16LE whatever the TIFF byte order
        return raw.decode("utf-16-le", errors="replace").rstrip("\0")
    text = raw.rstrip(b"\0")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return text.decode("latin-1")


def decode_user_comment(raw: bytes, order: str = ">") -> str:
    """EXIF UserComment: an 8-byte charset prefix, then the text.

    A1111 writes `UNICODE\\0` + UTF-16 (big-endian via piexif, whatever the TIFF order); other writers follow the TIFF
    byte order. We sniff the zero byte of the first ASCII character before trusting either.
    """
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body.decode("utf-16", errors="replace").rstrip("\0")
        if len(body) >= 2 and body[0] == 0 and body[1] != 0:
            encoding = "utf-16-be"
        elif len(body) >= 2 and body[1] == 0 and body[0] != 0:
            encoding = "utf-16-le"
        else:
            encoding = "utf-16-be" if order == ">" else "utf-16-le"
        return body[: len(body) & ~1].decode(encoding, errors="replace").rstrip("\0")
    if prefix.startswith((b"ASCII", b"\0\0\0\0\0\0\0\0", b"JIS")):
        data = body
    else:
        data = raw  # no charset prefix at all: some writers store plain text
    try:
        return data.decode("utf-8").rstrip("\0")
    except UnicodeDecodeError:
        return data.decode("latin-1").rstrip("\0")

