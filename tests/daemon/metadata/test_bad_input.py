"""Damaged and hostile files: every one gives a record with a clear `error`, bounded memory, and no exception."""

from __future__ import annotations

import json
import struct
import tracemalloc
import zlib
from pathlib import Path
from types import SimpleNamespace

from photomapd.metadata import parse_metadata_bytes, read_metadata
from photomapd.metadata.reader import INTERNAL_ERROR

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
MIB = 1024 * 1024


def assert_clean(record_error: str | None) -> None:
    assert record_error is None or INTERNAL_ERROR not in record_error


def test_missing_file_gives_record_with_error(tmp_path: Path) -> None:
    record = read_metadata(tmp_path / "nope.png")
    assert record.generator is None and record.error is not None and "could not read" in record.error


def test_directory_and_empty_and_non_image_files(tmp_path: Path) -> None:
    assert read_metadata(tmp_path).error is not None
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty" in (read_metadata(tmp_path / "empty.png").error or "")
    (tmp_path / "note.txt").write_bytes(b"hello world, not an image")
    record = read_metadata(tmp_path / "note.txt")
    assert record.error == "not a PNG, JPEG or WebP image" and record.created_at is not None  # mtime fallback


def test_truncated_png_keeps_chunks_read_before_the_cut() -> None:
    data = (FIXTURES / "invokeai-3.x-metadata-only-loras.png").read_bytes()
    record = parse_metadata_bytes(data[:2000])
    assert record.error is not None and "truncated" in record.error
    assert record.positive_prompt == "Anime version of Rami Malek as a martial artist"  # the text chunk came first
    for cut in (0, 5, 8, 12, 40, 400):
        assert_clean(parse_metadata_bytes(data[:cut]).error)


def test_crc_error_keeps_the_text_and_says_so(build: SimpleNamespace) -> None:
    body = b"parameters\0photo of a duck\nSteps: 15, Seed: 7"
    record = parse_metadata_bytes(build.png(build.chunk(b"tEXt", body, crc=0xDEADBEEF)))
    assert record.generator == "a1111" and record.seed == 7
    assert record.error is not None and "CRC mismatch" in record.error


def test_deeply_nested_json_is_kept_as_text(build: SimpleNamespace) -> None:
    for depth in (100, 100_000):
        text = "[" * depth + "]" * depth
        record = parse_metadata_bytes(build.png(build.text_chunk("invokeai_metadata", text)))
        assert record.raw["invokeai_metadata"] == text and not record.recallable
        assert record.error is not None and "nested too deeply" in record.error
        json.dumps(record.model_dump(mode="json"))  # what the API does with it


def test_huge_numbers_do_not_become_fields(build: SimpleNamespace) -> None:
    digits = '{"positive_prompt": "p", "seed": ' + "9" * 5000 + "}"
    record = parse_metadata_bytes(build.png(build.text_chunk("invokeai_metadata", digits)))
    assert record.seed is None and not record.recallable and record.error is not None
    overflow = '{"positive_prompt": "p", "seed": 1e400, "steps": -1e999, "cfg_scale": 1e400}'
    record = parse_metadata_bytes(build.png(build.text_chunk("invokeai_metadata", overflow)))
    assert (record.seed, record.steps, record.cfg_scale) == (None, None, None) and not record.recallable


def test_non_utf8_bytes_in_itxt_are_replaced_and_reported(build: SimpleNamespace) -> None:
    body = b"parameters\0\0\0\0\0" + b"caf\xe9 \xff\nSteps: 20, Seed: 3"
    record = parse_metadata_bytes(build.png(build.chunk(b"iTXt", body)))
    assert record.positive_prompt == "caf\ufffd \ufffd" and record.seed == 3
    assert record.error is not None and "not valid UTF-8" in record.error
    latin = parse_metadata_bytes(build.png(build.chunk(b"tEXt", b"parameters\0caf\xe9\nSteps: 2, Seed: 1")))
    assert latin.positive_prompt == "café" and latin.error is None  # tEXt is Latin-1 by the spec


