"""Ranking an album's rows for one query: exact (a matrix-vector product over unit vectors at rest, plus a partial
sort) or, past `ANN_MIN_ROWS` rows, a LanceDB IVF index; browse (no query) by date; filters, prompt keywords,
the score cut (automatic for text queries), paging.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from photomapd.errors import BadRequest
from photomapd.search.filters import filters_to_where
from photomapd.search.query import SearchRequest
from photomapd.search.text import keyword_ids as find_keyword_ids
from photomapd.search.vectors import VectorCache, VectorMatrix, ann_nprobes, uses_ann
from photomapd.store import AlbumTable, id_list

log = logging.getLogger(__name__)

PROMPT_PREVIEW_CHARS = 200  # the grid shows a line of the prompt; the drawer reads the full record

RESULT_COLUMNS = [
    "id", "path", "image_name", "width", "height", "created_at", "generator", "model", "positive_prompt", "starred"
]


class SearchHit(BaseModel):
    id: int
    name: str  # the file's name (a board image: its InvokeAI image name), for alt texts and the map's tooltip
    score: float | None  # cosine similarity; None in a browse (no query)
    width: int
    height: int
    created_at: datetime | None
    generator: str | None
    model: str | None
    positive_prompt: str | None  # the first PROMPT_PREVIEW_CHARS characters
    starred: bool  # an InvokeAI star (board album) or a local favourite: the grid marks it


class SearchCut(BaseModel):
    """Which results a ranked search kept, so the panel can say "42 best matches of 524 · Show all"."""

    mode: Literal["auto", "min_score", "none"]
    min_score: float | None = None  # the score a result needed (None: no cut)
    best_score: float | None = None  # the best score among the matches, before the cut


class SearchPage(BaseModel):
    results: list[SearchHit]
    total: int  # matches that pass the cut, before paging (ANN with a cut: those found among the nearest)
    offset: int
    limit: int
    ranked: int  # matches of the filters and keywords, before the score cut
    cut: SearchCut = SearchCut(mode="none")


# --- ranking --------------------------------------------------------------------------------------------------------

MAX_ANN_CANDIDATES = 2_000  # nearest rows fetched when an ANN search must sort by date or cut by score
ANN_REFINE_FACTOR = 10  # re-rank 10x the wanted rows with full vectors: PQ codes alone give recall@10 ~0.5
# The automatic cut of a text query: keep what scores within this much of the best match. Relative, because CLIP
# models differ in where their text-to-image cosines sit (ViT-B-32 ~0.15-0.35, SigLIP lower), while an image that
# shows what the text says scores within a few hundredths of the best one and one that doesn't sits a tenth or more
# below; 0.05 keeps near misses and drops the long tail of a gallery that is "all ranked" otherwise. The panel can
# turn it off (`auto_cut: false`) or give its own absolute `min_score`.
AUTO_CUT_BELOW_BEST = 0.05
KEYWORD_ID_CHUNK = 10_000  # ids per `id IN (...)` read when ranking keyword matches without a matrix


@dataclass
class _Ranked:
    ids: np.ndarray  # the page, in order
    scores: np.ndarray | None
    total: int
    rows: pa.Table | None = None  # the page's RESULT_COLUMNS when the ranking already has them
    ranked: int | None = None  # before the cut (None: = total)
    cut: SearchCut = field(default_factory=lambda: SearchCut(mode="none"))


def _date_order(ids: np.ndarray, dates: pa.ChunkedArray | pa.Array, newest: bool = True) -> np.ndarray:
    """Indices that sort rows newest (or oldest) first, undated rows last, ties by id in the same direction."""
    stamps = pa.compute.cast(dates, pa.int64()).to_numpy(zero_copy_only=False)
    is_undated = np.asarray(pa.compute.is_null(dates).to_numpy(zero_copy_only=False), dtype=bool)
    stamps = np.where(is_undated, np.iinfo(np.int64).min, stamps).astype(np.float64)
    sign = -1 if newest else 1
    return np.lexsort((sign * ids, sign * stamps, is_undated))


def _cuts(request: SearchRequest) -> bool:
    """Will this ranked search cut by score? (Known before the best score is, for how many ANN rows to fetch.)"""
    return request.min_score is not None or _auto_cuts(request)


def _auto_cuts(request: SearchRequest) -> bool:
    # Text only: "more like this" lists a neighbourhood, which has no "matching" and "not matching" images.
    return request.auto_cut and request.has_text and request.image_id is None and not request.image_base64


def _cut(request: SearchRequest, best: float | None) -> tuple[SearchCut, float | None]:
    """The cut to report and the threshold to apply (None: keep everything)."""
    best_score = None if best is None else round(best, 5)
    if request.min_score is not None:
        return SearchCut(mode="min_score", min_score=request.min_score, best_score=best_score), request.min_score
    if _auto_cuts(request) and best is not None:
        threshold = best - AUTO_CUT_BELOW_BEST
        return SearchCut(mode="auto", min_score=round(threshold, 5), best_score=best_score), threshold
    return SearchCut(mode="none", best_score=best_score), None


def _select(
    ids: np.ndarray, scores: np.ndarray, dates: pa.ChunkedArray | pa.Array | None, request: SearchRequest
) -> tuple[np.ndarray, int, SearchCut]:
    """Of scored candidates: the page's indices in order, how many pass the cut, and the cut."""
    best = float(scores.max()) if len(scores) else None
    cut, threshold = _cut(request, best)
    kept = np.arange(len(ids)) if threshold is None else np.flatnonzero(scores >= threshold)
    total, end = len(kept), request.offset + request.limit
    if request.sort == "best" or dates is None:
        if end < len(kept):  # a partial sort: only the first `end` rows need ordering
            kept = kept[np.argpartition(-scores[kept], end - 1)[:end]]
        page = kept[np.lexsort((ids[kept], -scores[kept]))][request.offset : end]
        return page, total, cut
    kept_dates = dates.take(pa.array(kept)) if threshold is not None else dates
    page = kept[_date_order(ids[kept], kept_dates, newest=request.sort == "newest")][request.offset : end]
    return page, total, cut


