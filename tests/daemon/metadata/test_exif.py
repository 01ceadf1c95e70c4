"""JPEG/WebP containers and EXIF: UserComment encodings, photo dates and camera, XMP dates, created_at order."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from photomapd.metadata import parse_metadata_bytes, read_metadata
from photomapd.metadata.exif import decode_user_comment

A1111 = "a red fox\nNegative prompt: blurry\nSteps: 12, Sampler: Euler a, CFG scale: 6, Seed: 42, Size: 640x480"


def photo_exif(build: SimpleNamespace, order: str = ">") -> bytes:
    return build.tiff(
        [(0x010F, 2, b"FUJIFILM\0"), (0x0110, 2, b"X-T30\0"), (0x0132, 2, b"2023:05:06 07:08:09\0")],
        [(0x9003, 2, b"2021:02:03 04:05:06\0"), (0x9011, 2, b"+02:00\0")],
        order,
    )


def test_photo_exif_gives_camera_and_original_date_with_offset(build: SimpleNamespace) -> None:
    for order in (">", "<"):
        record = parse_metadata_bytes(build.jpeg((0xE1, b"Exif\0\0" + photo_exif(build, order))))
        assert record.generator is None and record.camera == "FUJIFILM X-T30"
        assert record.created_at == datetime(2021, 2, 3, 2, 5, 6, tzinfo=timezone.utc)
        assert record.raw["exif"]["Make"] == "FUJIFILM"


def test_a1111_user_comment_in_utf16_le_and_be_and_ascii(build: SimpleNamespace) -> None:
    payloads = [
        b"UNICODE\0" + A1111.encode("utf-16-be"),
        b"UNICODE\0" + A1111.encode("utf-16-le"),
        b"ASCII\0\0\0" + A1111.encode("ascii"),
    ]
    for payload in payloads:
        for order in (">", "<"):
            exif = build.tiff([], [(0x9286, 7, payload)], order)
            record = parse_metadata_bytes(build.jpeg((0xE1, b"Exif\0\0" + exif)))
            assert record.generator == "a1111" and record.positive_prompt == "a red fox"
            assert (record.negative_prompt, record.seed, record.width, record.height) == ("blurry", 42, 640, 480)


def test_user_comment_with_a_bom_and_without_a_prefix() -> None:
    assert decode_user_comment(b"UNICODE\0" + "héllo".encode("utf-16")) == "héllo"
    assert decode_user_comment(b"plain text") == "plain text"


def test_webp_exif_chunk_with_and_without_the_exif_prefix(build: SimpleNamespace) -> None:
    exif = build.tiff([], [(0x9286, 7, b"UNICODE\0" + A1111.encode("utf-16-be"))])
    for payload in (exif, b"Exif\0\0" + exif):
        record = parse_metadata_bytes(build.webp((b"EXIF", payload)))
        assert record.generator == "a1111" and record.seed == 42


def test_xmp_create_date_and_jpeg_comment_are_kept(build: SimpleNamespace) -> None:
    xmp = b'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:Description xmp:CreateDate="2020-01-02T03:04:05Z"/>'
    record = parse_metadata_bytes(build.jpeg((0xE1, xmp), (0xFE, b"just a comment")))
    assert record.created_at == datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert record.raw["jpeg_comment"] == "just a comment" and "CreateDate" in record.raw["xmp"]
    assert record.generator is None


def test_xmp_in_a_png_itxt_chunk(build: SimpleNamespace) -> None:
    xmp = '<x:xmpmeta><rdf:Description exif:DateTimeOriginal="2017-03-04T05:06:07Z"/></x:xmpmeta>'
    record = parse_metadata_bytes(build.png(build.text_chunk("XML:com.adobe.xmp", xmp, "iTXt")))
    assert record.created_at == datetime(2017, 3, 4, 5, 6, 7, tzinfo=timezone.utc) and record.generator is None


def test_heif_files_say_their_metadata_is_not_read() -> None:
    record = parse_metadata_bytes(b"\0\0\0\x18ftypheic" + bytes(64))
    assert record.generator is None and record.error is not None and "HEIC" in record.error


def test_xmp_in_webp_as_an_element(build: SimpleNamespace) -> None:
    xmp = b"<x:xmpmeta><photoshop:DateCreated>2019-12-31T23:00:00+01:00</photoshop:DateCreated></x:xmpmeta>"
    record = parse_metadata_bytes(build.webp((b"XMP ", xmp)))
    assert record.created_at == datetime(2019, 12, 31, 22, 0, tzinfo=timezone.utc)


def test_created_at_prefers_metadata_then_exif_then_mtime(tmp_path: Path, build: SimpleNamespace) -> None:
    exif_chunk = build.chunk(b"eXIf", photo_exif(build))
    png_date = build.png(build.text_chunk("Creation Time", "2018-07-01T10:00:00+00:00"), exif_chunk)
    assert parse_metadata_bytes(png_date).created_at == datetime(2018, 7, 1, 10, tzinfo=timezone.utc)
    exif_only = build.png(build.chunk(b"eXIf", photo_exif(build)))
    assert parse_metadata_bytes(exif_only).created_at == datetime(2021, 2, 3, 2, 5, 6, tzinfo=timezone.utc)
    path = tmp_path / "plain.png"
    path.write_bytes(build.png())
    os.utime(path, (1_600_000_000, 1_600_000_000))
    assert read_metadata(path).created_at == datetime.fromtimestamp(1_600_000_000, tz=timezone.utc)
    assert parse_metadata_bytes(build.png(), fallback_mtime=1_500_000_000.5) is not None
    assert parse_metadata_bytes(build.png(), fallback_mtime=1_500_000_000).created_at == datetime.fromtimestamp(
        1_500_000_000, tz=timezone.utc
    )


def test_impossible_exif_dates_are_ignored(build: SimpleNamespace) -> None:
    exif = build.tiff([(0x0132, 2, b"0000:00:00 00:00:00\0")], [(0x9003, 2, b"2021:13:45 99:00:00\0")])
    record = parse_metadata_bytes(build.jpeg((0xE1, b"Exif\0\0" + exif)))
    assert record.created_at is None and record.error is None
