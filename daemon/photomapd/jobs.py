"""`AlbumJobs`: the one owner of every album's work (DESIGN §10).

Index runs, watcher change sets, Re-layout, rebuilds and deletion go through one queue per album, so two writers
never touch one table: a second request for an album joins (or queues behind) the work under way. Row ids are
allocated here; the vector matrices and the map's placement model are cached here. Work runs on the owner's own
bounded thread pool ("photomap-job"), never on the default executor the API's short reads use, so an hour-long index
run can't starve a search.

The daemon holds one (an AppKey); the CLI builds the same object when no daemon runs, under the instance lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel

from photomapd import albums as album_rules
from photomapd import thumbs
from photomapd.config import AlbumConfig, ConfigStore
from photomapd.errors import InvokeAINotConfigured, NotIndexed, PhotoMapError, PrecisionMismatch
from photomapd.index.progress import IndexProgress
from photomapd.scale.engine import RayIndexRun, RayOptions
from photomapd.boards.run import BoardRun, RunnerModel, set_board_rows, set_starred_rows
from photomapd.index.run import IdAllocator, IndexRun
from photomapd.boards.watch import BoardWatchers
from photomapd.boards.source import ServerBoardSource, listing_signature, newest_signature
from photomapd.invokeai import credentials
from photomapd.invokeai.connection import InvokeAIConnection, target_from
from photomapd.map import layout
from photomapd.memory import let_unused_back_in, release_memory
from photomapd.model.runner import ModelRunner
from photomapd.search.vectors import VectorCache, ensure_ann_index
from photomapd.spawned import ChildProcess, in_this_process, stop_idle_tracker
from photomapd.store import AlbumTable, Store, TableInfo, album_key_of

log = logging.getLogger(__name__)

# Albums working at once: each run already overlaps decoding with the model thread, and the model thread is shared,
# so a third concurrent album would only queue at the model; two lets a relayout of one album overlap another's index.
JOB_WORKERS = 2
SUBSCRIBER_QUEUE = 256  # events kept for a slow listener; older ones are dropped (the newest says it all)
KEPT_RUN_RESULTS = 8  # finished runs whose result `finished` can still hand out, per album
Mode = Literal["update", "rebuild"]


class MapJob(BaseModel):
    """One re-layout's progress, as the relayout routes report it."""

    album: str
    state: Literal["queued", "running", "done", "failed", "cancelled"] = "queued"
    done: int = 0
    total: int = 0
    layout_version: int | None = None  # the new layout's, once done
    message: str | None = None
    started_at: float
    finished_at: float | None = None


class _Stopped(Exception):
    """Raised from a map progress callback so a layout stops between chunks when asked to."""


@dataclass
class _IndexWork:
    mode: Mode
    paths: set[str] | None  # a watcher's change set; None = scan everything
    progress: IndexProgress
    done: asyncio.Future[IndexProgress]
    ray: RayOptions | None = None  # embed on a Ray cluster (`--engine ray`); None = this machine's pipeline

    def merge(self, mode: Mode, paths: set[str] | None, ray: RayOptions | None = None) -> None:
        if mode == "rebuild":
            self.mode, self.progress.mode = "rebuild", "rebuild"
        self.paths = None if paths is None or self.paths is None else self.paths | paths
        if ray is not None:  # whoever asked for the cluster gets it: a watcher's join must not undo that
            self.ray = ray


@dataclass
class _Album:
    """The owner's state for one album."""

    key: str
    progress: IndexProgress
    pending_index: _IndexWork | None = None
    active_index: _IndexWork | None = None  # taken off the queue, running (its first event may not be out yet)
    pending_relayout: MapJob | None = None
    relayout: MapJob | None = None  # the latest, for GET …/map/relayout
    drain: asyncio.Task[None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)  # of the work running now
    ids: IdAllocator | None = None
    next_run_id: int = 1
    subscribers: set[asyncio.Queue[IndexProgress]] = field(default_factory=set)
    runs: dict[int, asyncio.Future[IndexProgress]] = field(default_factory=dict)  # by run id: queued, running, recent
    needs_check: bool = False  # check (and repair) the table before any other work: queued once at start-up
    resume: Mode | None = None  # the run a killed daemon left unfinished, queued after the check


