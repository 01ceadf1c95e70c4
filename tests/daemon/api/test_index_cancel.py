"""The panel's Cancel (`DELETE /albums/{key}/index`) and live image counts on the progress stream, over a real
loopback server running a real index run (random-weight model) on real PNGs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

from photomapd.index.run import BATCH_SIZE
from tests.daemon.images import make_album

IMAGES = 4 * BATCH_SIZE  # four commits: room to cancel after the first with work still ahead
DEADLINE_S = 300.0  # a loaded 2-core box embeds a few images a second at worst


async def _events(api: Any, key: str, follow: bool = False) -> AsyncIterator[dict[str, Any]]:
    resp = await api.get(f"/api/v1/albums/{key}/progress" + ("?follow=1" if follow else ""))
    assert resp.status == 200
    async for raw in resp.content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


async def test_cancel_stops_at_a_batch_and_keeps_committed_work(api: Any, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    make_album(folder, IMAGES)
    resp = await api.post("/api/v1/albums", json={"key": "big", "display_name": "Big", "folders": [str(folder)]})
    assert resp.status == 201, await resp.text()

    async def first_commit() -> list[dict[str, Any]]:
        seen = []
        async for event in _events(api, "big", follow=True):
            seen.append(event)
            if event["indexed_count"] >= BATCH_SIZE:  # a batch is in the table: the count is live
                return seen
        raise AssertionError("the stream ended before a batch was committed")

    seen = await asyncio.wait_for(first_commit(), DEADLINE_S)
    assert all("indexed_count" in event for event in seen)
    assert [event["indexed_count"] for event in seen] == sorted(event["indexed_count"] for event in seen)

    resp = await asyncio.wait_for(api.delete("/api/v1/albums/big/index"), DEADLINE_S)
    assert resp.status == 200, await resp.text()
    stopped = await resp.json()
    assert stopped["state"] == "cancelled" and stopped["phase"] == "done", stopped
    assert BATCH_SIZE <= stopped["indexed_count"] < IMAGES  # committed batches stay, the rest was not embedded
    assert stopped["indexed_count"] % BATCH_SIZE == 0  # nothing half-written: whole batches only

    albums = await (await api.get("/api/v1/albums")).json()
    assert albums[0]["indexed_count"] == stopped["indexed_count"]
    final = [event async for event in _events(api, "big")]  # a finished run: the stream says so and ends
    assert final[-1]["state"] == "cancelled" and final[-1]["indexed_count"] == stopped["indexed_count"]
    search = await (await api.post("/api/v1/albums/big/search", json={"limit": 500})).json()
    assert search["total"] == stopped["indexed_count"]

    again = await api.delete("/api/v1/albums/big/index")  # nothing runs now: the latest state, unchanged
    assert again.status == 200 and (await again.json())["state"] == "cancelled"
    assert (await api.delete("/api/v1/albums/nope/index")).status == 404