def _browse(table: AlbumTable, where: str | None, keyword_ids: np.ndarray | None, request: SearchRequest) -> _Ranked:
    rows = table.arrow(["id", "created_at"], where)
    ids, dates = rows.column("id").to_numpy(), rows.column("created_at")
    if keyword_ids is not None:
        is_match = np.isin(ids, keyword_ids)
        ids, dates = ids[is_match], dates.filter(pa.array(is_match))
    order = _date_order(ids, dates, newest=request.sort == "newest")
    return _Ranked(ids[order][request.offset : request.offset + request.limit], None, len(ids))


def _exact(
    table: AlbumTable,
    cache: VectorCache,
    query: np.ndarray,
    request: SearchRequest,
    where: str | None,
    keyword_ids: np.ndarray | None,
) -> _Ranked:
    matrix = cache.matrix(table)
    scores = matrix.vectors @ query  # rows are unit vectors at rest: the dot product is the cosine
    dates = None
    if keyword_ids is not None and request.sort == "best":  # the keyword matches already honour `where`
        positions = matrix.positions(keyword_ids)
        candidates = np.sort(positions[positions >= 0])
    elif where is not None or request.sort != "best":
        rows = table.arrow(["id", "created_at"], where)
        row_ids = rows.column("id").to_numpy()
        positions = matrix.positions(row_ids)
        is_kept = positions >= 0
        if keyword_ids is not None:
            is_kept &= np.isin(row_ids, keyword_ids)
        candidates = positions[is_kept]
        dates = rows.column("created_at").filter(pa.array(is_kept))
    else:
        candidates = np.arange(len(matrix.ids))
    page, total, cut = _select(matrix.ids[candidates], scores[candidates], dates, request)
    positions = candidates[page]
    return _Ranked(
        matrix.ids[positions], scores[positions], total, _rows_at(table, matrix, positions), len(candidates), cut
    )


def _exact_subset(table: AlbumTable, query: np.ndarray, request: SearchRequest, ids: np.ndarray) -> _Ranked:
    """Keyword matches of a table the ANN index answers for (no matrix is held): their vectors read and ranked
    exactly. Keyword matches are a small share of a big album, so this reads far less than the matrix would."""
    if len(ids) == 0:
        return _Ranked(ids, np.zeros(0, dtype=np.float32), 0, None, 0, _cut(request, None)[0])
    rows = pa.concat_tables([
        table.arrow(["id", "created_at", "vector"], f"id IN ({id_list(ids[start : start + KEYWORD_ID_CHUNK])})")
        for start in range(0, len(ids), KEYWORD_ID_CHUNK)
    ])  # fmt: skip
    row_ids = rows.column("id").to_numpy()
    flat = rows.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False)
    scores = flat.reshape(len(row_ids), table.info.dim).astype(np.float32, copy=False) @ query
    is_sound = np.isfinite(scores)  # a damaged vector never ranks, and NaN never reaches JSON
    row_ids, scores, dates = row_ids[is_sound], scores[is_sound], rows.column("created_at").filter(pa.array(is_sound))
    page, total, cut = _select(row_ids, scores, dates, request)
    return _Ranked(row_ids[page], scores[page], total, None, len(row_ids), cut)


