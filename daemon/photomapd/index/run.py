"""Index runs: scan → diff → delete removed → decode (thread pool) overlapped with embed → commit in batches.

A run is synchronous and runs on a worker thread of the album's owner (`jobs.AlbumJobs`), which chooses the table it
writes (the live one, or a staging table for a rebuild or a model change) and hands out row ids. Each batch is one
LanceDB commit, so a killed process keeps every finished batch and the next run's diff skips them: resuming redoes
at most one batch. Files that can't be decoded are skipped with a reason and listed; they never abort the run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from photomapd.config import AlbumConfig
from photomapd.model.runner import ModelRunner
from photomapd.errors import FolderUnavailable, ImageUnreadable, PrecisionMismatch
from photomapd.index.progress import IndexProgress, ProgressFn, ReportsProgress
from photomapd.index.sources import decode_for_embedding
from photomapd.index.scan import FileStat, IndexDiff, album_folder_of, diff_index, scan_folders, stat_paths
from photomapd.store import AlbumTable

if TYPE_CHECKING:
    from photomapd.metadata.model import ImageMetadata

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

BATCH_SIZE = 32  # images per forward pass and per commit: a kill loses at most this much work
LOOKAHEAD_BATCHES = 2  # decoded batches queued ahead of the model: keeps it busy, caps memory (~2×32×600 KB)
# One decoder per core (Pillow releases the GIL while decoding and resizing), capped at 8: on a 2-core CPU the model
# is the bottleneck and decoders only run ahead; with a GPU, decoding is the bottleneck, but on a 16-core H200 box 16
# decoders were slower than 8 (93 vs 137 img/s: the GIL-held parts of each decode start to queue).
DECODE_WORKERS = min(8, max(2, os.cpu_count() or 2))
# Each batch adds a small fragment and a scan reads every fragment, so a long first index compacts as it goes (every
# ~1,600 rows); after the run the owner's `tidy` prunes old versions and compacts what is left once it is worth it.
COMPACT_EVERY_BATCHES = 50
_INT64_MAX = 2**63 - 1



def _seed_column(seed: Any) -> int | None:
    return seed if isinstance(seed, int) and 0 <= seed <= _INT64_MAX else None


def _utc_naive(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def columns_from_metadata(meta: ImageMetadata) -> dict[str, Any]:
    """The normalized metadata columns of a row (DESIGN §2), whether the bytes came from a file or InvokeAI's API."""
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


def metadata_columns(path: Path) -> dict[str, Any]:
    """A file's metadata columns; the parser never raises, whatever the file holds."""
    from photomapd.metadata import read_metadata

    return columns_from_metadata(read_metadata(path))


def work_list(diff: IndexDiff, ids: IdAllocator, known_ids: Mapping[str, int]) -> list[tuple[FileStat, int]]:
    """Files to embed with the row id each gets: changed files keep theirs, new ones keep a rebuild's old id or
    take fresh ones, in the diff's order (so both engines give one album the same ids)."""
    work: list[tuple[FileStat, int]] = list(diff.changed)
    fresh = iter(ids.take(sum(1 for found in diff.new if found.path not in known_ids)))
    for found in diff.new:
        known = known_ids.get(found.path)
        work.append((found, known if known is not None else next(fresh)))
    return work


def read_columns(path: str) -> dict[str, Any]:
    """The metadata columns; a parser bug must not drop the image from the index: keep it, without metadata."""
    try:
        return metadata_columns(Path(path))
    except Exception:
        log.exception("metadata parser failed on %s", path)
        return {}


def image_row(
    found: FileStat, row_id: int, width: int, height: int, vector: np.ndarray, columns: Mapping[str, Any]
) -> dict[str, Any]:
    """One table row for an embedded file."""
    return {
        "id": row_id,
        "path": found.path,
        "folder": found.folder,
        "mtime_ns": found.mtime_ns,
        "size": found.size,
        "width": width,
        "height": height,
        "vector": vector,
        "x": None,  # content changed or new: the map places it afresh
        "y": None,
        "cluster": None,
        **columns,
    }


