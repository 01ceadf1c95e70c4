"""Re-layout jobs: one per album, joined by a second request, stopped at shutdown without a half-written layout."""

from __future__ import annotations

import asyncio

import numpy as np

from photomapd import config, mapview
from photomapd.mapjobs import MapJobs
from photomapd.store import AlbumTable, Store, TableInfo

DIM = 16


def small_album(count: int = 40) -> AlbumTable:
    vectors = np.random.default_rng(2).normal(size=(count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = Store(config.index_dir()).open_for_indexing("jobs", TableInfo(model="m", pretrained="none", dim=DIM))
    table.upsert(
        {"id": i + 1, "path": f"/p/{i}.png", "folder": "/p", "mtime_ns": 1, "size": 1, "width": 1, "height": 1,
         "vector": vector.tolist()}
        for i, vector in enumerate(vectors)
    )  # fmt: skip
    return table


async def test_a_second_request_joins_the_running_job() -> None:
    jobs, table = MapJobs(), small_album()
    first = jobs.start(table, "jobs", None)
    assert jobs.start(table, "jobs", None) is first
    finished = await asyncio.wait_for(jobs.wait("jobs"), timeout=120)
    assert finished is first and (first.state, first.layout_version, first.done, first.total) == ("done", 1, 40, 40)
    again = jobs.start(table, "jobs", None)  # a finished job does not block the next one
    assert again is not first
    assert (await asyncio.wait_for(jobs.wait("jobs"), timeout=120)).layout_version == 2  # type: ignore[union-attr]


async def test_shutdown_stops_a_job_before_it_writes_anything() -> None:
    jobs, table = MapJobs(), small_album()
    job = jobs.start(table, "jobs", None)
    await jobs.close()  # before the worker thread reports its first step
    assert job.state == "cancelled" and job.finished_at is not None
    assert mapview.load_state("jobs") is None
    assert table.arrow(["x"], "x IS NOT NULL").num_rows == 0
