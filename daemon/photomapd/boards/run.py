"""Board albums (DESIGN §11): index an InvokeAI server's boards through its API, no folder mounted.

The board album's "scan" is the server's listing (image name → board, star), diffed against the table by image name:
InvokeAI never changes an image's pixels after it is saved, so a name seen before is never fetched or embedded again;
a new name is fetched (`…/full`, whose PNG chunks carry the metadata) and embedded; a name gone is removed; a name
whose board or star changed gets those columns rewritten, vector untouched.

Rows keep a stable pseudo-path `invokeai:<image_name>` (the merge key and the `path` invariant) and a pseudo-folder
`invokeai:board/<board_id|none>` (so the folder filter works per board). Everything that reads a board album's file
(thumb, file, recall, ref) goes through the InvokeAI client with the row's `image_name`, never the disk.

This module never imports the InvokeAI client (`invokeai/` and `index/` are peers): the owner hands it a `BoardSource`,
synchronous because runs happen on a job thread; `boards/source.py` is the one that talks to the server.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from photomapd.config import AlbumConfig
from photomapd.errors import PhotoMapError
from photomapd.index.progress import IndexProgress, ProgressFn, ReportsProgress
from photomapd.index.run import columns_from_metadata, prefetched, rate_and_eta
from photomapd.store import AlbumTable

log = logging.getLogger(__name__)

PATH_PREFIX = "invokeai:"
FOLDER_PREFIX = "invokeai:board/"
BOARD_COLUMNS = ["id", "path", "image_name", "board_id", "starred"]
BATCH_SIZE = 32  # images per forward pass and per commit, as for folders: a kill loses at most one batch
# Downloads in flight: each is a request to InvokeAI plus a decode; on loopback 8 keep the model fed, over a LAN they
# hide the round trip. More would only queue at a server that is also generating.
FETCH_WORKERS = 8
LOOKAHEAD_BATCHES = 2
_INT64_MAX = 2**63 - 1


def row_path(image_name: str) -> str:
    return PATH_PREFIX + image_name


def board_folder(board_id: str | None) -> str:
    return FOLDER_PREFIX + (board_id or "none")


def is_board_path(path: str) -> bool:
    return path.startswith(PATH_PREFIX)


# --- what the owner hands a run ---------------------------------------------------------------------------------------


class Listed(Protocol):
    image_name: str
    board_id: str | None
    starred: bool


class Info(Protocol):
    image_name: str
    created_at: datetime | None


class BoardSource(Protocol):
    """The album's server, called from a job thread (each call blocks until the server answered)."""

    def list(self) -> Mapping[str, Listed]: ...  # image_name -> listing, every image of the album's boards

    def infos(self, names: Sequence[str]) -> Mapping[str, Info]: ...

    def fetch(self, image_name: str) -> bytes: ...  # the full image, metadata chunks included


class Decoded(Protocol):
    width: int
    height: int


class BoardModel(Protocol):
    """Bytes to model input (any thread) and model inputs to unit vectors (the model's thread)."""

    def decode(self, data: bytes) -> Decoded: ...

    def encode(self, decoded: Sequence[Decoded]) -> np.ndarray: ...


# --- the diff (pure) --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardRow:
    id: int
    board_id: str | None
    starred: bool


@dataclass
class BoardDiff:
    new: list[Listed] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)  # row ids
    updates: list[dict[str, Any]] = field(default_factory=list)  # {id, board_id, folder, starred}: moved or (un)starred
    unchanged: int = 0


def indexed_board_rows(table: AlbumTable) -> dict[str, BoardRow]:
    """image_name → row for every board row of the table (vectors not read)."""
    columns = table.arrow(BOARD_COLUMNS).to_pydict()
    rows: dict[str, BoardRow] = {}
    for row_id, path, name, board_id, starred in zip(*(columns[c] for c in BOARD_COLUMNS)):
        if is_board_path(path):
            rows[name or path[len(PATH_PREFIX) :]] = BoardRow(row_id, board_id, bool(starred))
    return rows


