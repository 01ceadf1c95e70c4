"""Search an album: filters as SQL, query vectors from text/image, exact or ANN ranking, paging, near-duplicates.

`filters_to_where` is the ONE place search filters become LanceDB SQL (the map reuses it); every request value goes
through `store.sql_quote`. Ranking is a plain matrix-vector product over the album's vectors (normalized at rest, so
the dot product is the cosine) plus a partial sort; past `ANN_MIN_ROWS` rows a LanceDB IVF index answers instead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from photomapd.errors import BadRequest, ImageNotFound, ModelMismatch
from photomapd.model_runner import ModelRunner
from photomapd.store import AlbumTable, sql_like_prefix, sql_quote
from photomapd.thumbs import load_image_bytes
from photomapd.vectors import (  # ensure_ann_index: re-exported for the indexer
    VectorCache,
    VectorMatrix,
    ann_nprobes,
    ensure_ann_index,
    table_version,
    uses_ann,
)

__all__ = ["SearchFilters", "SearchRequest", "SearchPage", "VectorCache", "ensure_ann_index", "filters_to_where",
           "query_vector", "search_table"]  # fmt: skip

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 1000  # CLIP reads 77 tokens; longer text is only truncated by the tokenizer, so cap the request
MAX_UPLOAD_BASE64_CHARS = 40 * 1024**2  # ~30 MB of image bytes: any real photo, well under the API's body cap
MAX_PAGE = 500  # results per page: a grid screen holds far fewer, and each result row is read from the table
MAX_OFFSET = 100_000  # deep paging past this is no longer "search"; it also bounds the ANN candidate count
PROMPT_PREVIEW_CHARS = 200  # the grid shows a line of the prompt; the drawer reads the full record


class SearchFilters(BaseModel):
    """What narrows a search or the map. Every field is optional; all given ones must hold (AND)."""

    model_config = ConfigDict(extra="forbid")

    folder: str | None = Field(default=None, max_length=4096)  # an album folder, or a sub-folder of one
    date_from: date | datetime | None = None  # inclusive
    date_to: date | datetime | None = None  # inclusive for a date (the whole day), exclusive for a date-time
    model: str | None = Field(default=None, max_length=512)
    lora: str | None = Field(default=None, max_length=512)
    seed: int | None = None
    generator: str | None = Field(default=None, max_length=64)
    prompt: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)  # case-insensitive substring of the prompt

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _date_only_stays_a_date(cls, value: Any) -> Any:
        # "2024-05-01" from a date picker must mean the day, not midnight: keep it a `date` whatever the input path.
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value)
        return value


def _sql_timestamp(moment: datetime) -> str:
    """A SQL timestamp literal; `created_at` is stored as naive UTC, so aware times are converted first."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return f"timestamp {sql_quote(moment.isoformat(sep=' '))}"


def _start_of(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time.min)


def _end_of(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value + timedelta(days=1), time.min)


def filters_to_where(filters: SearchFilters | None) -> str | None:
    """The LanceDB `.where()` text for `filters`, or None when nothing is filtered."""
    if filters is None:
        return None
    clauses: list[str] = []
    if filters.folder:
        folder = filters.folder.rstrip("/") or "/"
        sub_folders = sql_like_prefix(folder if folder.endswith("/") else folder + "/")
        clauses.append(f"(folder = {sql_quote(folder)} OR path LIKE {sub_folders})")
    if filters.date_from is not None:
        clauses.append(f"created_at >= {_sql_timestamp(_start_of(filters.date_from))}")
    if filters.date_to is not None:
        clauses.append(f"created_at < {_sql_timestamp(_end_of(filters.date_to))}")
    if filters.model:
        clauses.append(f"model = {sql_quote(filters.model)}")
    if filters.lora:
        clauses.append(f"array_has(loras, {sql_quote(filters.lora)})")
    if filters.seed is not None:
        clauses.append(f"seed = {int(filters.seed)}")
    if filters.generator:
        clauses.append(f"generator = {sql_quote(filters.generator)}")
    if filters.prompt:
        # strpos instead of LIKE: no wildcard escaping to get wrong, and '%' or '_' in a prompt match literally.
        clauses.append(f"strpos(lower(positive_prompt), lower({sql_quote(filters.prompt)})) > 0")
    return " AND ".join(clauses) if clauses else None