def prefetched(
    pool: Executor, items: Iterable[T], work: Callable[[T], R], stop: threading.Event, ahead: int
) -> Iterator[tuple[T, Future[R]]]:
    """`(item, future of work(item))` in order, with up to `ahead` calls running or queued in `pool` ahead of the
    consumer: the decoders stay busy while the model works, and memory stays bounded. Stops early once `stop` is
    set; calls not started by then are cancelled."""
    queue: deque[tuple[T, Future[R]]] = deque()
    pending = iter(items)

    def top_up() -> None:
        while len(queue) < ahead:
            item = next(pending, None)
            if item is None:
                return
            queue.append((item, pool.submit(work, item)))

    top_up()
    try:
        while queue and not stop.is_set():
            item, future = queue.popleft()
            top_up()
            yield item, future
    finally:
        for _, future in queue:
            future.cancel()


def rate_and_eta(done: int, total: int, started: float) -> dict[str, float | None]:
    """The progress fields after `done` of `total` images since `started` (monotonic)."""
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else None
    return {"done": done, "rate": rate, "eta_s": (total - done) / rate if rate else None}


class IdAllocator:
    """Row ids for one album, handed out by its owner: never reused while the process lives, and above every id the
    album's tables held when the owner first asked, so two runs (or a run and a repair) can never share an id."""

    def __init__(self, first_free: int) -> None:
        self._next = first_free
        self._lock = threading.Lock()

    def take(self, count: int) -> list[int]:
        with self._lock:
            start, self._next = self._next, self._next + count
        return list(range(start, start + count))


