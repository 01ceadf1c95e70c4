"""LanceDB tables: one per album, the single source of truth for what is indexed.

This is the only module that imports lancedb. Its API is synchronous (LanceDB's sync client); async callers wrap
calls in `asyncio.to_thread`. Every write is one atomic LanceDB version, so a process killed between writes leaves
the table exactly as the last finished batch left it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.pydantic import LanceModel, Vector
from pydantic import BaseModel

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_META_PREFIX = b"photomap."
# Columns every caller may read without pulling the vectors (which are 2 KB a row).
STAT_COLUMNS = ["id", "path", "mtime_ns", "size"]
# Non-null columns a writer may leave out (Arrow does not apply the row model's defaults).
_ROW_DEFAULTS: dict[str, Any] = {"loras": [], "has_recallable": False, "metadata_json": "{}"}


class TableInfo(BaseModel):
    """Per-table facts kept in the Arrow schema metadata: a model change means every vector must be re-embedded."""

    model: str
    pretrained: str
    dim: int
    schema_version: int = SCHEMA_VERSION

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

    def same_embedding(self, other: TableInfo) -> bool:
        return (self.model, self.pretrained, self.dim) == (other.model, other.pretrained, other.dim)


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
        x: float | None = None  # map position, filled by mapview
        y: float | None = None
        cluster: int | None = None

    return ImageRow


def sql_quote(value: str) -> str:
    """A SQL string literal for LanceDB's `.where()`: request values never go into SQL any other way."""
    return "'" + value.replace("'", "''") + "'"


def sql_like_prefix(prefix: str) -> str:
    """A LIKE pattern matching strings that start with `prefix`, with LIKE's wildcards escaped."""
    escaped = re.sub(r"([\\%_])", r"\\\1", prefix)
    return sql_quote(escaped + "%") + " ESCAPE '\\'"


@dataclass(frozen=True)
class StatRow:
    id: int
    mtime_ns: int
    size: int


class AlbumTable:
    """One album's rows."""

    def __init__(self, table: Any, info: TableInfo) -> None:
        self._table = table
        self.info = info
        self.schema: pa.Schema = table.schema

    # --- reads ------------------------------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._table.count_rows())

    def stat_index(self) -> dict[str, StatRow]:
        """path → (id, mtime_ns, size) for every row: all the diff needs, without reading vectors."""
        columns = self.arrow(STAT_COLUMNS).to_pydict()
        return {
            path: StatRow(id=row_id, mtime_ns=mtime, size=size)
            for row_id, path, mtime, size in zip(columns["id"], columns["path"], columns["mtime_ns"], columns["size"])
        }

    def max_id(self) -> int:
        ids = self.arrow(["id"]).column("id")
        return int(pa.compute.max(ids).as_py() or 0) if len(ids) else 0

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

    def search(self) -> Any:
        """LanceDB's query builder on the vector column, for search.py (cosine)."""
        return self._table.search(vector_column_name="vector")

    @property
    def lance_table(self) -> Any:
        return self._table

    # --- writes (each one atomic) -----------------------------------------------------------------------------------

    def upsert(self, rows: Iterable[dict[str, Any]]) -> Any:
        """Insert new paths and replace changed ones in one commit; returns LanceDB's MergeResult counts."""
        data = pa.Table.from_pylist([{**_ROW_DEFAULTS, **row} for row in rows], schema=self.schema)
        if data.num_rows == 0:
            return None
        return (
            self._table.merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(data)
        )

    def delete_ids(self, ids: Iterable[int]) -> int:
        id_list = sorted({int(i) for i in ids})
        if not id_list:
            return 0
        # Chunked so the SQL text stays small for huge deletions.
        for start in range(0, len(id_list), 10_000):
            chunk = id_list[start : start + 10_000]
            self._table.delete(f"id IN ({','.join(map(str, chunk))})")
        return len(id_list)

    def update_columns(self, rows: list[dict[str, Any]], key: str = "id") -> Any:
        """Replace some columns (e.g. x, y, cluster) of existing rows, matched on `key`, in one commit."""
        if not rows:
            return None
        names = list(rows[0])
        fields = [self.schema.field(name) for name in names]
        data = pa.Table.from_pylist(rows, schema=pa.schema(fields))
        return self._table.merge_insert(key).when_matched_update_all().execute(data)

    def optimize(self) -> None:
        """Compact small fragments and prune old versions; after a large update, not after every batch."""
        try:
            self._table.optimize()
        except Exception:  # optimisation is housekeeping: a failure must not fail the index run
            log.warning("optimize failed for %s", self._table.name, exc_info=True)


class Store:
    """The LanceDB database in the data dir; one table per album key."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self._db = lancedb.connect(str(root))

    def _table_names(self) -> set[str]:
        result = self._db.list_tables()
        names = getattr(result, "tables", result)
        return set(names)

    def has_table(self, album_key: str) -> bool:
        return album_key in self._table_names()

    def table_info(self, album_key: str) -> TableInfo | None:
        if not self.has_table(album_key):
            return None
        return TableInfo.from_schema_metadata(self._db.open_table(album_key).schema.metadata)

    def open(self, album_key: str) -> AlbumTable | None:
        """The album's table as it is, or None when it was never indexed."""
        if not self.has_table(album_key):
            return None
        table = self._db.open_table(album_key)
        info = TableInfo.from_schema_metadata(table.schema.metadata)
        if info is None:
            return None
        return AlbumTable(table, info)

    def open_for_indexing(self, album_key: str, info: TableInfo, rebuild: bool = False) -> AlbumTable:
        """The table to index into: created when missing, recreated (empty) for a rebuild or a model change."""
        existing = self.open(album_key)
        if existing is not None and not rebuild and existing.info == info:
            return existing
        if existing is not None:
            log.info("recreating table %s (rebuild=%s, was %s, now %s)", album_key, rebuild, existing.info, info)
        schema = image_row_model(info.dim).to_arrow_schema().with_metadata(info.to_schema_metadata())
        table = self._db.create_table(album_key, schema=schema, mode="overwrite")
        return AlbumTable(table, info)

    def drop(self, album_key: str) -> None:
        if self.has_table(album_key):
            self._db.drop_table(album_key)
