"""LanceDB tables: one per album, the single source of truth for what is indexed.

This is the only module that imports lancedb. Its API is synchronous (LanceDB's sync client); async callers run it
in an executor. Every write is one atomic LanceDB version, so a process killed between writes leaves the table
exactly as the last finished batch left it.

The store owns what makes reads cheap and writes safe:
- Tables are opened once and cached; each `AlbumTable` carries a `version` token that changes with every write made
  through it, so caches key on it without asking LanceDB (listing versions costs O(commits) per call).
- Old versions are pruned after each run (`compact`), keeping a few for safety.
- A rebuild or a model change writes into a *staging* table named in `index/albums.json` and is swapped in by one
  atomic rewrite of that file, so the old index stays searchable throughout and a killed rebuild leaves it intact.
- `repair` restores the invariants an older version could break: `path` unique, `id` unique, vectors finite and
  unit-length.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, TypeVar

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lancedb.index import FTS
from lancedb.pydantic import LanceModel, Vector
from lancedb.query import BooleanQuery, FullTextOperator, MatchQuery, Occur, PhraseQuery
from pydantic import BaseModel, Field, ValidationError

from photomapd import config

log = logging.getLogger(__name__)

# Arrow buffers from the system allocator, not mimalloc: mimalloc keeps freed pages in per-thread heaps that only their
# own thread can release, and reads run on 8 pool threads, so a resting daemon held ~80 MB it no longer used. glibc's
# malloc_trim (memory.release_memory) returns every arena's free pages at once.
pa.set_memory_pool(pa.system_memory_pool())
T = TypeVar("T")

SCHEMA_VERSION = 1
_META_PREFIX = b"photomap."
# Columns every caller may read without pulling the vectors (which are 2 KB a row).
STAT_COLUMNS = ["id", "path", "mtime_ns", "size"]
# Non-null columns a writer may leave out (Arrow does not apply the row model's defaults).
_ROW_DEFAULTS: dict[str, Any] = {"loras": [], "has_recallable": False, "metadata_json": "{}"}
# Versions kept after pruning: enough to read a table while a write lands, few enough that a gallery watched for a
# year does not keep a year of manifests (every 32-image batch is one version).
KEEP_VERSIONS = 4
NOTHING_TO_PRUNE = timedelta(days=3650)  # an optimize that only compacts: no version is that old
# Commits (each a small fragment and a version) before `tidy` compacts and prunes. Compaction rewrites every fragment
# below LanceDB's target size, which for a table under a million rows is all of it: 213 MB and ~1 s at 100k rows
# (BENCHMARKS.md "Search history"), most of a watcher event's cost if done per event; 50 small fragments cost a scan
# nothing measurable, and no read lists versions. LanceDB OSS prunes only as part of `optimize` (a prune on its own
# needs pylance), so versions pile up to this many between compactions.
COMPACT_AFTER_COMMITS = 50
# A vector whose norm is off by more than this was not written by our embedder (which normalizes in float32).
UNIT_NORM_TOLERANCE = 1e-3
# Scalar indexes pay once a plain scan is slow: at 100k rows `id = N` scans ~10 ms, the BTREE answers in ~1 ms
# (BENCHMARKS.md "Search"). Below this a scan is as fast and the index is only upkeep.
SCALAR_INDEX_MIN_ROWS = 20_000
SCALAR_INDEXED_COLUMNS = ("id", "path")
CATALOG_FORMAT = 1
# The prompt's full-text index (prompt keyword search). Built when a table is made (or, for an older table, by the
# owner's start-up check and after each run) and never for a search: rows written since it was built are scanned
# beside it by LanceDB, and compaction (`tidy`) folds them in. English stemming ("fox" finds "foxes"), stop words
# dropped, positions kept so that a quoted phrase can be matched as one.
FTS_COLUMN = "positive_prompt"


class TableInfo(BaseModel):
    """Per-table facts kept in the Arrow schema metadata: a model change means every vector must be re-embedded."""

    model: str
    pretrained: str
    dim: int
    schema_version: int = SCHEMA_VERSION
    # The forward that made the vectors ("fp32", or "int8": model/quantize.py's image tower). Tables written before it
    # existed are fp32. A str, not a Literal, so a table from a newer release with another path still opens.
    precision: str = "fp32"

    def to_schema_metadata(self) -> dict[bytes, bytes]:
        return {_META_PREFIX + key.encode(): str(value).encode() for key, value in self.model_dump().items()}

    @classmethod
    def from_schema_metadata(cls, metadata: dict[bytes, bytes] | None) -> TableInfo | None:
        if not metadata:
            return None
        fields = {
            key[len(_META_PREFIX) :].decode(): value.decode()
            for key, value in metadata.items()
            if key.startswith(_META_PREFIX)
        }
        try:
            return cls.model_validate(fields)
        except ValueError:
            return None

    def is_made_by(self, embedding_names: tuple[str, str], precision: str | None = None) -> bool:
        """The one "same model?" check: vectors are comparable only between equal (model, pretrained) pairs. With
        `precision`, also made at that precision: an index run must not add int8 rows to an fp32 table (searching
        either with text is fine: the text tower stays fp32 and int8 image vectors stay within cosine 0.99 of fp32)."""
        if precision is not None and self.precision != precision:
            return False
        return (self.model, self.pretrained) == embedding_names


def image_row_model(dim: int) -> type[LanceModel]:
    """The row class for a model of `dim` dimensions (`Vector(dim)` fixes the size when the class is made)."""

    class ImageRow(LanceModel):
        id: int  # stable for the life of the file's path; the API names files only by this id
        path: str  # absolute
        folder: str  # the album folder this file was found under, for the folder filter
        mtime_ns: int
        size: int
        width: int
        height: int
        vector: Vector(dim)  # type: ignore[valid-type]  # L2-normalized float32
        generator: str | None = None
        app_version: str | None = None
        created_at: datetime | None = None
        positive_prompt: str | None = None
        negative_prompt: str | None = None
        model: str | None = None
        seed: int | None = None
        loras: list[str] = []
        has_recallable: bool = False
        metadata_json: str = "{}"
        x: float | None = None  # map position, filled by map/layout.py
        y: float | None = None
        cluster: int | None = None
        # Board albums (DESIGN §11): InvokeAI's own name for the image, its board (None = Uncategorized) and star.
        # Folder albums use `starred` as a local favourite. Nullable: tables made before them gain them on open.
        image_name: str | None = None
        board_id: str | None = None
        starred: bool | None = None

    return ImageRow


def missing_nullable_fields(schema: pa.Schema, dim: int) -> list[pa.Field]:
    """Nullable columns of today's row model that `schema` (an older table's) lacks: the forward-only migration adds
    them, all null, on open. Non-null columns never appear later than the first version, so none is missing."""
    wanted = image_row_model(dim).to_arrow_schema()
    have = set(schema.names)
    return [field for field in wanted if field.name not in have and field.nullable]


def _utc(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)  # LanceDB lists naive UTC times


def sql_quote(value: str) -> str:
    """A SQL string literal for LanceDB's `.where()`: request values never go into SQL any other way."""
    return "'" + value.replace("'", "''") + "'"


