"""Index runs on a Ray cluster (DESIGN §12): the same run as `IndexRun`, with its decode and embed stages spread out.

The album's owner still does everything that touches the table's state: the scan, the stat diff, deleting removed
rows, handing out ids and every commit. Only the diff's work list travels: Ray Data decodes and fits each image on
CPU tasks (torch-free, model/preprocess.py) and reads its metadata there, an actor pool embeds (the model loaded once
per actor, on a GPU where the cluster has them), and write tasks turn each batch into a Lance fragment in the
album's own table directory. The owner appends those fragments in one commit per chunk, so a killed job keeps every
finished chunk and the next run's diff skips them, exactly like the local pipeline's batches. Changed files (an edit
keeps its row id) come back to the owner as rows and go through the same `upsert` as a local run.

Every node must reach the data dir at the same path (NFS) or the table must live on object storage, and have
photomapd installed with the `[scale]` group. Ray is imported only inside this module's functions, so the daemon
and the CLI load it only for `--engine ray`.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from photomapd.errors import PrecisionMismatch, RayMissing
from photomapd.index.run import IndexRun, image_row, read_columns, skip_reason, work_list
from photomapd.index.scan import FileStat, IndexDiff
from photomapd.index.sources import decode_for_embedding
from photomapd.memory import let_unused_back_in
from photomapd.model.preprocess import DecodedImage, InputSpec

if TYPE_CHECKING:
    from types import ModuleType

log = logging.getLogger(__name__)

# Rows per owner commit. Each commit is one LanceDB version and a few fragments; 1,024 keeps 10 million images at
# ~10k commits (the owner compacts as it goes) while a killed job loses at most ~1 minute of a 2-core box's work.
CHUNK_ROWS = 1024
DECODE_BATCH = 32  # files per decode task: long enough to amortize a task's start (~5 ms), short enough to spread
EMBED_BATCH = 32  # images per forward pass, as the local pipeline's BATCH_SIZE
WRITE_BATCH = 256  # rows per Lance fragment: fewer, larger fragments than one per forward pass
# Logical CPUs each stage asks of Ray. A decode is one core's work; a CPU embed actor asks for one core so it fits a
# small node, though torch itself uses every core of it; a write task is mostly I/O and must never wait for a core
# held by the stages in front of it (on a 2-CPU cluster, whole-core writes could starve behind decode and embed).
# A decode task asks for half a core, not one, so that its resources differ from a CPU embed actor's: Ray Data fuses a
# task stage into the actor stage after it when both ask the same, and would then decode serially in front of each
# forward pass instead of beside it.
DECODE_TASK_CPUS = 0.5
EMBED_ACTOR_CPUS = 1.0
WRITE_TASK_CPUS = 0.1
# Batches queued at an embed actor: one computing, one waiting, so it never idles between batches; more would let
# the first actor up take work that actors still loading their model could do.
EMBED_TASKS_IN_FLIGHT = 2
# Compaction rewrites every small fragment, so its cost grows with the table (~1 s at 100k rows, BENCHMARKS.md):
# after every 12 chunks (48 fragments of WRITE_BATCH rows, as the local pipeline's 50 batches), not more often.
COMPACT_EVERY_CHUNKS = 12
INSTALL_HINT = "pip install -e '.[scale]'"


def require_ray() -> ModuleType:
    """Ray, or RayMissing naming the exact install command when the `[scale]` group is not installed."""
    let_unused_back_in()  # Ray Data moves batches as pandas and Arrow
    try:
        import lance_ray  # noqa: F401  # the fragment writer the write stage uses
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayMissing() from exc
    return ray


@dataclass(frozen=True)
class RayOptions:
    """How to reach and use the cluster. None means: decide from what the cluster has."""

    address: str | None = None  # None: the cluster this process is connected to, else a new local one
    embed_actors: int | None = None  # default: one per GPU (or per `num_gpus` share), else one per node
    num_gpus: float | None = None  # per embed actor; default 1 where the cluster has GPUs, else 0 (CPU)
    chunk_rows: int | None = None  # rows per owner commit; None = CHUNK_ROWS


def connect(address: str | None) -> ModuleType:
    """Join the cluster at `address` (or stay on the one already joined, or start a local one when None)."""
    ray = require_ray()
    if ray.is_initialized():
        if address is None or address in (ray.get_runtime_context().gcs_address, "auto"):
            return _quiet(ray)
        ray.shutdown()  # another cluster was asked for
    if address is None:  # a cluster of our own: no usage report leaves the machine
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with warnings.catch_warnings():
        # Starting a local cluster forks its processes; lancedb warns about forks though the children exec at once.
        warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)
        # Workers' logs stay in the cluster's log dir: the CLI's stderr is for its bar and summary, and a failing
        # task's exception reaches the driver through Ray Data anyway.
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    return _quiet(ray)


def _quiet(ray: ModuleType) -> ModuleType:
    """Progress goes through IndexProgress, as for a local run: no Ray Data bars or progress logs on our stderr."""
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # not even "progress bars disabled"
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return ray


# --- what both engines share (IndexRun should call these too: see the module's report) -----------------------------


def pixels_of(decoded: DecodedImage) -> np.ndarray:
    """The one place that knows what a decoded image hands the model: [H, W, 3] uint8 at the model's input size."""
    return decoded.pixels


