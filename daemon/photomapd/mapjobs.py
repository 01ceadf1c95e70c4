"""Re-layout jobs: a full map refit per album, run in a worker thread, with progress the API reports.

At most one job per album; the owner (the app, via a cleanup context) stops them at shutdown between chunks.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Literal, Sequence

import numpy as np
from pydantic import BaseModel

from photomapd.mapview import TextEncoder, refresh_map
from photomapd.model_runner import ModelRunner
from photomapd.store import AlbumTable

log = logging.getLogger(__name__)


class MapJob(BaseModel):
    """One re-layout's progress, as the relayout routes report it."""

    album: str
    state: Literal["running", "done", "failed", "cancelled"] = "running"
    done: int = 0
    total: int = 0
    layout_version: int | None = None  # the new layout's, once done
    message: str | None = None
    started_at: float
    finished_at: float | None = None


class _Stopped(Exception):
    """Raised from the progress callback so a layout between chunks stops when the daemon does."""


class MapJobs:
    """The app's re-layout jobs: at most one per album; kept so shutdown can stop and await them."""

    def __init__(self) -> None:
        self.jobs: dict[str, MapJob] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = threading.Event()

    def start(self, table: AlbumTable, album_key: str, runner: ModelRunner | None) -> MapJob:
        running = self._tasks.get(album_key)
        if running is not None and not running.done():
            return self.jobs[album_key]  # a second click joins the job already under way
        job = MapJob(album=album_key, started_at=time.time())
        self.jobs[album_key] = job
        self._tasks[album_key] = asyncio.create_task(self._run(table, job, runner), name=f"relayout-{album_key}")
        return job

    async def wait(self, album_key: str) -> MapJob | None:
        task = self._tasks.get(album_key)
        if task is not None:
            await asyncio.shield(task)
        return self.jobs.get(album_key)

    async def _run(self, table: AlbumTable, job: MapJob, runner: ModelRunner | None) -> None:
        def progress(done: int, total: int) -> None:  # runs in the worker thread; plain attribute writes
            if self._stop.is_set():
                raise _Stopped()
            job.done, job.total = done, total

        encode_text: TextEncoder | None = None
        if runner is not None:  # zero-shot labels for prompt-less clusters, on the model's own thread
            model = runner

            def encode_text(texts: Sequence[str]) -> np.ndarray:
                return model.call_sync(lambda embedder, batch: embedder.encode_texts(batch), list(texts))

        try:
            result = await asyncio.to_thread(
                refresh_map, table, job.album, force_refit=True, progress=progress, encode_text=encode_text
            )
            job.state, job.layout_version = "done", result.layout_version
        except _Stopped:
            job.state = "cancelled"
        except Exception as exc:  # reported on the job; the daemon keeps serving the old layout
            log.exception("re-layout of %s failed", job.album)
            job.state, job.message = "failed", getattr(exc, "message", None) or f"{exc.__class__.__name__}: {exc}"
        finally:
            job.finished_at = time.time()

    async def close(self) -> None:
        self._stop.set()
        tasks = [task for task in self._tasks.values() if not task.done()]
        # A UMAP fit itself cannot be interrupted; the next chunk boundary stops it, so shutdown waits that long.
        await asyncio.gather(*tasks, return_exceptions=True)
