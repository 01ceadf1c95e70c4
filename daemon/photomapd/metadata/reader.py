"""Entry points: file or bytes -> container chunks -> `raw` -> the generator's parser -> one `ImageMetadata`.

Nothing here raises for file content: container damage, caps and unknown shapes become `error` notes, and a parser
bug is caught at this one boundary (logged, reported as an internal parser error) so one odd file never stops a scan.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable

from photomapd.metadata import a1111, comfyui, dates, novelai, swarmui
from photomapd.metadata._values import decode_json
from photomapd.metadata.chunks import Extracted
from photomapd.metadata.exif import read_exif
from photomapd.metadata.invokeai import apply_invokeai, is_invokeai
from photomapd.metadata.jpeg_webp import read_jpeg, read_webp
from photomapd.metadata.model import ImageMetadata
from photomapd.metadata.png_chunks import PNG_SIGNATURE, read_png

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal parser error"
# Text keys that only generators write: present but not understood -> generator "unknown" rather than None.
_GENERATION_KEYS = {"parameters", "prompt", "workflow", "generation_data", "sd-metadata", "Dream"}


def read_metadata(path: Path) -> ImageMetadata:
    """The normalized record for the image at `path`; a missing or unreadable file gives a record with `error`."""
    try:
        with open(path, "rb") as stream:
            mtime = os.fstat(stream.fileno()).st_mtime
            return _parse_stream(stream, mtime)
    except OSError as exc:
        return ImageMetadata(error=f"could not read the file: {exc.strerror or exc}")


def parse_metadata_bytes(data: bytes, fallback_mtime: float | None = None) -> ImageMetadata:
    """The same as `read_metadata` for image bytes in memory (uploads)."""
    return _parse_stream(io.BytesIO(data), fallback_mtime)


def _parse_stream(stream: BinaryIO, mtime: float | None) -> ImageMetadata:
    record = ImageMetadata()
    notes: list[str] = []
    try:
        extracted = extract(stream)
        notes.extend(extracted.errors)
        record.raw = build_raw(extracted, notes)
        notes.extend(_classify(record, record.raw))
        if record.generator is not None or extracted.texts or extracted.exif or extracted.xmp:
            record.created_at = dates.created_at(record, extracted)
    except Exception:  # noqa: BLE001 - the one boundary: a parser bug must not abort a scan of thousands of files
        log.exception("metadata parser failed")
        notes.append(INTERNAL_ERROR)
    if record.created_at is None and mtime is not None:
        record.created_at = dates.from_timestamp(mtime)
    if notes:
        record.error = "; ".join(dict.fromkeys(notes))
    return record


def extract(stream: BinaryIO) -> Extracted:
    """Sniff the container and read its metadata chunks."""
    out = Extracted()
    head = stream.read(12)
    if head.startswith(PNG_SIGNATURE):
        stream.seek(len(PNG_SIGNATURE))
        read_png(stream, out)
    elif head.startswith(b"\xff\xd8"):
        stream.seek(2)
        read_jpeg(stream, out)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        read_webp(stream, out)
    elif head[4:8] == b"ftyp":
        out.note("HEIC/AVIF metadata is not read (only PNG, JPEG and WebP)")
    elif not head:
        out.note("the file is empty")
    else:
        out.note("not a PNG, JPEG or WebP image")
    return out


def build_raw(extracted: Extracted, notes: list[str]) -> dict[str, Any]:
    """Every text chunk, JSON-decoded where it is JSON; EXIF tags, XMP and the JPEG comment under their own keys."""
    raw: dict[str, Any] = {}
    for key, text in extracted.texts.items():
        value, why = decode_json(text)
        if why is None:
            raw[key] = value
        else:
            raw[key] = text
            if why != "not JSON":
                notes.append(f"text chunk '{key}': {why}")
    if extracted.exif:
        tags = read_exif(extracted.exif)
        if tags:
            raw["exif"] = tags
    if extracted.xmp:
        raw["xmp"] = extracted.xmp
    if extracted.comment:
        raw["jpeg_comment"] = extracted.comment
    return raw


Recognise = Callable[[dict[str, Any]], bool]
Apply = Callable[[ImageMetadata, dict[str, Any]], list[str]]
# In priority order: InvokeAI chunks win over anything else in the file; SwarmUI's `parameters` JSON must be tried
# before A1111's `parameters` text, and both before the ComfyUI `prompt` graph that SwarmUI also writes.
PARSERS: tuple[tuple[Recognise, Apply], ...] = (
    (is_invokeai, apply_invokeai),
    (swarmui.is_swarmui, swarmui.apply_swarmui),
    (a1111.is_a1111, a1111.apply_a1111),
    (comfyui.is_comfyui, comfyui.apply_comfyui),
    (novelai.is_novelai, novelai.apply_novelai),
)


def _classify(record: ImageMetadata, raw: dict[str, Any]) -> list[str]:
    """Hand `raw` to the first parser that recognises it; returns notes about shapes it didn't understand."""
    for recognises, apply in PARSERS:
        if recognises(raw):
            return apply(record, raw)
    if any(key in raw for key in _GENERATION_KEYS):
        record.generator = "unknown"
    exif = raw.get("exif")
    if isinstance(exif, dict):  # a photo: say which camera took it
        camera = " ".join(part for part in (exif.get("Make", "").strip(), exif.get("Model", "").strip()) if part)
        record.camera = camera or None
    return []
