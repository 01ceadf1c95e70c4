"""A `kill -9` in the middle of indexing (a real subprocess) leaves a consistent table, and the next run resumes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from photomapd import config
from photomapd.albums import AlbumCreate, add_album
from photomapd.config import ConfigStore
from photomapd.index.progress import IndexProgress
from photomapd.index.run import BATCH_SIZE
from photomapd.jobs import AlbumJobs
from photomapd.store import Store

from tests.daemon.images import make_album

IMAGE_COUNT = BATCH_SIZE * 4


async def _update(store: Store, runner: Any) -> IndexProgress:
    jobs = AlbumJobs(store, runner, ConfigStore(), refresh_map=False)
    try:
        return await jobs.run_index("big")
    finally:
        await jobs.close()


def _committed_rows(store: Store) -> int:
    table = store.open("big")
    return table.count() if table is not None else 0


def test_kill_minus_nine_mid_index_then_resume(tmp_path: Path, model_runner: Any) -> None:
    folder = tmp_path / "images"
    make_album(folder, IMAGE_COUNT)
    add_album(ConfigStore(), AlbumCreate(key="big", display_name="Big", folders=[str(folder)]))
    watcher = Store(config.index_dir(), read_only=True)  # follows the other process's commits

    proc = subprocess.Popen(
        [sys.executable, "-m", "photomapd", "index", "big", "--model", "ViT-B-32", "--pretrained", "none", "--no-map", "--quiet"],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while _committed_rows(watcher) == 0:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "index exited early"
            assert time.monotonic() < deadline, "no batch was committed in time"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    committed = _committed_rows(watcher)
    store = Store(config.index_dir())
    assert 0 < committed < IMAGE_COUNT, "the kill should land mid-run"
    assert committed % BATCH_SIZE == 0, "only whole batches are ever committed"

    progress = asyncio.run(_update(store, model_runner))

    assert progress.state == "done", progress.message
    assert progress.new == IMAGE_COUNT - committed, "committed work is not redone"
    table = store.open("big")
    assert table is not None
    rows = table.where(None, ["id", "path"])
    assert len(rows) == IMAGE_COUNT
    assert len({r["path"] for r in rows}) == IMAGE_COUNT
    assert len({r["id"] for r in rows}) == IMAGE_COUNT
    assert {r["path"] for r in rows} == {str(p) for p in folder.iterdir()}
