"""Album vectors for ranking: an in-memory matrix per table version for exact search, and the ANN index.

The table stays the source of truth. `VectorCache` only saves re-reading 2 KB a row per query (~1 s per 100k rows),
and is keyed on the table's `version` token (the store bumps it after every write) so any write is seen by the next
query, without asking LanceDB for its versions (that costs O(commits) per call). The album's owner holds the cache. Past `ANN_MIN_ROWS` rows a LanceDB
IVF-PQ index answers instead (`ensure_ann_index`, called by the indexer after a run), and no matrix is held.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from photomapd.search.duplicates import DuplicateGroup, duplicate_groups
from photomapd.store import AlbumTable, check_vectors

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


TableVersion = tuple[int, int]


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
    Rows whose vector is not finite and unit-length (a damaged data file) are left out of the matrix, so no score is
    ever NaN, and `on_damage(table name)` tells the albums' owner, which repairs the table and re-embeds them.
    """

    def __init__(self, on_damage: Callable[[str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._matrices: dict[str, VectorMatrix] = {}
        self._groups: dict[str, tuple[TableVersion, float, list[DuplicateGroup]]] = {}
        self._on_damage = on_damage

    def matrix(self, table: AlbumTable) -> VectorMatrix:
        name, version = table.name, table.version
        with self._lock:
            cached = self._matrices.get(name)
        if cached is not None and cached.version == version:
            return cached
        ids, vectors = table.vectors()
        order = np.argsort(ids, kind="stable")
        is_sound = check_vectors(vectors[order]) if len(ids) else np.ones(0, dtype=bool)
        if not is_sound.all():
            log.warning("table %s has %d damaged vectors; leaving them out", name, int((~is_sound).sum()))
            order = order[is_sound]
            if self._on_damage is not None:
                self._on_damage(name)
        fresh = VectorMatrix(version, ids[order].astype(np.int64), np.ascontiguousarray(vectors[order]), order)
        with self._lock:
            self._matrices[name] = fresh
        return fresh

    def duplicates(self, table: AlbumTable, threshold: float) -> list[DuplicateGroup]:
        """Near-duplicate groups of the table's current version, computed once per (version, threshold)."""
        name, version = table.name, table.version
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

    def forget(self, table_name: str) -> None:
        with self._lock:
            self._matrices.pop(table_name, None)
            self._groups.pop(table_name, None)

    def __len__(self) -> int:
        """Albums whose matrix is held now (the status of a resting daemon; tests)."""
        return len(self._matrices)

    def clear(self) -> None:
        with self._lock:
            self._matrices.clear()
            self._groups.clear()

    def forget_album(self, album_key: str) -> None:
        """Drop the album's matrices, whichever table (live or a swapped-out one) they came from."""
        with self._lock:
            for cache in (self._matrices, self._groups):
                for name in [name for name in cache if name == album_key or name.startswith(album_key + ".")]:
                    del cache[name]


def ann_partitions(rows: int) -> int:
    return max(1, math.ceil(rows / ANN_ROWS_PER_PARTITION))


def ann_nprobes(rows: int) -> int:
    # From the current row count, not the count at build time: a grown table gets more probes, never fewer.
    return max(ANN_MIN_NPROBES, math.ceil(ann_partitions(rows) * ANN_PROBE_SHARE))


def ensure_ann_index(table: AlbumTable) -> bool:
    """Build the ANN index once the table is big enough to need one (the indexer calls this after a run).

    Returns True when an index exists afterwards. An existing index is left alone: rows added since are searched
    exactly beside it, and `AlbumTable.compact()` folds them in.
    """
    rows = table.count()
    if rows < ANN_MIN_ROWS:
        return False
    if table.has_vector_index():
        return True
    log.info("building the ANN index for %s (%d rows)", table.name, rows)
    table.create_vector_index(ann_partitions(rows), max(1, table.info.dim // ANN_SUB_VECTORS_DIVISOR))
    return True


def uses_ann(table: AlbumTable) -> bool:
    return table.count() >= ANN_MIN_ROWS and table.has_vector_index()
