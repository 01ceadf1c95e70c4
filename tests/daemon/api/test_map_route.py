"""`/albums/{key}/map` over a real loopback server: binary payload, ETag/If-None-Match, filters, re-layout job."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from photomapd.map import payload as mappayload
from photomapd.map import layout as mapview
from photomapd.api.keys import CONFIG, JOBS, STORE
from photomapd.config import AlbumConfig
from photomapd.store import AlbumTable, TableInfo

DIM = 32
WORDS = ["red fox", "blue whale", "old castle"]


def _rows(count: int, first_id: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(first_id)
    centres = np.random.default_rng(0).normal(size=(len(WORDS), DIM))
    kinds = np.arange(count) % len(WORDS)
    vectors = centres[kinds] + rng.normal(scale=0.1, size=(count, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        {"id": first_id + i, "path": f"/pics/{first_id + i}.png", "folder": "/pics", "mtime_ns": 1, "size": 1,
         "width": 8, "height": 8, "vector": vectors[i].tolist(), "positive_prompt": WORDS[kinds[i]]}
        for i in range(count)
    ]  # fmt: skip


@pytest.fixture
async def mapped(api: Any) -> AlbumTable:
    app = api.server.app
    app[CONFIG].update(lambda cfg: cfg.albums.append(AlbumConfig(key="pics", display_name="Pics", folders=["/pics"])))
    table = app[STORE].create("pics", TableInfo(model="m", pretrained="none", dim=DIM))
    table.upsert(_rows(90))
    await asyncio.to_thread(mapview.refresh_map, table, "pics")
    return table


async def test_map_payload_decodes_to_the_tables_coordinates(api: Any, mapped: AlbumTable) -> None:
    response = await api.get("/api/v1/albums/pics/map")
    assert response.status == 200 and response.content_type == "application/octet-stream"
    decoded = mappayload.decode_map(await response.read())
    placed = mapped.arrow(["id", "x", "y"]).to_pydict()
    assert decoded.header["count"] == 90 and decoded.ids.tolist() == sorted(placed["id"])
    by_id = dict(zip(placed["id"], zip(placed["x"], placed["y"])))
    assert [(float(x), float(y)) for x, y in zip(decoded.x, decoded.y)] == [
        tuple(float(np.float32(v)) for v in by_id[i]) for i in decoded.ids.tolist()
    ]
    labels = {frozenset(c["label"].split(", ")) for c in decoded.header["clusters"]}
    assert labels == {frozenset(words.split()) for words in WORDS}


async def test_if_none_match_gets_304_until_the_map_changes(api: Any, mapped: AlbumTable) -> None:
    first = await api.get("/api/v1/albums/pics/map")
    etag = first.headers["ETag"]
    again = await api.get("/api/v1/albums/pics/map", headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag and await again.read() == b""
    mapped.upsert(_rows(5, first_id=500))
    await asyncio.to_thread(mapview.refresh_map, mapped, "pics")
    changed = await api.get("/api/v1/albums/pics/map", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert mappayload.decode_map(await changed.read()).header["count"] == 95


async def test_search_filters_narrow_the_returned_ids(api: Any, mapped: AlbumTable) -> None:
    everything = await api.get("/api/v1/albums/pics/map")
    response = await api.get("/api/v1/albums/pics/map", params={"prompt": "WHALE"})
    decoded = mappayload.decode_map(await response.read())
    assert decoded.ids.tolist() == [i for i in range(1, 91) if i % 3 == 2]
    assert response.headers["ETag"] != everything.headers["ETag"]


async def test_bad_filters_and_unknown_albums_are_clear_errors(api: Any, mapped: AlbumTable) -> None:
    unknown_filter = await api.get("/api/v1/albums/pics/map", params={"colour": "red"})
    assert unknown_filter.status == 422
    bad_seed = await api.get("/api/v1/albums/pics/map", params={"seed": "x"})
    assert bad_seed.status == 400 and (await bad_seed.json())["error"]["message"] == (
        "Seed must be a whole number, e.g. 1234567890"
    )
    missing = await api.get("/api/v1/albums/nope/map")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "album_not_found"


async def test_relayout_runs_in_the_background_and_bumps_the_layout_version(api: Any, mapped: AlbumTable) -> None:
    before = await api.get("/api/v1/albums/pics/map")
    started = await api.post("/api/v1/albums/pics/map/relayout")
    assert started.status == 202 and (await started.json())["state"] in ("queued", "running")
    job = await asyncio.wait_for(api.server.app[JOBS].wait_relayout("pics"), timeout=60)
    assert job is not None and (job.state, job.layout_version, job.done, job.total) == ("done", 2, 90, 90)
    status = await (await api.get("/api/v1/albums/pics/map/relayout")).json()
    assert status["state"] == "done" and status["layout_version"] == 2
    after = await api.get("/api/v1/albums/pics/map", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status == 200 and mappayload.decode_map(await after.read()).header["layout_version"] == 2
