"""Uploaded search images through the real API: the pixel cap of indexing, checked before any pixel is decoded."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from photomapd.api.keys import CONFIG, STORE
from photomapd.config import AlbumConfig
from photomapd.images import MAX_IMAGE_PIXELS
from photomapd.store import TableInfo
from tests.daemon.images import make_bomb_png, make_truncated_png

DIM = 512  # ViT-B-32's, as the daemon in `serve_options` runs it


@pytest.fixture
async def album(api: Any) -> None:
    app = api.server.app
    app[CONFIG].update(lambda cfg: cfg.albums.append(AlbumConfig(key="pics", display_name="Pics", folders=["/pics"])))
    vector = np.zeros(DIM, np.float32)
    vector[0] = 1.0
    row = {"id": 1, "path": "/pics/1.png", "folder": "/pics", "mtime_ns": 1, "size": 1, "width": 8, "height": 8,
           "vector": vector.tolist()}  # fmt: skip
    app[STORE].create("pics", TableInfo(model="ViT-B-32", pretrained="none", dim=DIM)).upsert([row])


async def search_upload(api: Any, data: bytes) -> tuple[int, dict[str, Any]]:
    response = await api.post("/api/v1/albums/pics/search", json={"image_base64": base64.b64encode(data).decode()})
    return response.status, await response.json()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
async def test_a_tiny_png_declaring_13000x13000_is_refused_unread(api: Any, album: None, tmp_path: Path) -> None:
    bomb = make_bomb_png(tmp_path / "bomb.png", 13_000, 13_000).read_bytes()
    assert len(bomb) < 20_000 and 13_000 * 13_000 > MAX_IMAGE_PIXELS
    Image.init()  # registering Pillow's plugins makes one image of its own; do it before counting
    buffers_before = Image.core.get_stats()["new_count"]  # the server runs in this process
    status, body = await search_upload(api, bomb)
    assert status == 422
    assert body["error"]["code"] == "image_unreadable"
    assert "too large" in body["error"]["message"] and "13000x13000" in body["error"]["message"]
    assert Image.core.get_stats()["new_count"] == buffers_before  # refused from the header: no pixel buffer made


async def test_a_gigapixel_bomb_and_a_cut_short_upload_get_their_reasons(api: Any, album: None, tmp_path: Path) -> None:
    status, body = await search_upload(api, make_bomb_png(tmp_path / "giga.png").read_bytes())
    assert status == 422 and "too large" in body["error"]["message"]
    status, body = await search_upload(api, make_truncated_png(tmp_path / "cut.png").read_bytes())
    assert status == 422 and body["error"]["code"] == "image_unreadable" and "cut short" in body["error"]["message"]