# --- the stages (they run on the cluster's workers) -----------------------------------------------------------------


def _decode_batch(batch: dict[str, np.ndarray], spec: InputSpec) -> dict[str, np.ndarray]:
    """Decode, fit and read the metadata of each file; a file that fails keeps a blank image and its skip reason."""
    count = len(batch["path"])
    pixels = np.zeros((count, spec.height, spec.width, 3), dtype=np.uint8)
    widths, heights = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    columns, skips = np.empty(count, dtype=object), np.empty(count, dtype=object)
    for i, path in enumerate(batch["path"].tolist()):
        skips[i], columns[i] = "", b""
        try:
            decoded = decode_for_embedding(Path(path), spec, int(batch["mtime_ns"][i]))
        except Exception as exc:  # whatever a hostile or vanished file provokes: skip it, never fail the job
            skips[i] = skip_reason(exc)
            continue
        pixels[i], widths[i], heights[i] = pixels_of(decoded), decoded.width, decoded.height
        columns[i] = pickle.dumps(read_columns(path))  # one opaque cell: None-only columns have no Arrow type
    return {**batch, "pixels": pixels, "width": widths, "height": heights, "columns": columns, "skip": skips}


class _EmbedActor:
    """Holds one model for the actor's life; embeds the decoded images of each batch."""

    def __init__(self, model_name: str, pretrained: str | None, device: str | None) -> None:
        import ray

        from photomapd.model.embed import load_embedder

        self.embedder = load_embedder(model_name, pretrained, device)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pixels = batch.pop("pixels")
        ok = batch["skip"] == ""
        vectors = np.zeros((len(pixels), self.embedder.dim), dtype=np.float32)
        if ok.any():
            vectors[ok] = self.embedder.encode_pixels(pixels[ok])
        return {**batch, "vector": vectors, "node": np.full(len(pixels), self.node, dtype=object)}


def _write_batch(batch: dict[str, np.ndarray], uri: str, schema: Any, storage_version: str) -> dict[str, np.ndarray]:
    """New files' rows become one Lance fragment in the album's table directory (not yet part of the table: the
    owner commits it); changed files' rows and the skips go back to the owner."""
    from lance_ray.fragment import write_fragment

    from photomapd.store import fragment_rows

    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for i, path in enumerate(batch["path"].tolist()):
        if batch["skip"][i]:
            skipped.append((path, str(batch["skip"][i])))
            continue
        found = FileStat(path, str(batch["folder"][i]), int(batch["mtime_ns"][i]), int(batch["size"][i]))
        row = image_row(
            found, int(batch["id"][i]), int(batch["width"][i]), int(batch["height"][i]), batch["vector"][i],
            pickle.loads(batch["columns"][i]),
        )  # fmt: skip
        (changed_rows if batch["changed"][i] else new_rows).append(row)
    fragments = []
    if new_rows:
        data = fragment_rows(new_rows, schema)
        fragments = [fragment for fragment, _ in write_fragment([data], uri, schema=schema,
                                                                 data_storage_version=storage_version)]
    return {
        "fragments": _cell(pickle.dumps(fragments)),
        "new": np.array([len(new_rows)], dtype=np.int64),
        "changed": _cell(pickle.dumps(changed_rows)),
        "skipped": _cell(pickle.dumps(skipped)),
        "nodes": _cell(pickle.dumps(sorted(set(batch["node"].tolist())))),  # where these rows were embedded
    }


def _cell(value: Any) -> np.ndarray:
    column = np.empty(1, dtype=object)
    column[0] = value
    return column


# --- the run (on the owner's job thread) ----------------------------------------------------------------------------


@dataclass
class _Chunk:
    """Written and not yet committed: what the owner's next commit makes part of the table."""

    fragments: list[Any]
    changed: list[dict[str, Any]]
    skipped: list[tuple[str, str]]
    rows: int = 0

    @classmethod
    def empty(cls) -> _Chunk:
        return cls([], [], [])


