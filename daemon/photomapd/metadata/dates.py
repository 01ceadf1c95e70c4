"""`created_at`: the generator's own date, else the file's metadata dates (PNG text, XMP, EXIF, tIME), else mtime.

All results are timezone-aware UTC so the store can sort and filter them; a date without a zone is taken as the
machine's local time, which is how EXIF and most generators write it.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from photomapd.metadata.chunks import Extracted
from photomapd.metadata.model import ImageMetadata

# PNG text keys that hold a creation date: the PNG spec's keyword, ImageMagick's, and a common variant.
_PNG_DATE_KEYS = ("Creation Time", "CreationDate", "date:create")
_XMP_DATE = re.compile(r"(?:xmp:CreateDate|photoshop:DateCreated|exif:DateTimeOriginal)\s*=\s*\"([^\"]{8,40})\"")
_XMP_DATE_ELEMENT = re.compile(r"<(?:xmp:CreateDate|photoshop:DateCreated|exif:DateTimeOriginal)>([^<]{8,40})<")
_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")
# EXIF dates in order of preference, each with the tag holding its UTC offset (EXIF 2.31+).
_EXIF_DATE_KEYS = (("DateTimeOriginal", "OffsetTimeOriginal"), ("DateTimeDigitized", "OffsetTimeDigitized"),
                   ("DateTime", "OffsetTime"))  # fmt: skip


def created_at(record: ImageMetadata, extracted: Extracted) -> datetime | None:
    if record.created_at is not None:
        return record.created_at
    for key in _PNG_DATE_KEYS:
        parsed = parse_date(extracted.texts.get(key))
        if parsed:
            return parsed
    xmp = extracted.xmp or extracted.texts.get("XML:com.adobe.xmp")  # PNG keeps XMP in an iTXt chunk
    if xmp:
        match = _XMP_DATE.search(xmp) or _XMP_DATE_ELEMENT.search(xmp)
        parsed = parse_date(match.group(1)) if match else None
        if parsed:
            return parsed
    exif = record.raw.get("exif")
    if isinstance(exif, dict):
        for key, offset_key in _EXIF_DATE_KEYS:
            parsed = parse_exif_date(exif.get(key), exif.get(offset_key))
            if parsed:
                return parsed
    return extracted.modified


def parse_date(value: Any) -> datetime | None:
    """ISO 8601 (with or without time or zone) or EXIF `YYYY:MM:DD HH:MM:SS`; None for anything else."""
    if not isinstance(value, str) or not 8 <= len(value.strip()) <= 40:
        return None
    text = value.strip()
    if _EXIF_DATE.match(text):
        return parse_exif_date(text, None)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _to_utc(parsed)


def parse_exif_date(value: Any, offset: Any) -> datetime | None:
    match = _EXIF_DATE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    zone = offset.strip() if isinstance(offset, str) and _OFFSET.match(offset.strip()) else ""
    try:
        parsed = datetime.fromisoformat(f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{zone}")
    except ValueError:  # 0000:00:00 placeholders and other impossible dates
        return None
    return _to_utc(parsed)


def from_timestamp(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _to_utc(parsed: datetime) -> datetime | None:
    if parsed.year < 1900:
        return None
    try:
        aware = parsed if parsed.tzinfo else parsed.astimezone()  # naive: local time
        return aware.astimezone(timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
