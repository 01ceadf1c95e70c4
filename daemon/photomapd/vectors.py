"""Album vectors for ranking: an in-memory matrix per table version for exact search, and the ANN index.

The table stays the source of truth. `VectorCache` only saves re-reading 2 KB a row per query (~1 s per 100k rows),
and is keyed on the table's version so any write is seen by the next query. Past `ANN_MIN_ROWS` rows a LanceDB
IVF-PQ index answers instead (`ensure_ann_index`, called by the indexer after a run), and no matrix is held.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from photomapd.duplicates import DuplicateGroup, duplicate_groups
from photomapd.store import AlbumTable

log = logging.getLogger(__name__)

# Exact search is one matrix-vector product: ~8 ms per 100k rows of 512 floats on a quiet 2-core machine, linear in
# rows (BENCHMARKS.md "Search"). At 200k it nears the 20 ms goal and the matrix holds 400 MB; past that an IVF-PQ
# index with a refine step answers at recall@10 >= 0.95 (1M: 23 ms against 144 ms exact) and holds nothing in memory.
# Below it, exact is exact, and no index build (a minute per 100k rows) is paid.
ANN_MIN_ROWS = 200_000
# IVF partitions of ~8k rows (123 at 1M); a query visits 3/4 of them, then search.py re-ranks the candidates with
# full vectors. Measured at 1M: 1/8 of sqrt(rows) partitions gave recall@10 0.80; 90 of ~123 gave 0.97.
ANN_ROWS_PER_PARTITION = 8_192
ANN_PROBE_SHARE = 3 / 4
ANN_MIN_NPROBES = 20
ANN_SUB_VECTORS_DIVISOR = 8  # PQ sub-vectors = dim / 8 (64 for 512-d)


TableVersion = tuple[int, str]


def table_version(table: AlbumTable) -> TableVersion:
    """The version number and its commit time: a dropped and re-created table starts again at version 1."""
    lance_table = table.lance_table
    version = int(lance_table.version)
    stamps = [entry["timestamp"] for entry in lance_table.list_versions() if entry["version"] == version]
    return version, str(stamps[0]) if stamps else ""


@dataclass(frozen=True)
class VectorMatrix:
    """One table version's vectors, rows sorted by id so filter results map to rows with a binary search."""

    version: TableVersion
    ids: np.ndarray  # int64[n], ascending
    vectors: np.ndarray  # float32[n, dim]
    offsets: np.ndarray  # int64[n]: each row's position in this version's scan order, for `take_offsets`

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Row position of each of `ids`, -1 for an id this version does not hold (a row written since)."""
        if len(self.ids) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.ids, ids), 0, len(self.ids) - 1)
        return np.where(self.ids[pos] == ids, pos, -1)


class VectorCache:
    """Each album's vector matrix in memory for exact search, reloaded when the table's version changes.

    The table stays the source of truth: this only saves re-reading 2 KB a row per query. One app holds one cache.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._matrices: dict[str, VectorMatrix] = {}
        self._groups: dict[str, tuple[TableVersion, float, list[DuplicateGroup]]] = {}

    def matrix(self, table: AlbumTable) -> VectorMatrix:
        name, version = table.lance_table.name, table_version(table)
        with self._lock:
            cached = self._matrices.get(name)
        if cached is not None and cached.version == version:
            return cached
        ids, vectors = table.vectors()
        order = np.argsort(ids, kind="stable")
        fresh = VectorMatrix(version, ids[order].astype(np.int64), np.ascontiguousarray(vectors[order]), order)
        with self._lock:
            self._matrices[name] = fresh
        return fresh

    def duplicates(self, table: AlbumTable, threshold: float) -> list[DuplicateGroup]:
        """Near-duplicate groups of the table's current version, computed once per (version, threshold)."""
        name, version = table.lance_table.name, table_version(table)
        with self._lock:
            cached = self._groups.get(name)
        if cached is not None and cached[:2] == (version, threshold):
            return cached[2]
        if table.count() < ANN_MIN_ROWS:
            matrix = self.matrix(table)
            ids, vectors = matrix.ids, matrix.vectors
        else:  # too big to keep in memory: read, group, let go
            ids, vectors = table.vectors()
        groups = duplicate_groups(ids, vectors, threshold)
        with self._lock:
            self._groups[name] = (version, threshold, groups)
        return groups

    def forget(self, album_key: str) -> None:
        with self._lock:
            self._matrices.pop(album_key, None)
            self._groups.pop(album_key, None)


def ann_partitions(rows: int) -> int:
    return max(1, math.ceil(rows / ANN_ROWS_PER_PARTITION))


def ann_nprobes(rows: int) -> int:
    # From the current row count, not the count at build time: a grown table gets more probes, never fewer.
    return max(ANN_MIN_NPROBES, math.ceil(ann_partitions(rows) * ANN_PROBE_SHARE))


def has_ann_index(table: AlbumTable) -> bool:
    return any("vector" in index.columns for index in table.lance_table.list_indices())


def ensure_ann_index(table: AlbumTable) -> bool:
    """Build the ANN index once the table is big enough to need one (the indexer calls this after a run).

    Returns True when an index exists afterwards. An existing index is left alone: rows added since are searched
    exactly beside it, and `AlbumTable.optimize()` folds them in.
    """
    rows = table.count()
    if rows < ANN_MIN_ROWS:
        return False
    if has_ann_index(table):
        return True
    log.info("building the ANN index for %s (%d rows)", table.lance_table.name, rows)
    with warnings.catch_warnings():
        # The keyword form keeps lancedb's config classes out of this module (store.py is its only importer).
        warnings.simplefilter("ignore", DeprecationWarning)
        table.lance_table.create_index(
            metric="cosine",
            vector_column_name="vector",
            index_type="IVF_PQ",
            num_partitions=ann_partitions(rows),
            num_sub_vectors=max(1, table.info.dim // ANN_SUB_VECTORS_DIVISOR),
            replace=True,
        )
    return True


def uses_ann(table: AlbumTable) -> bool:
    return table.count() >= ANN_MIN_ROWS and has_ann_index(table)