def diff_board(listed: Mapping[str, Listed], indexed: Mapping[str, BoardRow]) -> BoardDiff:
    """New names to embed, names gone to remove, and column updates for names that moved board or changed star."""
    diff = BoardDiff()
    for name, image in listed.items():
        row = indexed.get(name)
        if row is None:
            diff.new.append(image)
        elif (row.board_id, row.starred) != (image.board_id, image.starred):
            folder = board_folder(image.board_id)
            diff.updates.append({"id": row.id, "board_id": image.board_id, "folder": folder, "starred": image.starred})
        else:
            diff.unchanged += 1
    diff.removed = [row.id for name, row in indexed.items() if name not in listed]
    return diff


# --- the run ----------------------------------------------------------------------------------------------------------


class BoardRun(ReportsProgress):
    """One update or rebuild of one board album, into the table its owner chose (like `IndexRun` for folders)."""

    def __init__(
        self,
        album: AlbumConfig,
        table: AlbumTable,
        source: BoardSource,
        model: BoardModel,
        take_ids: Callable[[int], list[int]],
        *,
        known_ids: Mapping[str, int] | None = None,
        progress: IndexProgress | None = None,
        on_progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.album = album
        self.table = table
        self.source = source
        self.model = model
        self.take_ids = take_ids
        self.known_ids = known_ids or {}  # path -> id in the live table: a rebuild keeps each image's id
        self.progress = progress or IndexProgress(album=album.key)
        self.on_progress = on_progress or (lambda progress: None)
        self.stop = stop or threading.Event()

    def _skip(self, image_name: str, reason: str) -> None:
        self._list_skip(row_path(image_name), reason)
        log.info("skipped InvokeAI image %s: %s", image_name, reason)

    def run(self) -> IndexProgress:
        """List, diff, remove, update columns, fetch + embed, commit. The server unreachable (or a board gone)
        raises PhotoMapError before anything is changed: a server that is away is not a deletion."""
        self._emit(state="running", phase="scanning", started_at=self.progress.started_at or time.time())
        listed = self.source.list()
        diff = diff_board(listed, indexed_board_rows(self.table))
        self._emit(new=len(diff.new), changed=len(diff.updates), removed=len(diff.removed), unchanged=diff.unchanged,
                   total=len(diff.new))  # fmt: skip
        if diff.removed:
            self._emit(phase="removing")
            self.table.delete_ids(diff.removed)
        if diff.updates:
            self.table.update_columns(diff.updates)
        if diff.new:
            self._embed_and_commit(diff.new)
        if not self.stop.is_set():
            self._emit(done=self.progress.total)
        return self.progress

    def _embed_and_commit(self, new: list[Listed]) -> None:
        from photomapd.metadata.reader import parse_metadata_bytes

        self._emit(phase="embedding")
        infos = self.source.infos([image.image_name for image in new])
        fresh = iter(self.take_ids(sum(1 for image in new if row_path(image.image_name) not in self.known_ids)))
        work = [(image, self.known_ids.get(row_path(image.image_name)) or next(fresh)) for image in new]
        started, done = time.monotonic(), 0

        def fetch(image: Listed) -> tuple[Decoded, dict[str, Any], int]:
            data = self.source.fetch(image.image_name)
            decoded = self.model.decode(data)
            info = infos.get(image.image_name)
            made = info.created_at if info is not None else None
            fallback = made.replace(tzinfo=timezone.utc).timestamp() if made is not None else None
            try:
                columns = columns_from_metadata(parse_metadata_bytes(data, fallback_mtime=fallback))
            except Exception:  # a parser bug must not drop the image: keep it, without metadata
                log.exception("metadata parser failed on InvokeAI image %s", image.image_name)
                columns = {}
            stamp = int(fallback * 1e9) if fallback is not None else 0
            return decoded, columns, stamp if 0 <= stamp <= _INT64_MAX else 0

        batch: list[tuple[Listed, int, Decoded, dict[str, Any], int, int]] = []
        with ThreadPoolExecutor(max_workers=FETCH_WORKERS, thread_name_prefix="photomap-board") as pool:
            fetching = prefetched(pool, work, lambda item: fetch(item[0]), self.stop, BATCH_SIZE * LOOKAHEAD_BATCHES)
            for (image, row_id), future in fetching:
                try:
                    decoded, columns, stamp = future.result()
                    batch.append((image, row_id, decoded, columns, stamp, 0))
                except PhotoMapError as exc:  # gone since the listing, no longer allowed, undecodable
                    if exc.status == 502:  # the server went away mid-run: stop, the next sync resumes
                        raise
                    self._skip(image.image_name, exc.message)
                    done += 1
                except Exception as exc:
                    self._skip(image.image_name, f"{exc.__class__.__name__}: {exc}")
                    done += 1
                if len(batch) == BATCH_SIZE:
                    done = self._commit_and_report(batch, done, started)
                    batch = []
            if batch and not self.stop.is_set():
                self._commit_and_report(batch, done, started)

    def _commit_and_report(
        self, batch: list[tuple[Listed, int, Decoded, dict[str, Any], int, int]], done: int, started: float
    ) -> int:
        self._commit(batch)
        done += len(batch)
        self._emit(**rate_and_eta(done, self.progress.total, started))
        return done

    def _commit(self, batch: list[tuple[Listed, int, Decoded, dict[str, Any], int, int]]) -> None:
        vectors = self.model.encode([item[2] for item in batch])
        rows = [
            {
                "id": row_id,
                "path": row_path(image.image_name),
                "folder": board_folder(image.board_id),
                "mtime_ns": stamp,
                "size": 0,
                "width": decoded.width,
                "height": decoded.height,
                "vector": vector,
                "x": None,
                "y": None,
                "cluster": None,
                **columns,
                "image_name": image.image_name,
                "board_id": image.board_id,
                "starred": image.starred,
            }
            for (image, row_id, decoded, columns, stamp, _), vector in zip(batch, vectors)
        ]
        self.table.upsert(rows)


# --- stars on rows (both kinds of album) ------------------------------------------------------------------------------


def set_starred_rows(table: AlbumTable, ids: Iterable[int], starred: bool) -> int:
    """Set `starred` on these rows in one commit (a folder album's local favourite, or a board album's mirror of the
    server after it said yes); returns how many rows exist among `ids`."""
    from photomapd.store import id_list

    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return 0
    present = table.arrow(["id"], f"id IN ({id_list(wanted)})").column("id").to_pylist()
    if present:
        table.update_columns([{"id": row_id, "starred": starred} for row_id in present])
    return len(present)


def set_board_rows(table: AlbumTable, ids: Iterable[int], board_id: str) -> None:
    """Record that these rows moved to `board_id` (after the server said so)."""
    rows = [{"id": int(i), "board_id": board_id, "folder": board_folder(board_id)} for i in ids]
    if rows:
        table.update_columns(rows)


class RunnerModel:
    """`BoardModel` over the daemon's `ModelRunner`: decode and fit here (a fetch thread), forward passes in the
    model process. The one place a board run touches the model's API (the lead's runner rework may reshape it)."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.spec = runner.call_sync(lambda model: model.spec)  # starts the model; decoding needs its input size

    def decode(self, data: bytes) -> Decoded:
        from photomapd.images import load_image
        from photomapd.model.preprocess import DRAFT_FACTOR, DecodedImage, to_pixels

        loaded = load_image(data, cover=(self.spec.width * DRAFT_FACTOR, self.spec.height * DRAFT_FACTOR))
        return DecodedImage(to_pixels(loaded.image, self.spec), loaded.width, loaded.height)

    def encode(self, decoded: Sequence[Decoded]) -> np.ndarray:
        pixels = [item.pixels for item in decoded]  # type: ignore[attr-defined]
        return self.runner.call_sync(lambda model: model.encode_pixels(pixels))