# --- requests -------------------------------------------------------------------------------------------------------


class SearchRequest(BaseModel):
    """`POST /albums/{key}/search`. No text and no image = browse: filters only, newest first."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    image_id: int | None = Field(default=None, ge=0)  # "more like this": an indexed image of this album
    image_base64: str | None = Field(default=None, max_length=MAX_UPLOAD_BASE64_CHARS)  # uploaded image bytes
    image_weight: float = Field(default=0.5, ge=0.0, le=1.0)  # image share of the query when text is given too
    negative_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    negative_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)
    sort: Literal["score", "date"] | None = None  # default: score for a query, date for a browse
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)

    @model_validator(mode="after")
    def _one_image_source(self) -> SearchRequest:
        if self.image_id is not None and self.image_base64:
            raise ValueError("give image_id or image_base64, not both")
        return self

    @property
    def has_query(self) -> bool:
        return bool(self.text and self.text.strip()) or self.image_id is not None or bool(self.image_base64)


def compose_query(
    text: np.ndarray | None,
    image: np.ndarray | None,
    negative: np.ndarray | None,
    image_weight: float = 0.5,
    negative_weight: float = 0.5,
) -> np.ndarray:
    """One unit query vector from normalized parts: a weighted blend of text and image, minus the negative text."""
    if text is not None and image is not None:
        query = (1.0 - image_weight) * text + image_weight * image
    elif text is not None or image is not None:
        query = text if text is not None else image
    else:
        raise BadRequest("A negative text needs a text or an image to search for")
    query = np.asarray(query, dtype=np.float32)
    if negative is not None:
        query = query - negative_weight * negative
    norm = float(np.linalg.norm(query))
    if norm < 1e-6:  # the parts cancel out (e.g. negative == text): nothing left to rank by
        raise BadRequest("The negative text cancels the query out: there is nothing left to search for")
    return (query / norm).astype(np.float32)


# --- responses ------------------------------------------------------------------------------------------------------

RESULT_COLUMNS = ["id", "width", "height", "created_at", "generator", "model", "positive_prompt"]


class SearchHit(BaseModel):
    id: int
    score: float | None  # cosine similarity; None in a browse (no query)
    width: int
    height: int
    created_at: datetime | None
    generator: str | None
    model: str | None
    positive_prompt: str | None  # the first PROMPT_PREVIEW_CHARS characters


class SearchPage(BaseModel):
    results: list[SearchHit]
    total: int  # matches before paging (with an ANN index and a min_score: those found among the nearest)
    offset: int
    limit: int


# --- ranking --------------------------------------------------------------------------------------------------------

MAX_ANN_CANDIDATES = 2_000  # nearest rows fetched when an ANN search must sort by date
ANN_REFINE_FACTOR = 10  # re-rank 10x the wanted rows with full vectors: PQ codes alone give recall@10 ~0.5


@dataclass
class _Ranked:
    ids: np.ndarray  # the page, in order
    scores: np.ndarray | None
    total: int
    rows: pa.Table | None = None  # the page's RESULT_COLUMNS when the ranking already has them


def _date_order(ids: np.ndarray, dates: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Indices that sort rows newest first, undated rows last, ties by id (newest id first)."""
    stamps = pa.compute.cast(dates, pa.int64()).to_numpy(zero_copy_only=False)
    is_undated = np.asarray(pa.compute.is_null(dates).to_numpy(zero_copy_only=False), dtype=bool)
    stamps = np.where(is_undated, np.iinfo(np.int64).min, stamps)
    return np.lexsort((-ids, -stamps.astype(np.float64), is_undated))


