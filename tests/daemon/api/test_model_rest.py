"""The daemon at rest: its model unloads after `model_idle_unload_s` and a search loads it again; many clients
searching one text at once encode it once. Real loopback server, real ViT-B-32 (random weights), real LanceDB."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from photomapd.api import create_app
from photomapd.api.keys import CONFIG, EMBEDDER, JOBS, STORE, ServeOptions
from photomapd.config import AlbumConfig, Config, ConfigStore
from photomapd.model.runner import ModelRunner
from photomapd.store import TableInfo
from tests.daemon.api.conftest import TEST_TOKEN

DIM = 512
IDLE_S = 0.5
DEADLINE_S = 60.0  # a model load on a busy 2-core machine takes ~10 s
CLIENTS = 50


@pytest.fixture
async def resting_api(aiohttp_client: Any, serve_options: ServeOptions) -> Any:
    client = await aiohttp_client(create_app(serve_options, ConfigStore(Config(model_idle_unload_s=IDLE_S))))
    client.session.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    app = client.server.app
    app[CONFIG].update(lambda cfg: cfg.albums.append(AlbumConfig(key="pics", display_name="Pics", folders=["/pics"])))
    vectors = np.random.default_rng(3).normal(size=(40, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    app[STORE].create("pics", TableInfo(model="ViT-B-32", pretrained="none", dim=DIM)).upsert(
        {"id": i + 1, "path": f"/pics/{i + 1}.png", "folder": "/pics", "mtime_ns": 1, "size": 1, "width": 8,
         "height": 8, "vector": vector.tolist()}
        for i, vector in enumerate(vectors)
    )  # fmt: skip
    return client


async def search_text(api: Any, text: str) -> dict[str, Any]:
    response = await api.post("/api/v1/albums/pics/search", json={"text": text, "limit": 5, "auto_cut": False})  # every ranked row
    assert response.status == 200, await response.text()
    return await response.json()


async def wait_until_unloaded(runner: ModelRunner) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while runner.is_loaded:
        assert time.monotonic() < deadline, "the daemon's model never unloaded"
        await asyncio.sleep(0.05)


async def test_the_model_unloads_when_idle_and_the_next_search_loads_it(resting_api: Any) -> None:
    runner = resting_api.server.app[EMBEDDER]
    assert runner.idle_unload_s == IDLE_S  # the setting reaches the daemon's runner
    assert not runner.is_loaded  # the daemon starts without a model

    first = await search_text(resting_api, "a red fox")
    assert len(first["results"]) == 5
    encoded = runner.texts.encoded
    assert (await search_text(resting_api, "a red fox")) == first
    assert runner.texts.encoded == encoded  # the repeat came from the cache

    jobs = resting_api.server.app[JOBS]
    assert len(jobs.vectors) == 1  # the album's matrix, read for the search
    await wait_until_unloaded(runner)
    deadline = time.monotonic() + DEADLINE_S
    while len(jobs.vectors):  # resting: the matrix goes with the model process; the next search reads it again
        assert time.monotonic() < deadline, "the resting daemon kept its vector matrix"
        await asyncio.sleep(0.05)
    assert (await search_text(resting_api, "a red fox")) == first  # cached: answered without waking the model
    assert not runner.is_loaded
    other = await search_text(resting_api, "a blue whale")
    assert len(other["results"]) == 5
    assert runner.is_loaded and (runner.loads, runner.unloads) == (2, 1)


async def test_fifty_clients_searching_one_text_encode_it_once(resting_api: Any) -> None:
    runner = resting_api.server.app[EMBEDDER]
    pages = await asyncio.gather(*(search_text(resting_api, "an old castle at night") for _ in range(CLIENTS)))
    assert all(page == pages[0] for page in pages)
    assert (runner.texts.encoded, runner.texts.batches) == (1, 1)