def _approximate(table: AlbumTable, query: np.ndarray, request: SearchRequest, where: str | None) -> _Ranked:
    """The nearest rows by the ANN index (rows added since it was built are searched exactly beside it)."""
    end = request.offset + request.limit
    wanted = max(MAX_ANN_CANDIDATES, end) if request.sort != "best" or _cuts(request) else end
    hits = table.nearest(
        query,
        limit=wanted,
        nprobes=ann_nprobes(table.count()),
        refine_factor=ANN_REFINE_FACTOR,
        columns=RESULT_COLUMNS,
        where=where,
    )
    ids = hits.column("id").to_numpy()
    scores = 1.0 - hits.column("_distance").to_numpy().astype(np.float32)  # cosine distance = 1 - cosine
    is_sound = np.isfinite(scores)  # a damaged vector never ranks, and NaN never reaches JSON
    ids, scores, hits = ids[is_sound], scores[is_sound], hits.filter(pa.array(is_sound))
    page, total, cut = _select(ids, scores, hits.column("created_at"), request)
    matches = table.count(where)
    if cut.mode == "none":
        total = matches  # every match is ranked; only the page's share was fetched
    return _Ranked(ids[page], scores[page], total, hits.take(pa.array(page)), matches, cut)


def _rows_at(table: AlbumTable, matrix: VectorMatrix, positions: np.ndarray) -> pa.Table | None:
    """The page's rows read by position (~2 ms) instead of an `id IN` scan (~10 ms at 100k rows); None when the
    table moved on since the matrix was read, so positions no longer name the same rows."""
    if len(positions) == 0 or table.version != matrix.version:
        return None
    offsets = np.sort(matrix.offsets[positions])  # take returns rows in offset order; _page_rows reorders by id
    rows = table.take_offsets(offsets.tolist(), RESULT_COLUMNS)
    is_same = sorted(rows.column("id").to_pylist()) == sorted(matrix.ids[positions].tolist())
    return rows if is_same else None


def _page_rows(table: AlbumTable, ranked: _Ranked) -> list[SearchHit]:
    if len(ranked.ids) == 0:
        return []
    rows = ranked.rows if ranked.rows is not None else table.arrow(RESULT_COLUMNS, f"id IN ({id_list(ranked.ids)})")
    by_id = {row["id"]: row for row in rows.select(RESULT_COLUMNS).to_pylist()}
    hits = []
    for index, row_id in enumerate(ranked.ids.tolist()):
        row = by_id.get(row_id)
        if row is None:  # deleted between ranking and reading: drop it rather than fail the page
            continue
        prompt = row.pop("positive_prompt")
        path, image_name = row.pop("path"), row.pop("image_name")
        row["starred"] = bool(row.get("starred"))  # rows written before the column existed read back null
        hits.append(
            SearchHit(
                **row,
                name=image_name or path.rsplit("/", 1)[-1],
                positive_prompt=prompt[:PROMPT_PREVIEW_CHARS] if prompt else prompt,
                score=None if ranked.scores is None else round(float(ranked.scores[index]), 5),
            )
        )
    return hits


def search_table(
    table: AlbumTable, cache: VectorCache, query: np.ndarray | None, request: SearchRequest
) -> SearchPage:
    """One page of results: ranked by `query` (or browsed by date without one), filtered, keyword-matched, cut and
    paged. Blocking (table reads, matrix product): call it in a thread."""
    request = request.model_copy(update={"sort": request.order(is_ranked=query is not None)})  # 400 before any read
    where = filters_to_where(request.filters)
    keyword_ids = find_keyword_ids(table, request.keywords, where) if request.keywords else None
    if query is None:
        ranked = _browse(table, where, keyword_ids, request)
    else:
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != table.info.dim:
            raise BadRequest(f"The query vector has {query.shape[0]} dimensions; this album's model uses {table.info.dim}")
        if uses_ann(table):
            cache.forget(table.name)  # the index answers now: free the matrix
            if keyword_ids is not None:
                ranked = _exact_subset(table, query, request, keyword_ids)
            else:
                ranked = _approximate(table, query, request, where)
        else:
            ranked = _exact(table, cache, query, request, where, keyword_ids)
    return SearchPage(
        results=_page_rows(table, ranked),
        total=ranked.total,
        offset=request.offset,
        limit=request.limit,
        ranked=ranked.total if ranked.ranked is None else ranked.ranked,
        cut=ranked.cut,
    )
