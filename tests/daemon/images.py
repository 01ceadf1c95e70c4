"""Real image files for tests: Pillow-made PNGs/JPEGs, and hostile ones (broken, empty, decompression bomb)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def make_png(path: Path, seed: int, size: tuple[int, int] = (96, 96)) -> Path:
    """A distinct noise image per seed (distinct pixels → distinct vectors)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def make_album(folder: Path, count: int, start_seed: int = 0) -> list[Path]:
    return [make_png(folder / f"img_{start_seed + i:04d}.png", start_seed + i) for i in range(count)]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_bomb_png(path: Path, width: int = 40_000, height: int = 40_000) -> Path:
    """A valid PNG header claiming 1.6 gigapixels over a few bytes of data: must be refused before decoding."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def make_truncated_png(path: Path, seed: int = 99) -> Path:
    make_png(path, seed, (128, 128))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
