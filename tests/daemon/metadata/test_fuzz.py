"""10,000+ seeded mutations of the fixtures (byte flips, truncation, chunk-value mutations, type swaps): no
exception escapes, no internal parser error is reported, and every record serializes the way the API sends it.

Large fixtures are shrunk to their text chunks in a 1x1 PNG first, so the run stays fast while the metadata that
matters is mutated as-is.
"""

from __future__ import annotations

import io
import json
import random
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from photomapd.metadata import parse_metadata_bytes
from photomapd.metadata.chunks import Extracted
from photomapd.metadata.png_chunks import read_png
from photomapd.metadata.reader import INTERNAL_ERROR, extract

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
SEED = 20240611
ROUNDS = 420  # x 24 fixtures -> 10,080 mutations
# Values a type swap may put anywhere in a JSON document.
# Text a mutation may splice into a chunk: the markers the text parsers look for.
INSERTS = ["", "\n", "Steps: x", "Negative prompt:", '"', "<lora:a:b>", "]", " -S", "[", "\0"]
SWAPS: list[Any] = [None, "", "text", 0, -1, 2**70, 1e308, float("inf"), True, [], {}, [[[[]]]], {"a": {"b": None}},
                    "\udcff", "9" * 30, [None, 0], {"image_name": 5}, {"model_name": []}]  # fmt: skip


def corpus(build: SimpleNamespace) -> list[tuple[str, bytes, dict[str, str]]]:
    """(name, small file bytes, its text chunks) for every fixture."""
    items = []
    for path in sorted(FIXTURES.iterdir()):
        data = path.read_bytes()
        extracted: Extracted = extract(io.BytesIO(data))
        if len(data) > 64 * 1024 and extracted.format == "png":
            data = build.png(*(build.text_chunk(k, v, "iTXt") for k, v in extracted.texts.items()))
        elif len(data) > 64 * 1024 and extracted.exif:
            data = build.jpeg((0xE1, b"Exif\0\0" + extracted.exif))
        elif len(data) > 64 * 1024:
            data = data[:4096]
        items.append((path.name, data, extracted.texts))
    return items


def mutate_json(value: Any, rng: random.Random, depth: int = 0) -> Any:
    if depth > 6 or rng.random() < 0.15:
        return rng.choice(SWAPS)
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        copy = dict(value)
        if rng.random() < 0.1:
            del copy[key]
        else:
            copy[key] = mutate_json(value[key], rng, depth + 1)
        return copy
    if isinstance(value, list) and value:
        copy = list(value)
        index = rng.randrange(len(copy))
        copy[index] = mutate_json(copy[index], rng, depth + 1)
        return copy
    return rng.choice(SWAPS)


def mutate_texts(texts: dict[str, str], rng: random.Random, build: SimpleNamespace) -> bytes:
    """Rebuild a valid PNG whose text values (JSON or not) are mutated; CRCs are right so parsers see the values."""
    chunks = []
    for key, text in texts.items():
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        roll = rng.random()
        if value is not None and roll < 0.7:
            text = json.dumps(mutate_json(value, rng))
        elif roll < 0.85:
            cut = rng.randrange(len(text) + 1)
            text = text[:cut] + rng.choice(INSERTS) + text[cut:]
        elif roll < 0.95:
            text = text[: rng.randrange(len(text) + 1)]
        kind = rng.choice(["tEXt", "zTXt", "iTXt", "iTXt-z"])
        try:
            chunks.append(build.text_chunk(key, text, kind))
        except UnicodeEncodeError:
            chunks.append(build.text_chunk(key, text, "iTXt-z"))
    return build.png(*chunks, text_after_idat=rng.random() < 0.3)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    roll = rng.random()
    buffer = bytearray(data)
    if roll < 0.4:
        for _ in range(rng.randint(1, 8)):
            buffer[rng.randrange(len(buffer))] = rng.randrange(256)
    elif roll < 0.6:
        return bytes(buffer[: rng.randrange(len(buffer) + 1)])
    elif roll < 0.8 and len(buffer) > 16:
        at = rng.randrange(8, len(buffer) - 4)  # a length field gone wild
        buffer[at : at + 4] = struct.pack(">I", rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(2**32)]))
    else:
        start = rng.randrange(len(buffer))
        buffer[start:start] = buffer[start : start + rng.randint(1, 64)]  # duplicated span
    return bytes(buffer)


def test_ten_thousand_mutations_never_raise(build: SimpleNamespace) -> None:
    rng = random.Random(SEED)
    items = corpus(build)
    count = 0
    for _ in range(ROUNDS):
        for _name, data, texts in items:
            mutated = mutate_texts(texts, rng, build) if texts and rng.random() < 0.5 else mutate_bytes(data, rng)
            record = parse_metadata_bytes(mutated, fallback_mtime=0.0)
            assert INTERNAL_ERROR not in (record.error or ""), (_name, record.error)
            json.dumps(record.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")  # no lone surrogates
            count += 1
    assert count >= 10_000


def test_mutations_are_real_damage(build: SimpleNamespace) -> None:
    """The fuzzer must actually reach the parsers' error paths, or the test above proves nothing."""
    rng = random.Random(SEED)
    items = corpus(build)
    errors = 0
    for _ in range(20):
        for _name, data, texts in items:
            mutated = mutate_texts(texts, rng, build) if texts and rng.random() < 0.5 else mutate_bytes(data, rng)
            errors += parse_metadata_bytes(mutated).error is not None
    assert errors > 100
