"""Index runs: scan → diff → delete removed → decode (thread pool) overlapped with embed → commit in batches.

A run is synchronous and runs in a worker thread (the daemon's `IndexJobs` or the CLI). Each batch is one LanceDB
commit, so a killed process keeps every finished batch and the next run's diff skips them: resuming redoes at most
one batch. Files that can't be decoded are skipped with a reason and listed; they never abort the run.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, Field

from photomapd.config import AlbumConfig
from photomapd.model_runner import ModelRunner
from photomapd.errors import FolderUnavailable, PhotoMapError
from photomapd.scan import FileStat, IndexDiff, album_folder_of, diff_index, scan_folders, stat_paths
from photomapd.store import AlbumTable, Store, TableInfo

log = logging.getLogger(__name__)

BATCH_SIZE = 32  # images per forward pass and per commit: a kill loses at most this much work
LOOKAHEAD_BATCHES = 2  # decoded batches queued ahead of the model: keeps it busy, caps memory (~2×32×600 KB)
# One decoder per core (Pillow releases the GIL while decoding and resizing), capped at 8: on a 2-core CPU the model
# is the bottleneck and decoders only run ahead; with a GPU, decoding is the bottleneck, but on a 16-core H200 box 16
# decoders were slower than 8 (93 vs 137 img/s: the GIL-held parts of each decode start to queue).
DECODE_WORKERS = min(8, max(2, os.cpu_count() or 2))
OPTIMIZE_AFTER_ROWS = 1_000  # compact the table after large updates only (each batch adds a small fragment)
MAX_LISTED_SKIPS = 500  # the progress event lists this many skipped files; the count covers all
_INT64_MAX = 2**63 - 1

Phase = Literal["idle", "scanning", "removing", "loading_model", "embedding", "optimizing", "mapping", "done"]
State = Literal["idle", "running", "done", "failed", "cancelled"]


class SkippedFile(BaseModel):
    path: str
    reason: str


class IndexProgress(BaseModel):
    """One progress event; the CLI draws it as a bar, the panel receives it over SSE."""

    album: str
    mode: Literal["update", "rebuild"] = "update"
    state: State = "idle"
    phase: Phase = "idle"
    done: int = 0
    total: int = 0
    rate: float | None = None  # images per second during embedding
    eta_s: float | None = None
    new: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped_count: int = 0
    skipped: list[SkippedFile] = Field(default_factory=list)
    message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else 100.0 * self.done / self.total


ProgressFn = Callable[[IndexProgress], None]


def _seed_column(seed: Any) -> int | None:
    return seed if isinstance(seed, int) and 0 <= seed <= _INT64_MAX else None


def _utc_naive(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def metadata_columns(path: Path) -> dict[str, Any]:
    """The normalized metadata columns of a row (DESIGN §2); the parser never raises, whatever the file holds."""
    from photomapd.metadata import read_metadata

    meta = read_metadata(path)
    return {
        "generator": meta.generator,
        "app_version": meta.app_version,
        "created_at": _utc_naive(meta.created_at),
        "positive_prompt": meta.positive_prompt,
        "negative_prompt": meta.negative_prompt,
        "model": meta.model.name if meta.model else None,
        "seed": _seed_column(meta.seed),
        "loras": [lora.name for lora in meta.loras],
        "has_recallable": meta.recallable,
        "metadata_json": meta.model_dump_json(),
    }


class IndexRun:
    """One update or rebuild of one album."""

    def __init__(
        self,
        album: AlbumConfig,
        store: Store,
        runner: ModelRunner,
        *,
        rebuild: bool = False,
        only_paths: set[str] | None = None,
        on_progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        after_run: Callable[[AlbumTable, IndexProgress], None] | None = None,
    ) -> None:
        self.album = album
        self.store = store
        self.runner = runner
        self.rebuild = rebuild
        self.only_paths = only_paths  # a watcher's change set: stat just these instead of walking everything
        self.on_progress = on_progress or (lambda progress: None)
        self.stop = stop or threading.Event()
        self.after_run = after_run
        self.progress = IndexProgress(album=album.key, mode="rebuild" if rebuild else "update")

    # --- progress ---------------------------------------------------------------------------------------------------

    def _emit(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self.progress, name, value)
        self.on_progress(self.progress.model_copy(deep=True))

    def _skip(self, path: str, reason: str) -> None:
        self.progress.skipped_count += 1
        if len(self.progress.skipped) < MAX_LISTED_SKIPS:
            self.progress.skipped.append(SkippedFile(path=path, reason=reason))
        log.info("skipped %s: %s", path, reason)

    # --- the run ----------------------------------------------------------------------------------------------------

    def run(self) -> IndexProgress:
        self._emit(state="running", phase="scanning", started_at=time.time())
        try:
            table = self._run()
            if table is not None and self.after_run is not None and not self.stop.is_set():
                self._emit(phase="mapping")
                self._refresh_derived(table)
            state: State = "cancelled" if self.stop.is_set() else "done"
            self._emit(state=state, phase="done", finished_at=time.time(), eta_s=0.0 if state == "done" else None)
        except PhotoMapError as exc:  # a user-level problem (folder unplugged): its message says it all
            log.warning("index run for %s stopped: %s", self.album.key, exc.message)
            self._emit(state="failed", message=exc.message, finished_at=time.time())
        except Exception as exc:
            log.exception("index run for %s failed", self.album.key)
            self._emit(state="failed", message=f"{exc.__class__.__name__}: {exc}", finished_at=time.time())
        return self.progress

    def _refresh_derived(self, table: AlbumTable) -> None:
        """The map and the ANN index are derived from committed rows: if refreshing them fails, the index run still
        succeeded, and the next run (or Re-layout) tries again."""
        assert self.after_run is not None
        try:
            self.after_run(table, self.progress)
        except Exception as exc:
            log.exception("updating the map of %s failed", self.album.key)
            self.progress.message = f"Images indexed, but the map could not be updated: {exc.__class__.__name__}: {exc}"

    def _run(self) -> AlbumTable | None:
        existing = self.store.open(self.album.key)
        same_model = existing is not None and (existing.info.model, existing.info.pretrained) == self.runner.embedding_names
        embed_everything = existing is None or self.rebuild or not same_model
        if embed_everything and self.only_paths is not None:
            if existing is None:
                return None  # a watcher event on a never-indexed album waits for the first full index
            self.only_paths = None  # a model change re-embeds everything, which only a full scan can do
        missing = [folder for folder in self.album.folders if not os.path.isdir(folder)]
        if missing and (embed_everything or len(missing) == len(self.album.folders)):
            raise FolderUnavailable(missing[0])
        if self.only_paths is not None:
            scanned = list(stat_paths(self.only_paths, self.album.folders))
        else:
            scanned = list(scan_folders(self.album.folders))
        if embed_everything:
            diff = diff_index(scanned, {})
            table = self._open_new_table()
        else:
            assert existing is not None
            indexed = existing.stat_index()
            if missing:  # an unmounted drive is not a deletion: keep its rows until it is back
                kept = {path for path in indexed if album_folder_of(path, missing) is not None}
                indexed = {path: row for path, row in indexed.items() if path not in kept}
                self.progress.message = (
                    f"Folder {missing[0]} is not available; its {len(kept)} indexed images were kept"
                )
            scope = {str(Path(p).absolute()) for p in self.only_paths} if self.only_paths is not None else None
            diff = diff_index(scanned, indexed, scope=scope)
            table = existing
        self._emit(
            new=len(diff.new), changed=len(diff.changed), removed=len(diff.removed), unchanged=diff.unchanged,
            total=diff.to_embed,
        )
        if diff.removed:
            self._emit(phase="removing")
            table.delete_ids(diff.removed)
        if diff.to_embed:
            self._embed_and_commit(table, diff)
        if diff.to_embed + len(diff.removed) >= OPTIMIZE_AFTER_ROWS and not self.stop.is_set():
            self._emit(phase="optimizing")
            table.optimize()
        return table

    def _open_new_table(self) -> AlbumTable:
        self._emit(phase="loading_model")
        embedder = self.runner.call_sync(lambda e: e)
        model, pretrained = self.runner.embedding_names
        info = TableInfo(model=model, pretrained=pretrained, dim=embedder.dim)
        return self.store.open_for_indexing(self.album.key, info, rebuild=True)

    def _embed_and_commit(self, table: AlbumTable, diff: IndexDiff) -> None:
        self._emit(phase="loading_model")
        embedder = self.runner.call_sync(lambda e: e)
        next_id = table.max_id() + 1
        work: list[tuple[FileStat, int]] = list(diff.changed)
        for found in diff.new:
            work.append((found, next_id))
            next_id += 1
        self._emit(phase="embedding")
        started = time.monotonic()
        done = 0

        def decode(found: FileStat) -> tuple[Any, dict[str, Any]]:
            decoded = embedder.decode_file(Path(found.path))
            try:
                columns = metadata_columns(Path(found.path))
            except Exception:  # a parser bug must not drop the image from the index: keep it, without metadata
                log.exception("metadata parser failed on %s", found.path)
                columns = {}
            return decoded, columns

        batch: list[tuple[FileStat, int, Any, dict[str, Any]]] = []
        with ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="photomap-decode") as pool:
            queue: deque[tuple[FileStat, int, Future]] = deque()
            pending = iter(work)

            def top_up() -> None:
                while len(queue) < BATCH_SIZE * LOOKAHEAD_BATCHES:
                    item = next(pending, None)
                    if item is None:
                        return
                    queue.append((item[0], item[1], pool.submit(decode, item[0])))

            top_up()
            while queue and not self.stop.is_set():
                found, row_id, future = queue.popleft()
                top_up()
                try:
                    decoded, columns = future.result()
                    batch.append((found, row_id, decoded, columns))
                except Exception as exc:  # DecodeError, or anything a hostile file provokes: skip, never abort
                    reason = str(exc) if exc.__class__.__name__ == "DecodeError" else f"{exc.__class__.__name__}: {exc}"
                    self._skip(found.path, reason)
                    done += 1
                if len(batch) == BATCH_SIZE or (not queue and batch):
                    done += len(batch)
                    self._commit_batch(table, batch)
                    batch = []
                    elapsed = time.monotonic() - started
                    rate = done / elapsed if elapsed > 0 else None
                    eta = (self.progress.total - done) / rate if rate else None
                    self._emit(done=done, rate=rate, eta_s=eta)
            for _, _, future in queue:  # stopping: drop decodes not started yet
                future.cancel()
        if not self.stop.is_set():
            self._emit(done=self.progress.total)

    def _commit_batch(self, table: AlbumTable, batch: list[tuple[FileStat, int, Any, dict[str, Any]]]) -> None:
        vectors: np.ndarray = self.runner.call_sync(lambda e: e.encode_tensors([item[2].tensor for item in batch]))
        rows = [
            {
                "id": row_id,
                "path": found.path,
                "folder": found.folder,
                "mtime_ns": found.mtime_ns,
                "size": found.size,
                "width": decoded.width,
                "height": decoded.height,
                "vector": vector,
                "x": None,  # content changed or new: the map places it afresh
                "y": None,
                "cluster": None,
                **columns,
            }
            for (found, row_id, decoded, columns), vector in zip(batch, vectors)
        ]
        table.upsert(rows)


def describe(progress: IndexProgress) -> str:
    """One line summing up a finished run, for the CLI and logs."""
    parts = [f"{progress.new} new", f"{progress.changed} changed", f"{progress.removed} removed"]
    parts.append(f"{progress.unchanged} unchanged")
    if progress.skipped_count:
        parts.append(f"{progress.skipped_count} skipped")
    return ", ".join(parts)


def progress_json(progress: IndexProgress) -> str:
    return json.dumps(progress.model_dump(mode="json"))


def refresh_derived(table: AlbumTable, album_key: str, runner: ModelRunner) -> None:
    """After a run: the ANN index once the table is big enough, then the map (new rows placed, or a refit)."""
    from photomapd import mapview, search  # heavy (umap/numba) and only needed once there is work

    search.ensure_ann_index(table)

    def encode_text(texts: list[str]) -> np.ndarray:
        return runner.call_sync(lambda embedder: embedder.encode_texts(texts))

    mapview.refresh_map(table, album_key, encode_text=encode_text)
