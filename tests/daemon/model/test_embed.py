"""The model's input from real files: the images.py decode (reduced for big JPEGs) fitted to the model's size
(model/preprocess.py, torch-free), then normalized and embedded by the Embedder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from photomapd.errors import ImageUnreadable
from photomapd.images import load_image
from photomapd.model.preprocess import to_pixels
from tests.daemon.images import make_bomb_png, make_truncated_png


@pytest.fixture(scope="module")
def embedder() -> Any:
    """In this process (the daemon runs it in its model process): the Embedder's own methods are under test."""
    from photomapd.model.embed import load_embedder

    return load_embedder("ViT-B-32", "none")


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
    assert decoded.pixels.shape == (*embedder.input_size, 3) and decoded.pixels.dtype == np.uint8
    assert (decoded.width, decoded.height) == (4000, 1000)
    vector = embedder.encode_pixels([decoded.pixels])[0]
    assert bool(np.isfinite(vector).all()) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3


def test_the_reduced_decode_matches_a_full_decode(embedder: Any, tmp_path: Path) -> None:
    path = photo(tmp_path / "photo.jpg", (3000, 2000))
    fast = embedder.decode_file(path).pixels.astype(np.float32)
    full = to_pixels(load_image(path).image, embedder.spec).astype(np.float32)  # every pixel decoded, same fit
    # ~0.1 of 255 measured; a flipped or shifted crop is ~25
    assert float(np.abs(fast - full).mean()) < 1.5


@pytest.mark.parametrize(("make", "reason"), [(make_bomb_png, "too large"), (make_truncated_png, "cut short")])
def test_skipped_files_raise_the_indexers_reason(embedder: Any, tmp_path: Path, make: Any, reason: str) -> None:
    with pytest.raises(ImageUnreadable, match=reason):
        embedder.decode_file(make(tmp_path / "bad.png"))
