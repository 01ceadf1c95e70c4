"""`GET /albums` with many albums: the album list the panel loads at every start.

Each album gets a real LanceDB table of a few rows written by the store; the API runs in-process on a loopback
server built by the production factory. Reported: the first call (tables opened) and the median of later calls
(tables cached), against the 17.6 s one call took for 1,000 albums before the store cached its tables.

    .venv/bin/python bench/bench_albums.py [--albums 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS_PER_ALBUM = 3
DIM = 512


def build(root: Path, albums: int) -> None:
    from photomapd import config
    from photomapd.config import AlbumConfig, Config
    from photomapd.store import Store, TableInfo

    folder = root / "images"
    folder.mkdir()
    store = Store(config.index_dir())
    rng = np.random.default_rng(0)
    for n in range(albums):
        key = f"album-{n:04d}"
        table = store.create(key, TableInfo(model="ViT-B-32", pretrained="none", dim=DIM))
        vectors = rng.standard_normal((ROWS_PER_ALBUM, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        table.upsert(
            {"id": i + 1, "path": f"{folder}/{key}-{i}.png", "folder": str(folder), "mtime_ns": 1, "size": 1,
             "width": 1, "height": 1, "vector": vector}
            for i, vector in enumerate(vectors)
        )  # fmt: skip
    albums_config = [AlbumConfig(key=f"album-{n:04d}", display_name=f"Album {n}", folders=[str(folder)]) for n in range(albums)]
    config.save_config(Config(albums=albums_config, model="ViT-B-32", pretrained="none"))


async def measure(rounds: int) -> tuple[float, list[float]]:
    from aiohttp.test_utils import TestClient, TestServer

    from photomapd.api import create_app
    from photomapd.api.keys import ServeOptions

    app = create_app(ServeOptions(token="bench", model="ViT-B-32", pretrained="none", watch=False))
    async with TestClient(TestServer(app)) as client:
        headers = {"Authorization": "Bearer bench"}
        start = time.perf_counter()
        first = await client.get("/api/v1/albums", headers=headers)
        assert first.status == 200, await first.text()
        count = len(await first.json())
        first_s = time.perf_counter() - start
        later = []
        for _ in range(rounds):
            start = time.perf_counter()
            resp = await client.get("/api/v1/albums", headers=headers)
            assert len(await resp.json()) == count
            later.append(time.perf_counter() - start)
    return first_s, later


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--albums", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("config", "data", "cache"):
            os.environ[f"PHOTOMAP_{name.upper()}_DIR"] = str(root / name)
        start = time.perf_counter()
        build(root, args.albums)
        print(f"{args.albums} albums of {ROWS_PER_ALBUM} rows written in {time.perf_counter() - start:.1f} s")
        first_s, later = asyncio.run(measure(args.rounds))
        print(f"GET /albums, first call (every table opened): {first_s * 1e3:.0f} ms")
        print(f"GET /albums, later calls (tables cached): median {statistics.median(later) * 1e3:.0f} ms, "
              f"max {max(later) * 1e3:.0f} ms over {len(later)}")  # fmt: skip


if __name__ == "__main__":
    main()
