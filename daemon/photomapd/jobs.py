"""The daemon's index jobs: at most one run per album at a time, in a worker thread, with progress fanned out to
every SSE listener. Watcher change sets that arrive during a run are merged and run right after it."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

from photomapd.albums import find_album
from photomapd.config import ConfigStore
from photomapd.errors import AlbumNotFound, IndexBusy
from photomapd.indexer import IndexProgress, IndexRun
from photomapd.model_runner import ModelRunner
from photomapd.store import AlbumTable, Store

log = logging.getLogger(__name__)

AfterRun = Callable[[AlbumTable, IndexProgress], None]
SUBSCRIBER_QUEUE = 256  # events kept for a slow listener; older ones are dropped (the newest says it all)


class IndexJobs:
    def __init__(self, store: Store, runner: ModelRunner, config_store: ConfigStore, after_run: AfterRun | None) -> None:
        self.store = store
        self.runner = runner
        self.config_store = config_store
        self.after_run = after_run
        self._progress: dict[str, IndexProgress] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, threading.Event] = {}
        self._queued_paths: dict[str, set[str] | None] = {}  # None = a full update is queued
        self._subscribers: dict[str, set[asyncio.Queue[IndexProgress]]] = {}
        self._closing = False

    # --- state ------------------------------------------------------------------------------------------------------

    def progress(self, album_key: str) -> IndexProgress:
        return self._progress.get(album_key) or IndexProgress(album=album_key)

    def is_running(self, album_key: str) -> bool:
        task = self._tasks.get(album_key)
        return task is not None and not task.done()

    # --- starting runs ----------------------------------------------------------------------------------------------

    def start(self, album_key: str, mode: str = "update") -> IndexProgress:
        """Start an Update Index / Rebuild; refused while one runs (the panel shows that run's progress)."""
        find_album(self.config_store.current, album_key)
        if self.is_running(album_key):
            raise IndexBusy()
        self._launch(album_key, rebuild=(mode == "rebuild"), only_paths=None)
        return self.progress(album_key)

    def files_changed(self, album_key: str, paths: set[str] | None) -> None:
        """A watcher saw changes (None: something too broad for a path list, e.g. a folder moved)."""
        if self._closing:
            return
        if self.is_running(album_key):
            queued = self._queued_paths.get(album_key, set())
            self._queued_paths[album_key] = None if paths is None or queued is None else queued | paths
            return
        self._launch(album_key, rebuild=False, only_paths=paths)

    def _launch(self, album_key: str, rebuild: bool, only_paths: set[str] | None) -> None:
        album = find_album(self.config_store.current, album_key)
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def publish(progress: IndexProgress) -> None:
            loop.call_soon_threadsafe(self._publish, progress)

        run = IndexRun(
            album, self.store, self.runner, rebuild=rebuild, only_paths=only_paths, on_progress=publish, stop=stop,
            after_run=self.after_run,
        )
        self._stops[album_key] = stop
        self._progress[album_key] = run.progress.model_copy(update={"state": "running", "phase": "scanning"})
        self._tasks[album_key] = loop.create_task(self._run(album_key, run), name=f"index-{album_key}")

    async def _run(self, album_key: str, run: IndexRun) -> None:
        try:
            await asyncio.to_thread(run.run)
        finally:
            has_queued = album_key in self._queued_paths
            queued = self._queued_paths.pop(album_key, None)
            if has_queued and not self._closing and not run.stop.is_set():
                try:
                    self._launch(album_key, rebuild=False, only_paths=queued)
                except AlbumNotFound:  # removed while the run went on
                    log.debug("queued update for %s dropped", album_key)

    # --- progress fan-out -------------------------------------------------------------------------------------------

    def _publish(self, progress: IndexProgress) -> None:
        self._progress[progress.album] = progress
        for queue in list(self._subscribers.get(progress.album, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(progress)

    def subscribe(self, album_key: str) -> asyncio.Queue[IndexProgress]:
        queue: asyncio.Queue[IndexProgress] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        self._subscribers.setdefault(album_key, set()).add(queue)
        return queue

    def unsubscribe(self, album_key: str, queue: asyncio.Queue[IndexProgress]) -> None:
        self._subscribers.get(album_key, set()).discard(queue)

    # --- stopping ---------------------------------------------------------------------------------------------------

    async def cancel(self, album_key: str) -> None:
        """Stop after the batch in flight is committed (nothing half-written), and wait for it."""
        self._queued_paths.pop(album_key, None)
        stop = self._stops.get(album_key)
        if stop is not None:
            stop.set()
        task = self._tasks.get(album_key)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        self._closing = True
        for album_key in list(self._tasks):
            await self.cancel(album_key)