def test_100_mb_text_chunk_in_a_file_is_skipped_without_reading_it(tmp_path: Path, build: SimpleNamespace) -> None:
    path = tmp_path / "huge.png"
    good = build.text_chunk("parameters", "a cat\nSteps: 5, Seed: 11")
    with open(path, "wb") as out:
        out.write(build.png(good)[:-12])  # everything but IEND
        out.write(struct.pack(">I", 100 * MIB) + b"tEXt" + b"comment\0")
        out.truncate(out.tell() - 8 + 100 * MIB)  # a sparse 100 MB chunk body
        out.seek(0, 2)
        out.write(b"\0\0\0\0" + build.chunk(b"IEND", b""))
    tracemalloc.start()
    record = read_metadata(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert record.seed == 11 and record.error is not None and "over the 16 MiB cap" in record.error
    assert peak < 4 * MIB


def test_100_mb_text_chunk_in_memory_is_skipped(build: SimpleNamespace) -> None:
    huge = struct.pack(">I", 100 * MIB) + b"tEXt" + b"parameters\0" + bytes(100 * MIB - 11) + b"\0\0\0\0"
    data = build.png(huge)
    tracemalloc.start()
    record = parse_metadata_bytes(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * MIB  # the chunk is skipped by offset, never copied
    assert "parameters" not in record.raw and record.error is not None and "cap" in record.error


def test_zip_bomb_ztxt_stops_at_the_cap(build: SimpleNamespace) -> None:
    packer = zlib.compressobj(9)
    block = b"\0" * MIB
    bomb = b"".join(packer.compress(block) for _ in range(64)) + packer.flush()  # 64 MiB of zeros, 64 KB packed
    tracemalloc.start()
    record = parse_metadata_bytes(build.png(build.chunk(b"zTXt", b"parameters\0\0" + bomb)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert record.error is not None and "inflates past" in record.error and "parameters" not in record.raw
    assert peak < 40 * MIB


def test_corrupt_ztxt_and_unknown_compression(build: SimpleNamespace) -> None:
    record = parse_metadata_bytes(build.png(build.chunk(b"zTXt", b"parameters\0\0not zlib at all")))
    assert record.error is not None and "corrupt" in record.error
    record = parse_metadata_bytes(build.png(build.chunk(b"zTXt", b"parameters\0\x07xx")))
    assert record.error is not None and "unknown compression" in record.error


def test_corrupt_chunk_length_stops_reading(build: SimpleNamespace) -> None:
    data = bytearray(build.png(build.text_chunk("parameters", "a\nSteps: 1, Seed: 2")))
    data[33:37] = b"\xff\xff\xff\xff"  # the first chunk after IHDR
    record = parse_metadata_bytes(bytes(data))
    assert record.error is not None and "corrupt" in record.error


def test_truncated_jpeg_and_webp(build: SimpleNamespace) -> None:
    exif = build.tiff([], [(0x9286, 7, b"ASCII\0\0\0a dog\nSteps: 3, Seed: 4")])
    data = build.jpeg((0xE1, b"Exif\0\0" + exif))
    assert parse_metadata_bytes(data).seed == 4
    for cut in (3, 6, 20, len(data) // 2):
        record = parse_metadata_bytes(data[:cut])
        assert record.error is not None and "JPEG" in record.error
    webp = build.webp((b"EXIF", exif))
    assert parse_metadata_bytes(webp).seed == 4
    record = parse_metadata_bytes(webp[: len(webp) - 10])
    assert record.error is not None and "WebP" in record.error


def test_exif_with_offsets_pointing_outside_the_block(build: SimpleNamespace) -> None:
    block = bytearray(build.tiff([(0x010F, 2, b"Canon\0\0\0\0")], [(0x9286, 7, b"ASCII\0\0\0hello there")]))
    block[4:8] = struct.pack(">I", 10_000)  # IFD0 offset past the end
    record = parse_metadata_bytes(build.jpeg((0xE1, b"Exif\0\0" + bytes(block))))
    assert record.generator is None and record.error is None


def test_total_text_budget_per_file(build: SimpleNamespace) -> None:
    big = bytes(12 * MIB)
    chunks = [build.chunk(b"tEXt", f"part{index}\0".encode() + big) for index in range(3)]
    record = parse_metadata_bytes(build.png(*chunks, build.text_chunk("parameters", "a\nSteps: 1, Seed: 5")))
    assert "part0" in record.raw and "part1" in record.raw and "part2" not in record.raw
    assert record.error is not None and "in total" in record.error