def sql_like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with `prefix`, with LIKE's wildcards escaped."""
    escaped = re.sub(r"([\\%_])", r"\\\1", prefix)
    return sql_quote(escaped + "%") + " ESCAPE '\\'"


def album_key_of(table_name: str) -> str:
    """The album a table belongs to: its live table is named after it, a staging one `<key>.v<n>`."""
    return table_name.split(".", 1)[0]


def id_list(ids: Iterable[int]) -> str:
    """`1,2,3` for an `id IN (...)` clause; ints only, so nothing else can reach the SQL."""
    return ",".join(str(int(i)) for i in ids)


@dataclass(frozen=True)
class StatRow:
    id: int
    mtime_ns: int
    size: int


class InvariantViolation(ValueError):
    """A write that would break a table invariant (a non-finite or non-unit vector): a bug upstream, never stored."""


@dataclass(frozen=True)
class RepairReport:
    duplicate_paths: int = 0  # rows dropped because a newer row has the same path
    reassigned_ids: int = 0  # rows that shared an id with another path and got a fresh one
    bad_vectors: int = 0  # rows dropped because their vector was not finite or not unit-length (re-embedded later)

    @property
    def changed(self) -> bool:
        return bool(self.duplicate_paths or self.reassigned_ids or self.bad_vectors)