def _browse(table: AlbumTable, where: str | None, offset: int, limit: int) -> _Ranked:
    rows = table.arrow(["id", "created_at"], where)
    ids = rows.column("id").to_numpy()
    order = _date_order(ids, rows.column("created_at"))
    return _Ranked(ids[order][offset : offset + limit], None, len(ids))


def _exact(table: AlbumTable, cache: VectorCache, query: np.ndarray, request: SearchRequest, where: str | None) -> _Ranked:
    matrix = cache.matrix(table)
    scores = matrix.vectors @ query  # rows are unit vectors at rest: the dot product is the cosine
    end = request.offset + request.limit
    if request.sort == "date" or where is not None:
        rows = table.arrow(["id", "created_at"], where)
        positions = matrix.positions(rows.column("id").to_numpy())
        is_kept = positions >= 0
        if request.min_score is not None:
            is_kept &= scores[positions] >= request.min_score  # a -1 position is already dropped by is_kept
        candidates = positions[is_kept]
        dates = rows.column("created_at").filter(pa.array(is_kept))
    else:
        candidates = np.arange(len(matrix.ids))
        if request.min_score is not None:
            candidates = candidates[scores >= request.min_score]
        dates = None
    if request.sort == "date" and dates is not None:
        page = candidates[_date_order(matrix.ids[candidates], dates)][request.offset : end]
        return _Ranked(matrix.ids[page], scores[page], len(candidates), _rows_at(table, matrix, page))
    if end < len(candidates):  # a partial sort: only the first `end` rows need ordering
        candidates_top = candidates[np.argpartition(-scores[candidates], end - 1)[:end]]
    else:
        candidates_top = candidates
    page = candidates_top[np.lexsort((matrix.ids[candidates_top], -scores[candidates_top]))][request.offset : end]
    return _Ranked(matrix.ids[page], scores[page], len(candidates), _rows_at(table, matrix, page))


def _rows_at(table: AlbumTable, matrix: VectorMatrix, positions: np.ndarray) -> pa.Table | None:
    """The page's rows read by position (~2 ms) instead of an `id IN` scan (~10 ms at 100k rows); None when the
    table moved on since the matrix was read, so positions no longer name the same rows."""
    if len(positions) == 0 or table_version(table) != matrix.version:
        return None
    offsets = np.sort(matrix.offsets[positions])  # take returns rows in offset order; _page_rows reorders by id
    rows = table.lance_table.take_offsets(offsets.tolist()).select(RESULT_COLUMNS).to_arrow()
    is_same = sorted(rows.column("id").to_pylist()) == sorted(matrix.ids[positions].tolist())
    return rows if is_same else None


def _approximate(table: AlbumTable, query: np.ndarray, request: SearchRequest, where: str | None) -> _Ranked:
    """The nearest rows by the ANN index (rows added since it was built are searched exactly beside it)."""
    end = request.offset + request.limit
    wanted = MAX_ANN_CANDIDATES if request.sort == "date" else end
    builder = (
        table.lance_table.search(query, vector_column_name="vector")
        .distance_type("cosine")
        .nprobes(ann_nprobes(table.count()))
        .refine_factor(ANN_REFINE_FACTOR)
        .select(RESULT_COLUMNS)
        .limit(wanted)
    )
    if where is not None:
        builder = builder.where(where, prefilter=True)
    hits = builder.to_arrow()
    ids = hits.column("id").to_numpy()
    scores = 1.0 - hits.column("_distance").to_numpy().astype(np.float32)  # cosine distance = 1 - cosine
    is_kept = np.ones(len(ids), dtype=bool) if request.min_score is None else scores >= request.min_score
    ids, scores, hits = ids[is_kept], scores[is_kept], hits.filter(pa.array(is_kept))
    if request.sort == "date":
        order = _date_order(ids, hits.column("created_at"))[request.offset : end]
        return _Ranked(ids[order], scores[order], len(ids), hits.take(pa.array(order)))
    total = len(ids) if request.min_score is not None else int(table.lance_table.count_rows(where))
    return _Ranked(ids[request.offset : end], scores[request.offset : end], total, hits.slice(request.offset, request.limit))