class IndexRun(ReportsProgress):
    """One update, rebuild or resume of one album, into the table its owner chose."""

    def __init__(
        self,
        album: AlbumConfig,
        table: AlbumTable,
        runner: ModelRunner,
        ids: IdAllocator,
        *,
        is_replacement: bool = False,
        known_ids: Mapping[str, int] | None = None,
        known_starred: set[int] | None = None,
        only_paths: set[str] | None = None,
        progress: IndexProgress | None = None,
        on_progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.album = album
        self.table = table
        self.runner = runner
        self.ids = ids
        # A replacement (staging) table is built from a full scan of every folder while the live one stays as it is.
        self.is_replacement = is_replacement
        self.known_ids = known_ids or {}  # path -> id in the live table: a rebuild keeps each file's id
        self.known_starred = known_starred  # a rebuild: the live table's starred ids (the staging table has none)
        self.only_paths = None if is_replacement else only_paths  # a watcher's change set: stat just these
        self.on_progress = on_progress or (lambda progress: None)
        self.stop = stop or threading.Event()
        self.progress = progress or IndexProgress(album=album.key, mode="rebuild" if is_replacement else "update")

    # --- progress ---------------------------------------------------------------------------------------------------

    def _skip(self, path: str, reason: str) -> None:
        self._list_skip(printable_path(path), reason)
        log.info("skipped %r: %s", path, reason)

    # --- the run ----------------------------------------------------------------------------------------------------

    def run(self) -> IndexProgress:
        """Scan, diff, remove, embed, commit. A user-level stop (a folder unplugged) raises PhotoMapError; the owner
        turns whatever is raised into the run's final state."""
        self._emit(state="running", phase="scanning", started_at=self.progress.started_at or time.time())
        missing = [folder for folder in self.album.folders if not os.path.isdir(folder)]
        if missing and (self.is_replacement or len(missing) == len(self.album.folders)):
            raise FolderUnavailable(missing[0])  # a rebuild from part of the album must not replace all of it
        if self.only_paths is not None:
            scanned = list(stat_paths(self.only_paths, self.album.folders))
        else:
            scanned = list(scan_folders(self.album.folders))
        scanned = [found for found in scanned if self._is_storable(found.path)]
        indexed = self.table.stat_index()
        if missing:  # an unmounted drive is not a deletion: keep its rows until it is back
            kept = {path for path in indexed if album_folder_of(path, missing) is not None}
            indexed = {path: row for path, row in indexed.items() if path not in kept}
            self.progress.message = f"Folder {missing[0]} is not available; its {len(kept)} indexed images were kept"
        scope = {str(Path(p).absolute()) for p in self.only_paths} if self.only_paths is not None else None
        diff = diff_index(scanned, indexed, scope=scope)
        self._emit(
            new=len(diff.new), changed=len(diff.changed), removed=len(diff.removed), unchanged=diff.unchanged,
            total=diff.to_embed,
        )
        if diff.removed:
            self._emit(phase="removing")
            self.table.delete_ids(diff.removed)
        if diff.to_embed:
            self._embed_and_commit(diff)
        if not self.stop.is_set():
            self._emit(done=self.progress.total)
        return self.progress

    def _is_storable(self, path: str) -> bool:
        """A name that is not valid UTF-8 can be neither a LanceDB string nor a JSON one for the panel: skip that one
        file with a reason the user can act on, rather than fail every batch it falls into."""
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            self._skip(path, "its file name is not valid UTF-8; rename the file to index it")
            return False
        return True

    def _embed_and_commit(self, diff: IndexDiff) -> None:
        self._emit(phase="loading_model")
        model = self.runner.call_sync(lambda model: model)  # starts the model process; decoding needs its input size
        if model.precision != self.table.info.precision:  # int8 and fp32 vectors differ a little: never mix them
            raise PrecisionMismatch(self.table.info.precision, model.precision)
        work = work_list(diff, self.ids, self.known_ids)
        self._emit(phase="embedding")
        started = time.monotonic()
        done = 0

        def decode(found: FileStat) -> tuple[Any, dict[str, Any]]:
            return decode_for_embedding(Path(found.path), model.spec, found.mtime_ns), read_columns(found.path)

        batch: list[tuple[FileStat, int, Any, dict[str, Any]]] = []
        commits = 0
        with ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="photomap-decode") as pool:
            decoding = prefetched(pool, work, lambda item: decode(item[0]), self.stop, BATCH_SIZE * LOOKAHEAD_BATCHES)
            for (found, row_id), future in decoding:
                try:
                    decoded, columns = future.result()
                    batch.append((found, row_id, decoded, columns))
                except Exception as exc:  # whatever a hostile or vanished file provokes: skip it, never abort
                    self._skip(found.path, skip_reason(exc))
                    done += 1
                if len(batch) == BATCH_SIZE:
                    done = self._commit_and_report(batch, done, commits, started)
                    commits += 1
                    batch = []
            if batch and not self.stop.is_set():
                self._commit_and_report(batch, done, commits, started)

    def _commit_and_report(self, batch: list[tuple[FileStat, int, Any, dict[str, Any]]], done: int, commits: int,
                           started: float) -> int:  # fmt: skip
        self._commit_batch(batch)
        if (commits + 1) % COMPACT_EVERY_BATCHES == 0:
            self.table.compact()
        done += len(batch)
        self._emit(**rate_and_eta(done, self.progress.total, started))
        return done

    def _commit_batch(self, batch: list[tuple[FileStat, int, Any, dict[str, Any]]]) -> None:
        pixels = [decoded.pixels for _, _, decoded, _ in batch]
        vectors: np.ndarray = self.runner.call_sync(lambda model: model.encode_pixels(pixels))
        starred = self._starred_among([row_id for _, row_id, _, _ in batch])
        rows = [
            image_row(found, row_id, decoded.width, decoded.height, vector, columns) | {"starred": row_id in starred}
            for (found, row_id, decoded, columns), vector in zip(batch, vectors)
        ]
        self.table.upsert(rows)

    def _starred_among(self, ids: list[int]) -> set[int]:
        """An edited file is re-embedded as a whole new row, a rebuilt one into a new table: its local favourite
        must survive both."""
        if self.known_starred is not None:
            return self.known_starred.intersection(ids)
        condition = f"starred AND id IN ({', '.join(str(row_id) for row_id in ids)})"
        return {row["id"] for row in self.table.where(condition, ["id"])}


def skip_reason(exc: Exception) -> str:
    """What the skipped-files list says about a file that could not be indexed."""
    if isinstance(exc, ImageUnreadable):  # empty, truncated, too many pixels, not an image: its message says which
        return exc.message
    if isinstance(exc, FileNotFoundError):  # deleted since the scan: the next update drops its row, if it had one
        return "the file was removed while it was being indexed"
    return f"{exc.__class__.__name__}: {exc}"


def printable_path(path: str) -> str:
    """A path for JSON and logs: bytes of a file name that are not UTF-8 shown as \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
