"""`--engine ray` against a real two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`, no network).

The cluster starts once for the module; every Ray run is compared with the local pipeline on the same files: same
ids, paths, metadata columns and (to cosine 0.9999) vectors. Skipped cleanly where the `[scale]` group is absent,
except the one test that checks what `--engine ray` says then.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pytest

from photomapd import config
from photomapd.albums import AlbumCreate, add_album
from photomapd.api import create_app
from photomapd.api.keys import ServeOptions
from photomapd.config import ConfigStore
from photomapd.index.run import IdAllocator
from photomapd.jobs import index_once
from photomapd.store import Store

from tests.daemon.images import make_album, make_png, make_truncated_png
from tests.daemon.processes import PHOTOMAPD, TEST_MODEL

FIXTURES = Path(__file__).parents[2] / "fixtures" / "images"
TOKEN = "test-token-0123456789"
# Compared between engines: everything a search, the map or the drawer reads, bar the map's own columns.
COLUMNS = [
    "id", "path", "folder", "mtime_ns", "size", "width", "height", "generator", "app_version", "created_at",
    "positive_prompt", "negative_prompt", "model", "seed", "loras", "has_recallable", "metadata_json",
]  # fmt: skip
RUN_S = 240.0  # one Ray run of a few dozen images: ~20 s here (actors load the model), far more on a loaded CI box


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head and one worker node, two logical CPUs each, joined by this process; its address for CLI runs."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("lance_ray")
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="pmray", dir="/tmp")  # short: Ray's unix socket paths must fit 107 bytes
    # For the nodes and every CLI run a test starts: sessions under `temp`, and no usage report.
    env = {"RAY_TMPDIR": temp, "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    try:
        nodes.add_node(num_cpus=2)
        nodes.wait_for_nodes()
        ray.init(address=nodes.address, log_to_driver=False)
        yield nodes.address
    finally:
        ray.shutdown()
        nodes.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _album(key: str, folder: Path) -> None:
    add_album(ConfigStore(), AlbumCreate(key=key, display_name=key, folders=[str(folder)]))


def _rows(store: Store, key: str) -> pa.Table:
    table = store.open(key)
    assert table is not None, f"album {key} has no table"
    return table.arrow([*COLUMNS, "vector"]).sort_by("path")


def _vectors(rows: pa.Table) -> np.ndarray:
    return np.stack(rows.column("vector").to_numpy(zero_copy_only=False))


def _assert_same_rows(ray_rows: pa.Table, local_rows: pa.Table, columns: list[str] = COLUMNS) -> None:
    assert ray_rows.num_rows == local_rows.num_rows
    for column in columns:
        assert ray_rows.column(column).to_pylist() == local_rows.column(column).to_pylist(), column
    cosines = (_vectors(ray_rows) * _vectors(local_rows)).sum(axis=1)
    assert cosines.min() >= 0.9999


async def _read_sse(api: Any, key: str) -> list[dict[str, Any]]:
    resp = await api.get(f"/api/v1/albums/{key}/progress")
    assert resp.status == 200
    events = []
    async for raw in resp.content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: ") :]))
    return events


async def test_album_indexed_on_ray_through_the_daemon_equals_local_and_streams_progress(
    cluster: str, aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photomapd.scale import engine as ray_engine

    monkeypatch.setattr(ray_engine, "CHUNK_ROWS", 4)  # several commits, so the stream shows the run advance
    folder = tmp_path / "images"
    make_album(folder, 13)
    shutil.copy(FIXTURES / "invokeai-6.10.0-metadata-graph.png", folder / "invokeai.png")
    shutil.copy(FIXTURES / "a1111-parameters-01-cropped.png", folder / "a1111.png")
    make_truncated_png(folder / "broken.png")
    _album("local", folder)
    _album("viaray", folder)
    options = ServeOptions(token=TOKEN, model=TEST_MODEL[0], pretrained="none", watch=False)
    api = await aiohttp_client(create_app(options))
    api.session.headers["Authorization"] = f"Bearer {TOKEN}"

    assert (await api.post("/api/v1/albums/local/index", json={})).status == 202
    local = (await _read_sse(api, "local"))[-1]
    resp = await api.post("/api/v1/albums/viaray/index", json={"engine": "ray", "address": cluster})
    assert resp.status == 202, await resp.text()
    events = await _read_sse(api, "viaray")

    final = events[-1]
    assert final["state"] == "done", final
    assert (final["done"], final["total"], final["new"]) == (16, 16, 16)
    assert final["skipped_count"] == local["skipped_count"] == 1
    assert final["skipped"][0]["path"].endswith("broken.png")
    embedding = [event["done"] for event in events if event["phase"] == "embedding" and event["done"]]
    assert len(embedding) >= 3 and embedding == sorted(embedding), "the bar advances chunk by chunk"
    store = Store(config.index_dir(), read_only=True)
    ray_rows, local_rows = _rows(store, "viaray"), _rows(store, "local")
    assert ray_rows.num_rows == 15
    _assert_same_rows(ray_rows, local_rows)
    assert "invokeai" in ray_rows.column("generator").to_pylist()

    search = await api.post("/api/v1/albums/viaray/search", json={"filters": {"generator": "invokeai"}})
    assert [hit["id"] for hit in (await search.json())["results"]] == [
        row["id"] for row in local_rows.to_pylist() if row["generator"] == "invokeai"
    ]


def test_half_local_half_ray_searches_as_one_and_runs_on_both_nodes(
    cluster: str, tmp_path: Path, model_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from photomapd.scale.engine import RayIndexRun, RayOptions

    # Start embedding once both actors are up: else the first one up may take all four batches of this small run.
    monkeypatch.setattr(ray.data.DataContext.get_current(), "wait_for_min_actors_s", int(RUN_S))

    folder = tmp_path / "images"
    make_album(folder, 8)
    _album("mixed", folder)
    store = Store(config.index_dir())
    first = asyncio.run(index_once(store, model_runner, ConfigStore(), "mixed", refresh_map=False))
    assert first.new == 8
    table = store.open("mixed")
    assert table is not None
    kept_id = {row["path"]: row["id"] for row in table.arrow(["id", "path"]).to_pylist()}[str(folder / "img_0003.png")]
    make_album(folder, 12, start_seed=8)  # the other half, new
    make_png(folder / "img_0003.png", seed=1003)  # and an edit: re-embedded, keeps its id
    run = RayIndexRun(
        ConfigStore().current.albums[0], table, model_runner, IdAllocator(table.max_id() + 1),
        options=RayOptions(address=cluster, embed_actors=2, chunk_rows=4),
    )  # fmt: skip
    result = run.run()
    assert (result.new, result.changed, result.unchanged, result.done) == (12, 1, 7, 13)
    assert len(run.nodes) == 2, "one embed actor per node"

    _album("reference", folder)
    asyncio.run(index_once(store, model_runner, ConfigStore(), "reference", refresh_map=False))
    mixed, reference = _rows(store, "mixed"), _rows(store, "reference")
    # Ids depend on the order files were first seen; everything else matches the all-local index.
    _assert_same_rows(mixed, reference, [column for column in COLUMNS if column != "id"])
    assert dict(zip(mixed.column("path").to_pylist(), mixed.column("id").to_pylist()))[
        str(folder / "img_0003.png")
    ] == kept_id
    mixed_table, reference_table = store.open("mixed"), store.open("reference")
    assert mixed_table is not None and reference_table is not None
    for probe in _vectors(reference)[[0, 10, 19]]:
        hits = [
            candidate.nearest(probe, limit=5, nprobes=1, refine_factor=1, columns=["path"], where=None)
            .column("path").to_pylist()
            for candidate in (mixed_table, reference_table)
        ]  # fmt: skip
        assert hits[0] == hits[1]


def _committed(watcher: Store, key: str) -> int:
    table = watcher.open(key)
    return table.count() if table is not None else 0


def test_killed_ray_job_keeps_finished_chunks_and_resumes(cluster: str, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    make_album(folder, 32)
    _album("big", folder)
    # The CLI as a user runs it, with 4-row chunks so the kill lands between commits.
    small_chunks = (
        "import sys; import photomapd.scale.engine as engine; engine.CHUNK_ROWS = 4; "
        "from photomapd.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    command = ["index", "big", "--engine", "ray", "--address", cluster, "--model", TEST_MODEL[0], "--pretrained",
               "none", "--no-map", "--quiet"]  # fmt: skip
    watcher = Store(config.index_dir(), read_only=True)
    proc = subprocess.Popen([sys.executable, "-c", small_chunks, *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + RUN_S
        while _committed(watcher, "big") == 0:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no chunk was committed in time"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = _committed(watcher, "big")
    assert 0 < kept < 32 and kept % 4 == 0, "whole chunks only"

    resumed = subprocess.run([*PHOTOMAPD, *command], capture_output=True, text=True, timeout=RUN_S, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{32 - kept} new" in resumed.stdout and f"{kept} unchanged" in resumed.stdout, resumed.stdout
    table = watcher.open("big")
    assert table is not None
    rows = table.arrow(["id", "path", "vector"])
    assert rows.num_rows == 32
    assert len(set(rows.column("id").to_pylist())) == len(set(rows.column("path").to_pylist())) == 32
    assert np.allclose(np.linalg.norm(_vectors(rows), axis=1), 1.0, atol=1e-3)


def test_engine_ray_without_ray_names_the_install_command(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    make_album(folder, 1)
    _album("plain", folder)
    no_ray = "import sys; sys.modules['ray'] = None; from photomapd.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", no_ray, "index", "plain", "--engine", "ray", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "photomapd: Indexing with --engine ray needs Ray: install it with pip install -e '.[scale]' (in the PhotoMap "
        "repo)"
    ]
    assert not (config.index_dir() / "plain.lance").exists(), "nothing was indexed"
