"""Live watching: files dropped into, edited in or deleted from an album folder reach the index on their own."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from photomapd.api.keys import WATCHERS, ServeOptions

from tests.daemon.api.conftest import TEST_TOKEN
from tests.daemon.api.test_album_routes import read_sse
from tests.daemon.images import make_album, make_png


@pytest.fixture
def serve_options() -> ServeOptions:
    return ServeOptions(token=TEST_TOKEN, model="ViT-B-32", pretrained="none", watch=True)


async def wait_for_count(api: Any, expected: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        albums = await (await api.get("/api/v1/albums")).json()
        if albums[0]["indexed_count"] == expected and albums[0]["progress"]["state"] != "running":
            return
        assert time.monotonic() < deadline, f"index never reached {expected}: {albums[0]}"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("poll", [False, True])
async def test_new_and_deleted_files_are_picked_up_without_update_index(api: Any, tmp_path: Path, poll: bool) -> None:
    folder = tmp_path / "watched"
    make_album(folder, 3)
    resp = await api.post(
        "/api/v1/albums", json={"key": "live", "display_name": "Live", "folders": [str(folder)], "poll": poll}
    )
    assert resp.status == 201
    await read_sse(api, "live")
    await wait_for_count(api, 3)

    make_png(folder / "nested" / "fresh.png", seed=900)
    (folder / "img_0000.png").unlink()
    await wait_for_count(api, 3 + 1 - 1)
    found = await (await api.post("/api/v1/albums/live/search", json={"limit": 10})).json()
    assert found["total"] == 3


async def test_album_with_watching_off_is_not_updated(api: Any, tmp_path: Path) -> None:
    folder = tmp_path / "still"
    make_album(folder, 2)
    resp = await api.post(
        "/api/v1/albums", json={"key": "still", "display_name": "Still", "folders": [str(folder)], "watch": False}
    )
    assert resp.status == 201
    await read_sse(api, "still")
    assert "still" not in api.app[WATCHERS].watched
    resp = await api.patch("/api/v1/albums/still", json={"watch": True})
    assert resp.status == 200
    assert "still" in api.app[WATCHERS].watched
    make_png(folder / "later.png", seed=901)
    await wait_for_count(api, 3)