def check_vectors(vectors: np.ndarray) -> np.ndarray:
    """Boolean mask of rows whose vector is finite and unit-length."""
    finite = np.isfinite(vectors).all(axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(vectors), vectors, 0.0), axis=1)
    return finite & (np.abs(norms - 1.0) <= UNIT_NORM_TOLERANCE)


def fragment_rows(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as an Arrow table of `schema`, for an upsert or a fragment a Ray worker writes (scale/engine.py).

    Refuses (InvariantViolation) a non-finite or non-unit vector, or one path twice: what the table holds must
    always be searchable as it is.
    """
    data = pa.Table.from_pylist([{**_ROW_DEFAULTS, **row} for row in rows], schema=schema)
    if data.num_rows == 0:
        return data
    flat = data.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False)
    if not check_vectors(flat.reshape(data.num_rows, -1)).all():
        raise InvariantViolation("refusing to store a vector that is not finite and unit-length")
    if pc.count_distinct(data.column("path")).as_py() != data.num_rows:
        raise InvariantViolation("refusing to store one path twice in a batch")
    return data


class AlbumTable:
    """One album's rows. Writes go through the album's owner (`jobs.AlbumJobs`); reads may come from any thread."""

    def __init__(self, table: Any, info: TableInfo, serial: int, *, follows_writer: bool = False) -> None:
        self._table = table
        self.info = info
        self.name: str = table.name
        self.schema: pa.Schema = table.schema
        self._serial = serial  # unique per opened table in this process: a re-created table never reuses a token
        self._writes = 0
        self._commits_since_compact: int | None = None  # unknown until the first tidy counts the versions
        self._count: tuple[tuple[int, int], int] | None = None  # (version, rows): the album list asks often
        self._has_fts: tuple[tuple[int, int], bool] | None = None  # (version, has the prompt index)
        self._memo: dict[str, tuple[tuple[int, int], Any]] = {}  # name -> (version, value): see `memo`
        # A reader's table changes under it (another process writes), so nothing may be cached on its token.
        self._follows_writer = follows_writer

    @property
    def version(self) -> tuple[int, int]:
        """Changes after every write made through this object (bumped once the write has landed): what caches key
        on. Costs nothing, unlike asking LanceDB for its versions."""
        return self._serial, self._writes

    def _wrote(self, commits: int = 1) -> None:
        self._writes += 1
        if self._commits_since_compact is not None:
            self._commits_since_compact += commits

    def memo(self, name: str, compute: Callable[[], T]) -> T:
        """`compute()`, cached until the next write (e.g. the album's facets); a reader of another process's table
        always computes (its table changes under it)."""
        version, cached = self.version, self._memo.get(name)
        if cached is not None and cached[0] == version and not self._follows_writer:
            return cached[1]
        value = compute()
        self._memo[name] = (version, value)
        return value

    # --- reads ------------------------------------------------------------------------------------------------------

    def count(self, condition: str | None = None) -> int:
        if condition is not None:
            return int(self._table.count_rows(condition))
        version, cached = self.version, self._count
        if cached is not None and cached[0] == version and not self._follows_writer:
            return cached[1]
        rows = int(self._table.count_rows())
        self._count = (version, rows)
        return rows

    def stat_index(self) -> dict[str, StatRow]:
        """path → (id, mtime_ns, size) for every row: all the diff needs, without reading vectors."""
        columns = self.arrow(STAT_COLUMNS).to_pydict()
        return {
            path: StatRow(id=row_id, mtime_ns=mtime, size=size)
            for row_id, path, mtime, size in zip(columns["id"], columns["path"], columns["mtime_ns"], columns["size"])
        }

    def max_id(self) -> int:
        ids = self.arrow(["id"]).column("id")
        return int(pc.max(ids).as_py() or 0) if len(ids) else 0

    def get(self, row_id: int, columns: list[str] | None = None) -> dict[str, Any] | None:
        rows = self.where(f"id = {int(row_id)}", columns=columns, limit=1)
        return rows[0] if rows else None

    def where(self, condition: str | None, columns: list[str] | None = None, limit: int | None = None) -> list[dict]:
        return self.arrow(columns, condition, limit).to_pylist()

    def arrow(self, columns: list[str] | None = None, condition: str | None = None, limit: int | None = None) -> pa.Table:
        """A plain scan (no vector query): the rows matching `condition`, only `columns` (all when None)."""
        query = self._table.search()
        if columns is not None:
            query = query.select(columns)
        if condition:
            query = query.where(condition)
        return query.limit(limit).to_arrow()

    def vectors(self, condition: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64[n], vectors float32[n, dim]) for the rows matching `condition` (all rows when None)."""
        table = self.arrow(["id", "vector"], condition)
        ids = table.column("id").to_numpy()
        flat = table.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False)
        return ids, flat.reshape(len(ids), self.info.dim).astype(np.float32, copy=False)

    def take_offsets(self, offsets: list[int], columns: list[str]) -> pa.Table:
        """Rows by their position in scan order (~2 ms for a page, against ~10 ms for an `id IN` scan at 100k)."""
        return self._table.take_offsets(offsets).select(columns).to_arrow()

    def nearest(
        self, query: np.ndarray, *, limit: int, nprobes: int, refine_factor: int, columns: list[str], where: str | None
    ) -> pa.Table:
        """The `limit` rows nearest `query` by the ANN index (cosine), with a `_distance` column."""
        builder = (
            self._table.search(query, vector_column_name="vector")
            .distance_type("cosine")
            .nprobes(nprobes)
            .refine_factor(refine_factor)
            .select(columns)
            .limit(limit)
        )
        if where is not None:
            builder = builder.where(where, prefilter=True)
        return builder.to_arrow()

    def has_fts_index(self) -> bool:
        """Is the prompt's full-text index there? Cached per write token (listing indexes reads the manifest)."""
        version, cached = self.version, self._has_fts
        if cached is not None and cached[0] == version and not self._follows_writer:
            return cached[1]
        has = FTS_COLUMN in self._indexed_columns(index_type="FTS")
        self._has_fts = (version, has)
        return has

    def keyword_ids(self, words: list[str], phrases: list[str], where: str | None) -> np.ndarray:
        """Ids of the rows whose prompt holds every word and every phrase (full-text index), among `where`.

        The caller checks `has_fts_index` first; words are matched after stemming, so "foxes" finds "fox".
        """
        parts: list[Any] = [PhraseQuery(phrase, FTS_COLUMN) for phrase in phrases]
        if words:
            parts.append(MatchQuery(" ".join(words), FTS_COLUMN, operator=FullTextOperator.AND))
        query = parts[0] if len(parts) == 1 else BooleanQuery([(Occur.MUST, part) for part in parts])
        builder = self._table.search(query, query_type="fts").select(["id", "_score"]).limit(max(self.count(), 1))
        if where is not None:
            builder = builder.where(where, prefilter=True)
        return builder.to_arrow().column("id").to_numpy()

    def has_vector_index(self) -> bool:
        return any("vector" in index.columns for index in self._table.list_indices())

    def _indexed_columns(self, index_type: str | None = None) -> set[str]:
        indices = self._table.list_indices()
        return {c for index in indices if index_type in (None, index.index_type) for c in index.columns}

    # --- writes (each one atomic) -----------------------------------------------------------------------------------

    def upsert(self, rows: Iterable[dict[str, Any]]) -> Any:
        """Insert new paths and replace changed ones in one commit; returns LanceDB's MergeResult counts.

        Refuses (InvariantViolation) a batch with a non-finite or non-unit vector, or with one path twice: what the
        table holds must always be searchable as it is.
        """
        data = fragment_rows(rows, self.schema)
        if data.num_rows == 0:
            return None
        result = self._table.merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(data)
        self._wrote()
        return result

    def fragment_target(self) -> tuple[str, pa.Schema, str]:
        """Where and how other processes write fragments for `commit_fragments`: the table's URI (local, NFS or
        object storage), its Arrow schema and its Lance file format version."""
        dataset = self._table.to_lance()
        return dataset.uri, self.schema, dataset.data_storage_version

    def commit_fragments(self, fragments: list[Any]) -> None:
        """Make fragments written elsewhere (Ray workers, from `fragment_rows`) part of the table: one atomic
        append. Only the album's owner calls this, as for every other write."""
        import lance  # pylance, from the [scale] group: only the Ray engine writes fragments

        dataset = self._table.to_lance()
        lance.LanceDataset.commit(dataset.uri, lance.LanceOperation.Append(fragments), read_version=dataset.version)
        self._table.checkout_latest()  # the writer's handle does not look for commits it did not make itself
        self._wrote()

    def delete_ids(self, ids: Iterable[int]) -> int:
        id_values = sorted({int(i) for i in ids})
        if not id_values:
            return 0
        # Chunked so the SQL text stays small for huge deletions.
        for start in range(0, len(id_values), 10_000):
            self._table.delete(f"id IN ({id_list(id_values[start : start + 10_000])})")
            self._wrote()
        return len(id_values)

    def update_columns(self, rows: list[dict[str, Any]], key: str = "id") -> Any:
        """Replace some columns (e.g. x, y, cluster) of existing rows, matched on `key`, in one commit."""
        if not rows:
            return None
        names = list(rows[0])
        fields = [self.schema.field(name) for name in names]
        data = pa.Table.from_pylist(rows, schema=pa.schema(fields))
        result = self._table.merge_insert(key).when_matched_update_all().execute(data)
        self._wrote()
        return result

    def create_vector_index(self, num_partitions: int, num_sub_vectors: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the keyword form needs no lancedb config classes
            self._table.create_index(
                metric="cosine",
                vector_column_name="vector",
                index_type="IVF_PQ",
                num_partitions=num_partitions,
                num_sub_vectors=num_sub_vectors,
                replace=True,
            )
        self._wrote()

    def ensure_fts_index(self) -> None:
        """The prompt's full-text index, for a table made before tables had one. Housekeeping: a failure is logged
        (keyword search then matches substrings) and never fails the run that asked for it."""
        if self.has_fts_index():
            return
        try:
            self._table.create_index(FTS_COLUMN, config=FTS(with_position=True))
        except Exception:
            log.warning("building the prompt index of %s failed", self.name, exc_info=True)
        finally:
            self._wrote()

    def ensure_scalar_indexes(self) -> None:
        """BTREE indexes on `id` (every thumbnail, file and drawer request looks one up) and `path` (the upsert's
        merge key) once the table is big enough for them to pay; `compact` keeps them current. The prompt's
        full-text index at any size: an older table gains it here."""
        self.ensure_fts_index()
        if self.count() < SCALAR_INDEX_MIN_ROWS:
            return
        existing = self._indexed_columns()
        for column in SCALAR_INDEXED_COLUMNS:
            if column not in existing:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # create_scalar_index is "deprecated" in favour of config classes
                    self._table.create_scalar_index(column, index_type="BTREE")
                self._wrote()

    def compact(self) -> None:
        """Merge small fragments, fold new rows into the indexes, and prune all but the newest KEEP_VERSIONS.

        Housekeeping: a failure is logged and never fails the run that asked for it.
        """
        try:
            # Two calls: compaction and index updates commit versions of their own, so the versions to keep are
            # counted only once those exist; the second call has nothing left to merge and only prunes.
            self._table.optimize(cleanup_older_than=NOTHING_TO_PRUNE)
            self._table.optimize(cleanup_older_than=self._age_of_oldest_kept_version())
        except Exception:
            log.warning("compacting %s failed", self.name, exc_info=True)
        finally:
            self._wrote(commits=0)  # compaction moves rows: offsets cached against the old layout are stale
            self._commits_since_compact = 0

    def tidy(self) -> None:
        """After a run: compact and prune once COMPACT_AFTER_COMMITS commits have piled up since the last time, so a
        watched gallery neither rewrites its table per event nor keeps a version per event forever."""
        if self._commits_since_compact is None:  # first time in this process: what earlier runs left
            self._commits_since_compact = self.version_count() - 1
        if self._commits_since_compact >= COMPACT_AFTER_COMMITS:
            self.compact()

    def _age_of_oldest_kept_version(self) -> timedelta:
        """An age that LanceDB's prune ("older than now - age") cuts between the newest KEEP_VERSIONS and the rest.

        LanceDB reads its own clock a moment after ours, which moves the cut later by that moment: aiming at the
        midpoint between the oldest kept version and the newest pruned one leaves half their gap for it.
        """
        # Listing versions costs O(versions): fine here (once per run, on the owner's thread), never on a read path.
        stamps = sorted((_utc(entry["timestamp"]) for entry in self._table.list_versions()), reverse=True)
        if len(stamps) <= KEEP_VERSIONS:
            return NOTHING_TO_PRUNE
        kept, pruned = stamps[KEEP_VERSIONS - 1], stamps[KEEP_VERSIONS]
        cut = pruned + (kept - pruned) / 2
        return max(datetime.now(timezone.utc) - cut, timedelta(0))

    def version_count(self) -> int:
        """How many versions are kept on disk (benchmarks and tests; a write-path cost, never called on reads)."""
        return len(self._table.list_versions())

    # --- invariants -------------------------------------------------------------------------------------------------

    def repair(self, check_vectors_too: bool = True) -> RepairReport:
        """Restore `path` unique, `id` unique and (optionally) vectors finite and unit-length.

        Duplicate paths keep the newest row (largest mtime_ns, then largest id); an id shared by several paths stays
        with one of them and the others get fresh ids; rows with a damaged vector are dropped, so the next update
        finds their files new and embeds them again. Each fix is an atomic commit; nothing a user indexed is lost
        that an update cannot bring back.
        """
        rows = self._table.search().with_row_id(True).select(["id", "path", "mtime_ns"]).to_arrow()
        row_ids = rows.column("_rowid").to_numpy()
        ids = rows.column("id").to_numpy()
        paths = rows.column("path").to_pylist()
        mtimes = rows.column("mtime_ns").to_numpy()
        # Newest first, so the first row seen per path is the one kept.
        order = np.lexsort((-ids, -mtimes))
        seen_paths: set[str] = set()
        drop: list[int] = []
        for i in order.tolist():
            if paths[i] in seen_paths:
                drop.append(int(row_ids[i]))
            else:
                seen_paths.add(paths[i])
        dropped = set(drop)
        if drop:
            self._table.delete(f"_rowid IN ({id_list(drop)})")
            self._wrote()
        owner_of: dict[int, str] = {}
        collisions: list[str] = []
        for i in range(len(ids)):
            if int(row_ids[i]) in dropped:
                continue
            if int(ids[i]) in owner_of:
                collisions.append(paths[i])
            else:
                owner_of[int(ids[i])] = paths[i]
        next_id = (max(owner_of) if owner_of else 0) + 1
        for path in collisions:
            self._table.update(where=f"path = {sql_quote(path)}", values={"id": next_id})
            self._wrote()
            next_id += 1
        bad = 0
        if check_vectors_too:
            bad = self._drop_bad_vectors()
        report = RepairReport(duplicate_paths=len(drop), reassigned_ids=len(collisions), bad_vectors=bad)
        if report.changed:
            log.warning("repaired table %s: %s", self.name, report)
        return report

    def _drop_bad_vectors(self) -> int:
        ids, vectors = self.vectors()
        bad_ids = ids[~check_vectors(vectors)] if len(ids) else ids
        if len(bad_ids):
            self.delete_ids(bad_ids.tolist())
        return int(len(bad_ids))


# --- the catalog: which LanceDB table is each album's, and what is being built ---------------------------------------


class AlbumEntry(BaseModel):
    table: str  # the live table
    staging: str | None = None  # a rebuild or model change being built; swapped in when complete
    generation: int = 0  # for naming the next staging table
    interrupted: Literal["update", "rebuild"] | None = None  # a run that started and has not finished


class Catalog(BaseModel):
    format: int = CATALOG_FORMAT
    albums: dict[str, AlbumEntry] = Field(default_factory=dict)


class Store:
    """The LanceDB database in the data dir: one live table per album key (plus, during a rebuild, its staging
    table), opened once and cached. `index/albums.json` names them; it is rewritten atomically on every change."""

    def __init__(self, root: Path, *, read_only: bool = False) -> None:
        """`read_only`: a process that reads while the daemon writes (the CLI's search): every read then checks for
        the writer's newer commits. The writer itself sees its own writes, so its reads skip that check."""
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.read_only = read_only
        self._db = lancedb.connect(str(root), read_consistency_interval=timedelta(0) if read_only else None)
        self._lock = threading.RLock()
        self._tables: dict[str, AlbumTable] = {}  # LanceDB table name -> open table
        self._names: set[str] | None = None  # the tables on disk; the writer keeps it current, a reader re-lists
        # Serials start at the clock so a restarted daemon never hands out a token (and map ETag) an old one did.
        self._serials = itertools.count(time.time_ns())
        self._catalog = self._read_catalog()

    # --- catalog ----------------------------------------------------------------------------------------------------

    @property
    def _catalog_path(self) -> Path:
        return self.root / "albums.json"

    def _read_catalog(self) -> Catalog:
        try:
            return Catalog.model_validate_json(self._catalog_path.read_bytes())
        except FileNotFoundError:
            return Catalog()
        except (OSError, ValidationError):
            # Tables are named after their album unless a rebuild swapped one in; without the file we fall back to
            # that name, which loses at most an unfinished staging table.
            log.warning("%s is unreadable; using default table names", self._catalog_path, exc_info=True)
            return Catalog()

    def _save_catalog(self) -> None:
        config.write_atomic(self._catalog_path, self._catalog.model_dump_json(indent=1).encode())

    def _entry(self, album_key: str) -> AlbumEntry:
        return self._catalog.albums.get(album_key) or AlbumEntry(table=album_key)

    def _table_names(self) -> set[str]:
        """Listed once by the writer (listing is a directory walk: 1,000 albums made `GET /albums` take seconds)."""
        if self._names is None or self.read_only:
            names: set[str] = set()
            page_token = None
            while True:
                result = self._db.list_tables(page_token=page_token)
                names.update(result.tables)
                page_token = result.page_token
                if not page_token:
                    break
            self._names = names
        return self._names

    # --- opening ----------------------------------------------------------------------------------------------------

    def _open_name(self, name: str) -> AlbumTable | None:
        with self._lock:
            cached = self._tables.get(name)
            if cached is not None:
                return cached
            if name not in self._table_names():
                return None
            lance_table = self._db.open_table(name)
            info = TableInfo.from_schema_metadata(lance_table.schema.metadata)
            if info is None:
                return None
            missing = missing_nullable_fields(lance_table.schema, info.dim)
            if missing and not self.read_only:  # a reader sees them once the writer has added them
                log.info("adding columns %s to table %s", [field.name for field in missing], name)
                lance_table.add_columns(missing)  # one commit; the schema metadata (TableInfo) is kept
            table = AlbumTable(lance_table, info, next(self._serials), follows_writer=self.read_only)
            self._tables[name] = table
            return table

    def open(self, album_key: str) -> AlbumTable | None:
        """The album's live table, or None when it was never indexed. Cached: the second call costs a dict lookup."""
        with self._lock:
            if not self.read_only:
                return self._open_name(self._entry(album_key).table)
            self._catalog = self._read_catalog()  # the writer may have swapped a rebuild in since
            try:
                return self._open_name(self._entry(album_key).table)
            except RuntimeError as exc:
                # The writer swapped a rebuild in and dropped the old table between our catalog read and the open:
                # the catalog now names the new one.
                if "Not found" not in str(exc):
                    raise
                self._catalog = self._read_catalog()
                return self._open_name(self._entry(album_key).table)

    def has_table(self, album_key: str) -> bool:
        return self.open(album_key) is not None

    def _create(self, name: str, info: TableInfo) -> AlbumTable:
        schema = image_row_model(info.dim).to_arrow_schema().with_metadata(info.to_schema_metadata())
        lance_table = self._db.create_table(name, schema=schema, mode="overwrite")
        self._table_names().add(name)
        table = AlbumTable(lance_table, info, next(self._serials))
        table.ensure_fts_index()  # on the empty table: no build cost now, every row is found from the first batch
        self._tables[name] = table
        return table

    def create(self, album_key: str, info: TableInfo) -> AlbumTable:
        """A new, empty live table for the album (its first index); replaces any table it had."""
        with self._lock:
            entry = self._entry(album_key)
            self._tables.pop(entry.table, None)
            table = self._create(entry.table, info)
            self._catalog.albums[album_key] = entry
            self._save_catalog()
            return table

    # --- staging: rebuilds and model changes ------------------------------------------------------------------------

    def staging(self, album_key: str, info: TableInfo) -> AlbumTable:
        """The album's staging table for `info`: the one a killed rebuild left (to resume into), else a new one."""
        with self._lock:
            entry = self._entry(album_key)
            if entry.staging is not None:
                existing = self._open_name(entry.staging)
                if existing is not None and existing.info == info:
                    return existing
                self._drop_name(entry.staging)
            entry.generation += 1
            entry.staging = f"{album_key}.v{entry.generation}"  # '.' never occurs in an album key: see album_key_of
            table = self._create(entry.staging, info)
            self._catalog.albums[album_key] = entry
            self._save_catalog()
            return table

    def open_staging(self, album_key: str) -> AlbumTable | None:
        with self._lock:
            name = self._entry(album_key).staging
            return self._open_name(name) if name else None

    def swap_in_staging(self, album_key: str) -> AlbumTable:
        """Make the staging table live (one atomic file write), then drop the old one."""
        with self._lock:
            entry = self._entry(album_key)
            if entry.staging is None:
                raise RuntimeError(f"album {album_key} has no staging table")
            old, entry.table, entry.staging = entry.table, entry.staging, None
            self._catalog.albums[album_key] = entry
            self._save_catalog()
            self._drop_name(old)
            table = self._open_name(entry.table)
            assert table is not None
            return table

    def drop_staging(self, album_key: str) -> None:
        with self._lock:
            entry = self._entry(album_key)
            if entry.staging is not None:
                self._drop_name(entry.staging)
                entry.staging = None
                self._catalog.albums[album_key] = entry
                self._save_catalog()

    # --- interrupted runs -------------------------------------------------------------------------------------------

    def mark_interrupted(self, album_key: str, mode: Literal["update", "rebuild"] | None) -> None:
        """Record that a run started (None: that it finished), so a daemon that was killed resumes it at start."""
        with self._lock:
            entry = self._entry(album_key)
            if entry.interrupted == mode:
                return
            entry.interrupted = mode
            self._catalog.albums[album_key] = entry
            self._save_catalog()

    def interrupted_runs(self) -> dict[str, Literal["update", "rebuild"]]:
        with self._lock:
            return {key: entry.interrupted for key, entry in self._catalog.albums.items() if entry.interrupted}

    # --- dropping ---------------------------------------------------------------------------------------------------

    def _drop_name(self, name: str) -> None:
        self._tables.pop(name, None)
        if name in self._table_names():
            self._db.drop_table(name)
            self._table_names().discard(name)

    def drop(self, album_key: str) -> None:
        """Drop the album's live and staging tables and forget it."""
        with self._lock:
            entry = self._entry(album_key)
            for name in (entry.table, entry.staging):
                if name:
                    self._drop_name(name)
            if self._catalog.albums.pop(album_key, None) is not None:
                self._save_catalog()

    def drop_orphans(self) -> list[str]:
        """Tables no album names (a crash between a swap and the old table's drop): dropped. Only the writer calls
        this; a name without a '.' is an album key's own table and is left for the album list to decide."""
        with self._lock:
            named = {n for entry in self._catalog.albums.values() for n in (entry.table, entry.staging) if n}
            orphans = sorted(name for name in self._table_names() if "." in name and name not in named)
            for name in orphans:
                log.info("dropping orphaned table %s", name)
                self._drop_name(name)
            return orphans
