"""Embedder.decode_file on real files: the images.py decode (reduced for big JPEGs) turned into the model's input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from photomapd.errors import ImageUnreadable
from photomapd.images import load_image
from tests.daemon.images import make_bomb_png, make_truncated_png


@pytest.fixture
def embedder(model_runner: Any) -> Any:
    return model_runner.call_sync(lambda embedder: embedder)


def photo(path: Path, size: tuple[int, int]) -> Path:
    """A smooth gradient (photo-like: what a reduced JPEG decode must keep) saved as JPEG."""
    x = np.linspace(0, 255, size[0], dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, size[1], dtype=np.float32)[:, None, None]
    pixels = np.concatenate([np.broadcast_to(x, (size[1], size[0], 1)), np.broadcast_to(y, (size[1], size[0], 1)),
                             np.full((size[1], size[0], 1), 90, np.float32)], axis=2)  # fmt: skip
    Image.fromarray(pixels.astype(np.uint8)).save(path, "JPEG", quality=92)
    return path


def test_a_big_jpeg_becomes_the_model_input_with_its_declared_size(embedder: Any, tmp_path: Path) -> None:
    decoded = embedder.decode_file(photo(tmp_path / "wide.jpg", (4000, 1000)))
    assert tuple(decoded.tensor.shape) == (3, *embedder.input_size)
    assert decoded.tensor.dtype == torch.float32 and bool(torch.isfinite(decoded.tensor).all())
    assert (decoded.width, decoded.height) == (4000, 1000)


def test_the_reduced_decode_matches_a_full_decode(embedder: Any, tmp_path: Path) -> None:
    path = photo(tmp_path / "photo.jpg", (3000, 2000))
    fast = embedder.decode_file(path).tensor
    full = embedder.to_tensor(load_image(path).image)  # every pixel decoded, then the same resize and crop
    # ~0.002 measured (normalized units span ~4); a flipped or shifted crop is ~0.4
    assert float((fast - full).abs().mean()) < 0.02


@pytest.mark.parametrize(("make", "reason"), [(make_bomb_png, "too large"), (make_truncated_png, "cut short")])
def test_skipped_files_raise_the_indexers_reason(embedder: Any, tmp_path: Path, make: Any, reason: str) -> None:
    with pytest.raises(ImageUnreadable, match=reason):
        embedder.decode_file(make(tmp_path / "bad.png"))