class RayIndexRun(IndexRun):
    """`IndexRun` with its embedding stage on Ray: scan, diff, removals, progress and the owner's role unchanged."""

    def __init__(self, *args: Any, options: RayOptions | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = options or RayOptions()
        self.nodes: set[str] = set()  # the nodes whose embed actors made this run's vectors (tests, benchmarks)

    def _embed_and_commit(self, diff: IndexDiff) -> None:
        if self.table.info.precision != "fp32":  # the embed actors run fp32: never mix it into an int8 table
            raise PrecisionMismatch(self.table.info.precision, "fp32 (on Ray)")
        self._emit(phase="loading_model")
        ray = connect(self.options.address)
        # Decode tasks fit images to the model's input; the owner's own model process says what that is.
        spec: InputSpec = self.runner.call_sync(lambda model: model.spec)
        work = work_list(diff, self.ids, self.known_ids)
        changed_ids = {row_id for _, row_id in diff.changed}
        dataset = self._pipeline(ray, work, changed_ids, spec)
        self._emit(phase="embedding")
        started, done, commits = time.monotonic(), 0, 0
        chunk, chunk_rows = _Chunk.empty(), self.options.chunk_rows or CHUNK_ROWS
        batches = dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0)
        try:
            for written in self._written(batches):
                if self.stop.is_set():
                    return  # fragments written and not committed stay unreferenced files, which no read ever opens
                chunk.fragments += written.fragments
                chunk.changed += written.changed
                chunk.skipped += written.skipped
                chunk.rows += written.rows
                if chunk.rows >= chunk_rows:
                    done, commits = done + self._commit_chunk(chunk), commits + 1
                    chunk = _Chunk.empty()
                    if commits % COMPACT_EVERY_CHUNKS == 0:
                        self.table.compact()
                    self._emit_rate(done, started)
            if chunk.rows and not self.stop.is_set():
                done = done + self._commit_chunk(chunk)
                self._emit_rate(done, started)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # stops the job's stages when the run ends early (a Cancel, an error)

    def _pipeline(
        self, ray: ModuleType, work: list[tuple[FileStat, int]], changed_ids: set[int], spec: InputSpec
    ) -> Any:
        items = [
            {"id": row_id, "path": found.path, "folder": found.folder, "mtime_ns": found.mtime_ns,
             "size": found.size, "changed": row_id in changed_ids}
            for found, row_id in work
        ]  # fmt: skip
        actors, num_gpus = self._embed_pool(ray)
        uri, schema, storage_version = self.table.fragment_target()
        model_name, pretrained = self.runner.model_name, self.runner.pretrained
        # A chunk can only end between write batches, and those between the batches before them: none may span one.
        chunk = self.options.chunk_rows or CHUNK_ROWS
        decode_batch, embed_batch, write_batch = (min(size, chunk) for size in (DECODE_BATCH, EMBED_BATCH, WRITE_BATCH))
        return (
            ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // decode_batch)))
            .map_batches(_decode_batch, fn_kwargs={"spec": spec}, batch_size=decode_batch, num_cpus=DECODE_TASK_CPUS)
            .map_batches(
                _EmbedActor, fn_constructor_kwargs={"model_name": model_name, "pretrained": pretrained,
                "device": "cuda" if num_gpus else "cpu"}, batch_size=embed_batch,
                compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=EMBED_TASKS_IN_FLIGHT),
                num_gpus=num_gpus or None,
                num_cpus=0 if num_gpus else EMBED_ACTOR_CPUS,  # Ray Data's default SPREAD: one per node if it can
            )  # fmt: skip
            .map_batches(
                _write_batch, fn_kwargs={"uri": uri, "schema": schema, "storage_version": storage_version},
                batch_size=write_batch, num_cpus=WRITE_TASK_CPUS,
            )  # fmt: skip
        )

    def _embed_pool(self, ray: ModuleType) -> tuple[int, float]:
        """(actors, GPUs per actor): one actor per GPU where there are any, else one per node (torch already uses
        every core of a node, so a second actor there would only split them)."""
        gpus = float(ray.cluster_resources().get("GPU", 0))
        num_gpus = self.options.num_gpus if self.options.num_gpus is not None else (1.0 if gpus else 0.0)
        if self.options.embed_actors is not None:
            return self.options.embed_actors, num_gpus
        if num_gpus:
            return max(1, int(gpus / num_gpus)), num_gpus
        nodes = [node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0)]
        return max(1, len(nodes)), num_gpus

    def _written(self, batches: Iterable[dict[str, np.ndarray]]) -> Iterator[_Chunk]:
        for batch in batches:
            for i in range(len(batch["new"])):
                self.nodes.update(pickle.loads(batch["nodes"][i]))
                fragments = pickle.loads(batch["fragments"][i])
                changed, skipped = pickle.loads(batch["changed"][i]), pickle.loads(batch["skipped"][i])
                yield _Chunk(fragments, changed, skipped, int(batch["new"][i]) + len(changed) + len(skipped))

    def _commit_chunk(self, chunk: _Chunk) -> int:
        """One chunk into the table: new rows in one append, then changed ones in one upsert (each atomic; a kill
        between them leaves the changed files at their old stat, so the next diff re-embeds just those)."""
        if chunk.fragments:
            self.table.commit_fragments(chunk.fragments)
        if chunk.changed:
            starred = self._starred_among([row["id"] for row in chunk.changed])
            self.table.upsert([row | {"starred": row["id"] in starred} for row in chunk.changed])
        for path, reason in chunk.skipped:
            self._skip(path, reason)
        return chunk.rows

    def _emit_rate(self, done: int, started: float) -> None:
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else None
        eta = (self.progress.total - done) / rate if rate else None
        self._emit(done=done, rate=rate, eta_s=eta)