def _id_list(ids: np.ndarray) -> str:
    return ",".join(str(int(i)) for i in ids)


def _page_rows(table: AlbumTable, ranked: _Ranked) -> list[SearchHit]:
    if len(ranked.ids) == 0:
        return []
    rows = ranked.rows if ranked.rows is not None else table.arrow(RESULT_COLUMNS, f"id IN ({_id_list(ranked.ids)})")
    by_id = {row["id"]: row for row in rows.select(RESULT_COLUMNS).to_pylist()}
    hits = []
    for index, row_id in enumerate(ranked.ids.tolist()):
        row = by_id.get(row_id)
        if row is None:  # deleted between ranking and reading: drop it rather than fail the page
            continue
        prompt = row["positive_prompt"]
        score = None if ranked.scores is None else round(float(ranked.scores[index]), 5)
        hits.append(SearchHit(**{**row, "positive_prompt": prompt[:PROMPT_PREVIEW_CHARS] if prompt else prompt}, score=score))
    return hits


def search_table(
    table: AlbumTable, cache: VectorCache, query: np.ndarray | None, request: SearchRequest
) -> SearchPage:
    """One page of results: ranked by `query` (or browsed newest first without one), filtered, cut and paged.

    Blocking (table reads, matrix product): call it in a thread.
    """
    where = filters_to_where(request.filters)
    if query is None:
        ranked = _browse(table, where, request.offset, request.limit)
    else:
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != table.info.dim:
            raise BadRequest(f"The query vector has {query.shape[0]} dimensions; this album's model uses {table.info.dim}")
        request = request.model_copy(update={"sort": request.sort or "score"})
        if uses_ann(table):
            cache.forget(table.lance_table.name)  # the index answers now: free the matrix
            ranked = _approximate(table, query, request, where)
        else:
            ranked = _exact(table, cache, query, request, where)
    return SearchPage(results=_page_rows(table, ranked), total=ranked.total, offset=request.offset, limit=request.limit)


# --- query vectors --------------------------------------------------------------------------------------------------


def _decode_base64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("image_base64 is not valid base64") from exc


def _check_same_model(table: AlbumTable, runner: ModelRunner) -> None:
    """Text and uploaded images are embedded by the daemon's model; vectors of another model are not comparable."""
    if (table.info.model, table.info.pretrained) != runner.embedding_names:
        raise ModelMismatch()


async def query_vector(request: SearchRequest, table: AlbumTable, runner: ModelRunner) -> np.ndarray | None:
    """The unit query vector for `request` (None for a browse). Text and uploads go through the model thread."""
    if not request.has_query:
        if request.negative_text:
            raise BadRequest("A negative text needs a text or an image to search for")
        return None
    texts = [text for text in (request.text, request.negative_text) if text and text.strip()]
    if texts or request.image_base64:
        _check_same_model(table, runner)
    image = None
    if request.image_id is not None:
        row = await asyncio.to_thread(table.get, request.image_id, ["vector"])
        if row is None:
            raise ImageNotFound()
        image = np.asarray(row["vector"], dtype=np.float32)
    elif request.image_base64:
        upload = request.image_base64
        pixels = await asyncio.to_thread(lambda: load_image_bytes(_decode_base64(upload)))
        image = (await runner.run(lambda embedder, images: embedder.encode_images(images), [pixels]))[0]
    encoded = iter(await runner.run(lambda embedder, batch: embedder.encode_texts(batch), texts) if texts else ())
    text = next(encoded) if request.text and request.text.strip() else None
    negative = next(encoded) if request.negative_text and request.negative_text.strip() else None
    return compose_query(text, image, negative, request.image_weight, request.negative_weight)