def drop_album_data(store: Store, album_key: str) -> None:
    """The one deletion path for everything derived from an album's images (tables, map files, thumbnails); the
    image files themselves are never touched. Blocking."""
    store.drop(album_key)
    layout.drop_map(album_key)
    thumbs.forget_album(album_key)


class AlbumJobs:
    def __init__(
        self, store: Store, runner: ModelRunner, config_store: ConfigStore, *, refresh_map: bool = True,
        invokeai: InvokeAIConnection | None = None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.config_store = config_store
        self.invokeai = invokeai  # board albums' server (the daemon's one connection); None: no board albums here
        # Board albums' live pollers: a change on the server queues a sync like a folder watcher's change set.
        self.board_watchers = BoardWatchers(
            self._board_probe, self._board_signature, lambda key: self.files_changed(key, None), self.pause
        )
        self.refresh_map = refresh_map  # the CLI's --no-map turns the post-run map update off
        self.vectors = VectorCache(on_damage=self._vectors_damaged)
        self.reducers = layout.ReducerCache()
        self._pool = ThreadPoolExecutor(max_workers=JOB_WORKERS, thread_name_prefix="photomap-job")
        self._albums: dict[str, _Album] = {}
        self._closing = False
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # built outside a loop: damage reports then wait for the next start-up check
            self._loop = None

    def _album(self, album_key: str) -> _Album:
        state = self._albums.get(album_key)
        if state is None:
            state = self._albums[album_key] = _Album(album_key, IndexProgress(album=album_key))
        return state

    # --- state ------------------------------------------------------------------------------------------------------

    def progress(self, album_key: str) -> IndexProgress:
        """The album's latest progress: the run under way (or, before its first event is out, the run taken off
        the queue), else a queued run, else the last run's final state."""
        state = self._album(album_key)
        active, pending = state.active_index, state.pending_index
        if active is not None and state.progress.run_id != active.progress.run_id:
            return active.progress.model_copy()
        if active is None and pending is not None:
            return pending.progress.model_copy()
        return state.progress

    def is_running(self, album_key: str) -> bool:
        """Is an index run going or queued for the album?"""
        state = self._albums.get(album_key)
        return state is not None and (state.active_index is not None or state.pending_index is not None)

    def relayout_job(self, album_key: str) -> MapJob | None:
        state = self._albums.get(album_key)
        return None if state is None else state.pending_relayout or state.relayout

    # --- requests ---------------------------------------------------------------------------------------------------

    def request_index(
        self, album_key: str, mode: Mode = "update", paths: set[str] | None = None, *, ray: RayOptions | None = None
    ) -> IndexProgress:
        """Queue an Update Index / Rebuild (or a watcher's change set); joins a run already queued. Returns the
        queued run's progress, whose `run_id` the caller can follow on the progress stream. `ray`: embed on a Ray
        cluster (scale/engine.py) instead of this machine's pipeline."""
        album_rules.find_album(self.config_store.current, album_key)
        return self._queue_index(album_key, mode, paths, ray).progress.model_copy()

    async def run_index(self, album_key: str, mode: Mode = "update", *, ray: RayOptions | None = None) -> IndexProgress:
        """Queue a run and wait for it to end (the CLI without a daemon, tests)."""
        album_rules.find_album(self.config_store.current, album_key)
        return await asyncio.shield(self._queue_index(album_key, mode, None, ray).done)

    async def finished(self, album_key: str, run_id: int) -> IndexProgress:
        """Wait for run `run_id` of the album (queued, running or just ended) to end."""
        future = self._album(album_key).runs.get(run_id)
        if future is None:
            raise KeyError(f"no run {run_id} of {album_key}")
        return await asyncio.shield(future)

    def files_changed(self, album_key: str, paths: set[str] | None) -> None:
        """A watcher saw changes (None: something too broad for a path list, e.g. a folder moved)."""
        if self._closing or not any(album.key == album_key for album in self.config_store.current.albums):
            return
        self._queue_index(album_key, "update", paths)

    def _queue_index(
        self, album_key: str, mode: Mode, paths: set[str] | None, ray: RayOptions | None = None
    ) -> _IndexWork:
        state = self._album(album_key)
        if state.pending_index is not None:
            state.pending_index.merge(mode, paths, ray)
        else:
            run_id, state.next_run_id = state.next_run_id, state.next_run_id + 1
            progress = IndexProgress(album=album_key, run_id=run_id, mode=mode, state="queued", phase="queued")
            future: asyncio.Future[IndexProgress] = asyncio.get_running_loop().create_future()
            state.pending_index = _IndexWork(mode, paths, progress, future, ray)
            state.runs[run_id] = future
            for old in sorted(state.runs)[:-KEPT_RUN_RESULTS]:
                if state.runs[old].done():
                    del state.runs[old]
        self._ensure_draining(state)
        return state.pending_index

    def request_relayout(self, album_key: str) -> MapJob:
        """Queue a full refit of the album's map (after any index run ahead of it); a second request joins it."""
        album_rules.find_album(self.config_store.current, album_key)
        state = self._album(album_key)
        if state.relayout is not None and state.relayout.state == "running":
            return state.relayout
        if state.pending_relayout is None:
            state.pending_relayout = MapJob(album=album_key, started_at=time.time())
        self._ensure_draining(state)
        return state.pending_relayout

    async def wait_relayout(self, album_key: str) -> MapJob | None:
        state = self._albums.get(album_key)
        while state is not None and state.drain is not None and not state.drain.done():
            await asyncio.shield(state.drain)
        return self.relayout_job(album_key)

    def resume_interrupted(self) -> None:
        """At start-up: queue a check of every album's table (repairing what an older version broke) and the runs a
        killed daemon left unfinished; both go through the albums' queues like any other work."""
        interrupted = self.store.interrupted_runs()
        for album in self.config_store.current.albums:
            state = self._album(album.key)
            state.needs_check, state.resume = True, interrupted.get(album.key)
            self._ensure_draining(state)

    def _vectors_damaged(self, table_name: str) -> None:
        """A search found vectors that are not finite (a damaged data file): repair the table, which drops those
        rows, and the update that follows embeds their files again. Called from a read thread."""
        if self._loop is not None and not self._closing:
            self._loop.call_soon_threadsafe(self._queue_check, album_key_of(table_name))

    def _queue_check(self, album_key: str) -> None:
        if any(album.key == album_key for album in self.config_store.current.albums):
            state = self._album(album_key)
            state.needs_check = True
            self._ensure_draining(state)

    def _check(self, state: _Album) -> bool:
        """Orphaned tables dropped, invariants repaired; True when rows were changed (then an update follows)."""
        self.store.drop_orphans()
        table = self.store.open(state.key)
        if table is None:
            return False
        repaired = table.repair().changed
        table.ensure_fts_index()  # a table made before prompts were indexed gains its keyword index here
        release_memory()  # the check read every vector once (~100 MB of Arrow buffers at 20k rows): give it back
        return repaired

    # --- progress fan-out -------------------------------------------------------------------------------------------

    def _publish(self, progress: IndexProgress) -> None:
        state = self._album(progress.album)
        state.progress = progress
        for queue in list(state.subscribers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(progress)

    def subscribe(self, album_key: str) -> asyncio.Queue[IndexProgress]:
        queue: asyncio.Queue[IndexProgress] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        self._album(album_key).subscribers.add(queue)
        return queue

    def unsubscribe(self, album_key: str, queue: asyncio.Queue[IndexProgress]) -> None:
        self._album(album_key).subscribers.discard(queue)

    # --- the per-album queue ----------------------------------------------------------------------------------------

    def _ensure_draining(self, state: _Album) -> None:
        if self._closing:
            return
        if state.drain is None or state.drain.done():
            state.drain = asyncio.get_running_loop().create_task(self._drain(state), name=f"album-{state.key}")

    async def _drain(self, state: _Album) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            if state.needs_check:
                state.needs_check = False
                repaired = await loop.run_in_executor(self._pool, self._check, state)
                if state.resume is not None or repaired:
                    log.info("resuming the %s run of %s", state.resume or "update", state.key)
                    self._queue_index(state.key, state.resume or "update", None)
                state.resume = None
            elif state.pending_index is not None:
                work, state.pending_index, state.active_index = state.pending_index, None, state.pending_index
                state.stop = threading.Event()
                try:
                    result = await loop.run_in_executor(self._pool, self._run_index, state, work, loop)
                finally:
                    state.active_index = None
                if not work.done.done():
                    work.done.set_result(result)
            elif state.pending_relayout is not None:
                job, state.pending_relayout = state.pending_relayout, None
                state.relayout, state.stop = job, threading.Event()
                await loop.run_in_executor(self._pool, self._run_relayout, state, job)
            else:
                return

    # --- index runs (on a job thread) -------------------------------------------------------------------------------

    def _ids(self, state: _Album) -> IdAllocator:
        if state.ids is None:
            tables = [self.store.open(state.key), self.store.open_staging(state.key)]
            state.ids = IdAllocator(max((table.max_id() for table in tables if table is not None), default=0) + 1)
        return state.ids

    def _run_index(self, state: _Album, work: _IndexWork, loop: asyncio.AbstractEventLoop) -> IndexProgress:
        progress = work.progress

        def publish(update: IndexProgress) -> None:
            loop.call_soon_threadsafe(self._publish, update)

        def emit(**changes: object) -> None:
            for name, value in changes.items():
                setattr(progress, name, value)
            publish(progress.model_copy(deep=True))

        emit(state="running", phase="scanning", started_at=time.time())
        is_replacement = False
        try:
            album = album_rules.find_album(self.config_store.current, state.key)
            live = self.store.open(state.key)
            if live is None and work.paths is not None:
                emit(state="done", phase="done", finished_at=time.time())  # a watcher event waits for a first index
                return progress
            is_replacement = live is not None and (
                work.mode == "rebuild" or not live.info.is_made_by(self.runner.embedding_names)
            )
            self.store.mark_interrupted(state.key, "rebuild" if is_replacement else "update")
            if live is None:
                emit(phase="loading_model")
                table = self.store.create(state.key, self._table_info())
            elif is_replacement:
                emit(phase="loading_model")
                table = self.store.staging(state.key, self._table_info())
            else:
                table = live
            known_ids = {path: row.id for path, row in live.stat_index().items()} if is_replacement and live else {}
            run: IndexRun | BoardRun
            if album.is_board_album:  # its images come through InvokeAI's API (boards/run.py), never the disk
                run = self._board_run(album, table, state, known_ids, progress, publish, loop)
            else:
                # A rebuild writes new rows into a staging table: the live table's local favourites go with them.
                starred = {row["id"] for row in live.where("starred", ["id"])} if is_replacement and live else None
                engine = IndexRun if work.ray is None else partial(RayIndexRun, options=work.ray)
                run = engine(
                    album, table, self.runner, self._ids(state), is_replacement=is_replacement, known_ids=known_ids,
                    known_starred=starred, only_paths=work.paths, progress=progress, on_progress=publish,
                    stop=state.stop,
                )  # fmt: skip
            run.run()
            if state.stop.is_set():
                self._end_stopped(state, is_replacement)
                emit(state="cancelled", phase="done", finished_at=time.time())
                return progress
            if is_replacement:
                emit(phase="swapping")
                table = self.store.swap_in_staging(state.key)
                self.vectors.forget_album(state.key)
            emit(phase="optimizing")
            table.tidy()
            table.ensure_scalar_indexes()
            self.store.mark_interrupted(state.key, None)
            if self.refresh_map:
                emit(phase="mapping")
                self._refresh_derived(table, state.key, progress)
            emit(state="done", phase="done", finished_at=time.time(), eta_s=0.0)
        except PhotoMapError as exc:  # a user-level problem (folder unplugged, album removed): its message says it all
            log.warning("index run for %s stopped: %s", state.key, exc.message)
            self._end_failed(state)
            emit(state="failed", message=exc.message, finished_at=time.time())
        except Exception as exc:
            log.exception("index run for %s failed", state.key)
            self._end_failed(state)
            emit(state="failed", message=f"{exc.__class__.__name__}: {exc}", finished_at=time.time())
        return progress

    def _board_run(
        self, album: AlbumConfig, table: AlbumTable, state: _Album, known_ids: dict[str, int],
        progress: IndexProgress, publish: Callable[[IndexProgress], None], loop: asyncio.AbstractEventLoop,
    ) -> BoardRun:  # fmt: skip
        if self.invokeai is None:
            raise InvokeAINotConfigured()
        source = ServerBoardSource(self.invokeai, album.boards, loop)
        model = RunnerModel(self.runner)
        precision = self.runner.call_sync(lambda process: process.precision)
        if precision != table.info.precision:  # int8 and fp32 vectors differ a little: never mix them
            raise PrecisionMismatch(table.info.precision, precision)
        return BoardRun(
            album, table, source, model, self._ids(state).take, known_ids=known_ids,
            progress=progress, on_progress=publish, stop=state.stop,
        )  # fmt: skip

    # --- stars and boards on rows (the owner writes every table) -----------------------------------------------------

    async def set_starred(self, album_key: str, ids: list[int], starred: bool) -> int:
        """Record stars on rows (after the server agreed, for a board album). A small column write, run at once on the
        owner's pool rather than queued behind an hour-long index run; LanceDB commits it between that run's batches,
        and a board sync that listed before it is corrected by the next one (the server is the truth)."""
        table = self.store.open(album_key)
        if table is None:
            raise NotIndexed()
        return await asyncio.get_running_loop().run_in_executor(self._pool, set_starred_rows, table, ids, starred)

    async def set_board(self, album_key: str, ids: list[int], board_id: str) -> None:
        table = self.store.open(album_key)
        if table is None:
            raise NotIndexed()
        await asyncio.get_running_loop().run_in_executor(self._pool, set_board_rows, table, ids, board_id)

    async def _board_probe(self, boards: list[str]) -> object:
        if self.invokeai is None:
            raise InvokeAINotConfigured()
        return await newest_signature(self.invokeai, boards)

    async def _board_signature(self, boards: list[str]) -> object:
        if self.invokeai is None:
            raise InvokeAINotConfigured()
        return await listing_signature(self.invokeai, boards)

    def pause(self, album_key: str, message: str) -> None:
        """A board album's server went away: say so on its progress (the panel shows the message) until it is back
        and the poller queues the sync that resumes it."""
        if self._closing or self.is_running(album_key):
            return
        current = self._album(album_key).progress
        if current.state == "failed" and current.message == message:
            return
        self._publish(current.model_copy(update={"state": "failed", "phase": "done", "message": message,
                                                  "finished_at": time.time()}))  # fmt: skip

    def _table_info(self) -> TableInfo:
        dim, precision = self.runner.call_sync(lambda model: (model.dim, model.precision))
        model, pretrained = self.runner.embedding_names
        return TableInfo(model=model, pretrained=pretrained, dim=dim, precision=precision)

    def _end_stopped(self, state: _Album, is_replacement: bool) -> None:
        """A daemon shutting down keeps the run marked interrupted (the next start resumes it, staging table and
        all); a user's Cancel ends it: a cancelled rebuild's staging table goes, committed updates stay."""
        if self._closing:
            return
        self.store.mark_interrupted(state.key, None)
        if is_replacement:
            self.store.drop_staging(state.key)

    def _end_failed(self, state: _Album) -> None:
        # Not resumed at the next start: the same failure would come back at every start. Update Index retries.
        try:
            self.store.mark_interrupted(state.key, None)
        except Exception:
            log.warning("could not clear the interrupted mark of %s", state.key, exc_info=True)
        albums = self.config_store.current.albums
        if self._loop is not None and any(album.key == state.key and album.is_board_album for album in albums):
            # Its poller saw the change that queued this run: without this it would wait for the next change.
            self._loop.call_soon_threadsafe(self.board_watchers.retry, state.key)

    def rest(self) -> None:
        """The daemon has been idle (its model process just stopped): drop the albums' vector matrices, which the
        next search reads again (~0.3 s for 20k rows), and hand the freed memory back, so a resting daemon holds
        little more than its code. Thread-safe: the caches take their own locks."""
        self.vectors.clear()
        release_memory()
        stop_idle_tracker()

    def _map_compute(self) -> AbstractContextManager[layout.Compute]:
        """A daemon that rests light (its model unloads when idle) also fits maps in a child process, started only
        if a full layout is needed and gone when it is done, so umap-learn and scikit-learn never stay resident."""
        if self.runner.idle_unload_s > 0:
            return ChildProcess()
        let_unused_back_in()  # umap-learn imports pandas
        return nullcontext(in_this_process)

    def _encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return self.runner.call_sync(lambda model, batch: model.encode_texts(batch), list(texts))

    def _refresh_derived(self, table: AlbumTable, album_key: str, progress: IndexProgress) -> None:
        """The ANN index and the map are derived from committed rows: if refreshing them fails, the index run still
        succeeded, and the next run (or Re-layout) tries again."""
        try:
            ensure_ann_index(table)
            with self._map_compute() as compute:
                layout.refresh_map(
                    table, album_key, encode_text=self._encode_text, reducers=self.reducers, compute=compute
                )
        except Exception as exc:
            log.exception("updating the map of %s failed", album_key)
            progress.message = f"Images indexed, but the map could not be updated: {exc.__class__.__name__}: {exc}"

    # --- re-layout (on a job thread) --------------------------------------------------------------------------------

    def _run_relayout(self, state: _Album, job: MapJob) -> None:
        stop = state.stop

        def report(done: int, total: int) -> None:  # plain attribute writes, read by the relayout route
            if stop.is_set():
                raise _Stopped()
            job.done, job.total = done, total

        job.state = "running"
        try:
            table = self.store.open(state.key)
            if table is None:
                raise NotIndexed()
            with self._map_compute() as compute:
                result = layout.refresh_map(
                    table, state.key, force_refit=True, progress=report, encode_text=self._encode_text,
                    reducers=self.reducers, compute=compute,
                )  # fmt: skip
            job.state, job.layout_version = "done", result.layout_version
        except _Stopped:
            job.state = "cancelled"
        except Exception as exc:  # reported on the job; the daemon keeps serving the old layout
            log.exception("re-layout of %s failed", state.key)
            job.state, job.message = "failed", getattr(exc, "message", None) or f"{exc.__class__.__name__}: {exc}"
        finally:
            job.finished_at = time.time()

    # --- stopping and deleting --------------------------------------------------------------------------------------

    async def cancel(self, album_key: str) -> None:
        """Drop the album's queued work and stop what runs after the batch in flight is committed (nothing
        half-written); wait for it."""
        state = self._albums.get(album_key)
        if state is None:
            return
        pending, state.pending_index, state.pending_relayout = state.pending_index, None, None
        if pending is not None and not pending.done.done():
            pending.progress.state, pending.progress.phase = "cancelled", "done"
            pending.done.set_result(pending.progress)
            self._publish(pending.progress.model_copy())  # a CLI following that run id learns it won't run
        state.stop.set()
        if state.drain is not None:
            await asyncio.gather(state.drain, return_exceptions=True)

    async def cancel_index(self, album_key: str) -> IndexProgress:
        """The panel's Cancel: drop the queued run and stop the running one once its batch in flight is committed
        (committed batches stay; a cancelled rebuild leaves the old index). Returns the stopped run's final progress,
        or the latest state when no run was queued or running. A re-layout in progress is left alone."""
        album_rules.find_album(self.config_store.current, album_key)
        state = self._album(album_key)
        pending, state.pending_index = state.pending_index, None
        if pending is not None and not pending.done.done():
            pending.progress.state, pending.progress.phase = "cancelled", "done"
            pending.progress.finished_at = time.time()
            pending.done.set_result(pending.progress)
            self._publish(pending.progress.model_copy())  # a CLI following that run id learns it won't run
        active = state.active_index
        if active is not None:
            state.stop.set()  # the run's own Event: the drain makes a fresh one for the next work
            return (await asyncio.shield(active.done)).model_copy()
        return pending.progress.model_copy() if pending is not None else self.progress(album_key)

    async def delete_album(self, album_key: str) -> None:
        """Remove the album from the config and drop everything derived from it, after its work has stopped."""
        album_rules.find_album(self.config_store.current, album_key)
        await self.cancel(album_key)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, album_rules.remove_album, self.config_store, album_key)
        await loop.run_in_executor(self._pool, drop_album_data, self.store, album_key)
        self.vectors.forget_album(album_key)
        self._albums.pop(album_key, None)

    async def close(self) -> None:
        """Stop every album's work after its batch in flight; interrupted runs resume at the next start."""
        self._closing = True
        await self.board_watchers.close()
        for album_key in list(self._albums):
            state = self._albums[album_key]
            state.stop.set()
        drains = [state.drain for state in self._albums.values() if state.drain is not None]
        await asyncio.gather(*drains, return_exceptions=True)
        for state in self._albums.values():
            if state.pending_index is not None and not state.pending_index.done.done():
                state.pending_index.done.cancel()
        self._pool.shutdown(wait=True)



async def index_once(
    store: Store,
    runner: ModelRunner,
    config_store: ConfigStore,
    album_key: str,
    mode: Mode = "update",
    *,
    on_progress: Callable[[IndexProgress], None] | None = None,
    refresh_map: bool = True,
    ray: RayOptions | None = None,
) -> IndexProgress:
    """One run through a fresh owner, for a process with no daemon (the CLI under the instance lock, benchmarks):
    `on_progress` sees every event, in order, on the event loop. Cancelling this stops the run after the batch in
    flight is committed. `ray`: embed on a Ray cluster."""
    # A board album reads the InvokeAI set in Settings, logged in as the daemon would be.
    invokeai = InvokeAIConnection()
    password = await asyncio.get_running_loop().run_in_executor(None, credentials.load_password)
    await invokeai.configure(target_from(config_store.current, password))
    jobs = AlbumJobs(store, runner, config_store, refresh_map=refresh_map, invokeai=invokeai)
    updates = jobs.subscribe(album_key)
    report = on_progress or (lambda progress: None)

    async def relay() -> None:
        while True:
            report(await updates.get())

    relaying = asyncio.create_task(relay())
    try:
        return await jobs.run_index(album_key, mode, ray=ray)
    finally:
        relaying.cancel()
        while not updates.empty():  # the last events were published just before the run's result
            report(updates.get_nowait())
        await jobs.close()
        await invokeai.aclose()
