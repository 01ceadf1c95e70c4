"""Search logic over a real LanceDB table of synthetic vectors (no model)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photomapd import config
from photomapd.search import rank
from photomapd.search import duplicates
from photomapd.search import vectors as album_vectors
from photomapd.search.duplicates import duplicate_groups
from photomapd.errors import BadRequest
from photomapd.search import (
    SearchFilters,
    SearchPage,
    SearchRequest,
    VectorCache,
    compose_query,
    filters_to_where,
    search_table,
)
from photomapd.store import AlbumTable, Store, TableInfo

DIM = 16


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_row(row_id: int, vector: np.ndarray, **columns: Any) -> dict[str, Any]:
    folder = columns.pop("folder", "/photos/a")
    return {
        "id": row_id,
        "path": columns.pop("path", f"{folder}/img{row_id}.png"),
        "folder": folder,
        "mtime_ns": row_id,
        "size": 100 + row_id,
        "width": 64,
        "height": 48,
        "vector": vector.tolist(),
        **columns,
    }


def make_table(rows: list[dict[str, Any]], dim: int = DIM) -> AlbumTable:
    table = Store(config.index_dir()).create("album", TableInfo(model="m", pretrained="none", dim=dim))
    table.upsert(rows)
    return table


@pytest.fixture
def filtered_table() -> AlbumTable:
    rng = np.random.default_rng(1)
    vectors = unit(rng, 6)
    return make_table(
        [
            make_row(1, vectors[0], created_at=datetime(2024, 5, 1, 9, tzinfo=timezone.utc), model="sdxl",
                     loras=["detail", "o'brien"], seed=7, generator="invokeai", positive_prompt="A Cat in 50% light"),
            make_row(2, vectors[1], created_at=datetime(2024, 5, 2, 23, 59), model="sd15", loras=["detail"], seed=8,
                     generator="a1111", positive_prompt="a dog"),
            make_row(3, vectors[2], folder="/photos/b", created_at=datetime(2024, 5, 3), model="sdxl", seed=7,
                     generator="invokeai", positive_prompt="cat_and_dog"),
            make_row(4, vectors[3], path="/photos/a/sub/img4.png", model="o'model", positive_prompt=None),
            make_row(5, vectors[4], folder="/photos/ab", positive_prompt="cat"),
        ]
    )


def matching_ids(table: AlbumTable, filters: SearchFilters) -> list[int]:
    return sorted(row["id"] for row in table.where(filters_to_where(filters), ["id"]))


def test_no_filters_means_no_where() -> None:
    assert filters_to_where(None) is None
    assert filters_to_where(SearchFilters()) is None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(folder="/photos/a"), [1, 2, 4]),  # not /photos/ab: a sibling that shares the prefix
        (SearchFilters(folder="/photos/a/"), [1, 2, 4]),
        (SearchFilters(folder="/photos/a/sub"), [4]),
        (SearchFilters(model="sdxl"), [1, 3]),
        (SearchFilters(model="o'model"), [4]),
        (SearchFilters(lora="detail"), [1, 2]),
        (SearchFilters(lora="o'brien"), [1]),
        (SearchFilters(seed=7), [1, 3]),
        (SearchFilters(generator="a1111"), [2]),
        (SearchFilters(prompt="cat"), [1, 3, 5]),
        (SearchFilters(prompt="50%"), [1]),  # '%' is literal, not a wildcard
        (SearchFilters(prompt="t_a"), [3]),
        (SearchFilters(model="sdxl", seed=7, generator="invokeai", prompt="CAT IN"), [1]),
        (SearchFilters(date_from=date(2024, 5, 2)), [2, 3]),
        (SearchFilters(date_to=date(2024, 5, 2)), [1, 2]),  # a date includes its whole day
        (SearchFilters(date_from=datetime(2024, 5, 1, 11, 30, tzinfo=timezone.utc)), [2, 3]),
        # 11:00 at UTC+2 is 09:00 UTC: row 1 (09:00 UTC) is not before it, as date-times are exclusive upper bounds.
        (SearchFilters(date_to=datetime(2024, 5, 1, 11, tzinfo=timezone(timedelta(hours=2)))), []),
        (SearchFilters(date_to=datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))), [1]),
    ],
)
def test_filters_select_the_matching_rows(filtered_table: AlbumTable, filters: SearchFilters, expected: list[int]) -> None:
    assert matching_ids(filtered_table, filters) == expected


def test_quotes_in_values_cannot_escape_the_literal(filtered_table: AlbumTable) -> None:
    hostile = SearchFilters(model="x' OR '1'='1", prompt="') OR 1=1 --")
    assert matching_ids(filtered_table, hostile) == []


def test_date_only_json_means_the_whole_day() -> None:
    filters = SearchFilters.model_validate_json('{"date_to": "2024-05-02", "date_from": "2024-05-01T10:00:00"}')
    assert filters.date_to == date(2024, 5, 2)
    assert isinstance(filters.date_from, datetime)


def test_unknown_filter_is_rejected() -> None:
    with pytest.raises(ValueError):
        SearchFilters.model_validate({"path": "/etc"})


# --- ranking --------------------------------------------------------------------------------------------------------


@pytest.fixture
def random_table() -> tuple[AlbumTable, np.ndarray]:
    rng = np.random.default_rng(2)
    vectors = unit(rng, 300)
    rows = [
        make_row(i + 1, vectors[i], created_at=datetime(2024, 1, 1) + timedelta(hours=i) if i % 10 else None,
                 model="sdxl" if i % 2 else "sd15", positive_prompt="p" * 500)
        for i in range(len(vectors))
    ]
    return make_table(rows), vectors


def run(table: AlbumTable, query: np.ndarray | None, cache: VectorCache | None = None, **request: Any) -> SearchPage:
    return search_table(table, cache or VectorCache(), query, SearchRequest(**request))


def test_each_image_ranks_first_for_its_own_vector(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, vectors = random_table
    cache = VectorCache()
    for index in (0, 17, 299):
        page = run(table, vectors[index], cache, limit=5)
        assert page.results[0].id == index + 1
        assert page.results[0].score == pytest.approx(1.0, abs=1e-4)


def test_scores_are_cosines_in_descending_order(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, vectors = random_table
    query = unit(np.random.default_rng(3), 1)[0]
    page = run(table, query, limit=20)
    expected = np.argsort(-(vectors @ query))[:20] + 1
    assert [hit.id for hit in page.results] == expected.tolist()
    assert [hit.score for hit in page.results] == pytest.approx(np.sort(vectors @ query)[::-1][:20], abs=1e-4)
    assert page.total == 300
    assert all(len(hit.positive_prompt or "") == 200 for hit in page.results)


def test_pages_join_into_the_full_ranking(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, vectors = random_table
    query = unit(np.random.default_rng(4), 1)[0]
    full = [hit.id for hit in run(table, query, limit=90).results]
    paged = [hit.id for offset in (0, 30, 60) for hit in run(table, query, offset=offset, limit=30).results]
    assert paged == full


def test_min_score_cuts_results_and_total(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, vectors = random_table
    query = vectors[5]
    above = int(((vectors @ query) >= 0.3).sum())
    page = run(table, query, min_score=0.3, limit=500)
    assert page.total == above == len(page.results)
    assert min(hit.score for hit in page.results) >= 0.3


def test_filters_narrow_the_ranking(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, vectors = random_table
    page = run(table, vectors[4], filters=SearchFilters(model="sdxl"), limit=500)  # row 5 is sd15 (index 4 is even)
    assert page.total == 150
    assert all(hit.model == "sdxl" for hit in page.results)
    assert 5 not in [hit.id for hit in page.results]


def test_sort_by_date_puts_newest_first_and_undated_last(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, vectors = random_table
    page = run(table, vectors[0], sort="date", min_score=-1.0, limit=300)
    dated = [hit.created_at for hit in page.results if hit.created_at is not None]
    assert dated == sorted(dated, reverse=True) and len(dated) == 270
    assert all(hit.created_at is None for hit in page.results[270:])
    assert all(hit.score is not None for hit in page.results)


def test_browse_without_query_lists_newest_first(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, _ = random_table
    page = run(table, None, limit=3, filters=SearchFilters(model="sd15"))
    assert [hit.id for hit in page.results] == [299, 297, 295]  # hours 298, 296, 294; ids are index + 1
    assert page.total == 150 and all(hit.score is None for hit in page.results)


def test_cache_sees_rows_written_after_the_first_search(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, vectors = random_table
    cache = VectorCache()
    query = unit(np.random.default_rng(5), 1)[0]
    assert run(table, query, cache, limit=1).results[0].score < 0.99
    table.upsert([make_row(1000, query)])
    reopened = Store(config.index_dir()).open("album")
    assert reopened is not None
    assert run(reopened, query, cache, limit=1).results[0].id == 1000


def test_wrong_dimension_query_is_refused(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, _ = random_table
    with pytest.raises(BadRequest):
        run(table, np.ones(DIM + 1, dtype=np.float32) / np.sqrt(DIM + 1))


# --- query composition ----------------------------------------------------------------------------------------------


def test_compose_blends_text_and_image_by_weight() -> None:
    text, image = np.eye(DIM, dtype=np.float32)[0], np.eye(DIM, dtype=np.float32)[1]
    assert compose_query(text, None, None) == pytest.approx(text)
    mostly_image = compose_query(text, image, None, image_weight=0.8)
    assert mostly_image @ image > mostly_image @ text > 0
    assert np.linalg.norm(mostly_image) == pytest.approx(1.0)


def test_negative_text_pushes_the_query_away() -> None:
    rng = np.random.default_rng(6)
    text, negative = unit(rng, 2)
    query = compose_query(text, None, negative, negative_weight=0.5)
    assert query @ negative < text @ negative
    with pytest.raises(BadRequest):
        compose_query(text, None, text, negative_weight=1.0)
    with pytest.raises(BadRequest):
        compose_query(None, None, negative)


def test_request_refuses_two_image_sources() -> None:
    with pytest.raises(ValueError):
        SearchRequest(image_id=3, image_base64="AAAA")
    assert not SearchRequest(text="   ").has_query


# --- ANN index ------------------------------------------------------------------------------------------------------


def test_ann_index_is_built_past_the_threshold_and_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    vectors = unit(rng, 600, dim=32)
    start = datetime(2024, 1, 1)
    table = make_table(
        [make_row(i + 1, vectors[i], model="even" if i % 2 == 0 else "odd", created_at=start + timedelta(hours=i))
         for i in range(len(vectors))],
        dim=32,
    )  # fmt: skip
    monkeypatch.setattr(album_vectors, "ANN_MIN_ROWS", 1_000)
    assert not album_vectors.ensure_ann_index(table)
    assert not table.has_vector_index()
    monkeypatch.setattr(album_vectors, "ANN_MIN_ROWS", 500)
    assert album_vectors.ensure_ann_index(table)
    assert table.has_vector_index()
    hits = 0
    for index in range(0, 600, 60):
        page = run(table, vectors[index], limit=10)
        assert page.total == 600
        hits += page.results[0].id == index + 1
    assert hits >= 9  # refined by full vectors: an image's own vector is found first
    filtered = run(table, vectors[0], filters=SearchFilters(model="odd"), limit=5)
    assert filtered.total == 300 and all(hit.model == "odd" for hit in filtered.results)
    by_date = run(table, vectors[0], sort="date", min_score=0.2, limit=50)
    dates = [hit.created_at for hit in by_date.results]
    assert dates == sorted(dates, reverse=True) and all(hit.score >= 0.2 for hit in by_date.results)
    above = int(((vectors @ vectors[0]) >= 0.2).sum())
    assert 0.9 * above <= by_date.total <= above and len(by_date.results) == min(50, by_date.total)


# --- near-duplicates ------------------------------------------------------------------------------------------------


def planted(rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, list[set[int]]]:
    vectors = unit(rng, n, dim)
    groups = [{10, 11}, {20, 21, 22}, {n - 2, n - 1}]
    for group in groups:
        base = vectors[min(group)]
        for member in sorted(group)[1:]:
            noisy = base + rng.normal(scale=0.01, size=dim).astype(np.float32)
            vectors[member] = noisy / np.linalg.norm(noisy)
    return vectors, groups


@pytest.mark.parametrize("exact_max_rows", [10_000, 50])  # all pairs, then pivot buckets
def test_duplicate_groups_find_the_planted_ones(monkeypatch: pytest.MonkeyPatch, exact_max_rows: int) -> None:
    monkeypatch.setattr(duplicates, "EXACT_MAX_ROWS", exact_max_rows)
    monkeypatch.setattr(duplicates, "ROWS_PER_PIVOT", 40)
    vectors, groups = planted(np.random.default_rng(8), 800, 64)
    ids = np.arange(800, dtype=np.int64) + 1000
    found = duplicate_groups(ids, vectors, threshold=0.95)
    assert sorted(group.ids for group in found) == sorted(sorted(int(ids[i]) for i in group) for group in groups)
    assert len(found[0].ids) == 3  # largest group first
    assert all(0.95 <= group.score <= 1.0 for group in found)


def test_duplicates_are_cached_per_table_version(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, vectors = random_table
    cache = VectorCache()
    assert cache.duplicates(table, 0.95) == []
    table.upsert([make_row(500, vectors[3])])
    reopened = Store(config.index_dir()).open("album")
    assert reopened is not None
    assert [group.ids for group in cache.duplicates(reopened, 0.95)] == [[4, 500]]


def test_page_rows_are_read_by_position_only_for_the_matrix_version(random_table: tuple[AlbumTable, np.ndarray]) -> None:
    table, vectors = random_table
    matrix = VectorCache().matrix(table)
    positions = np.array([5, 0, 299])
    rows = rank._rows_at(table, matrix, positions)
    assert rows is not None and sorted(rows.column("id").to_pylist()) == sorted(matrix.ids[positions].tolist())
    table.delete_ids([1])  # shifts every later row's position
    moved = Store(config.index_dir()).open("album")
    assert moved is not None
    assert rank._rows_at(moved, matrix, positions) is None
    page = run(moved, vectors[10], limit=3)  # and the search itself still names the right rows
    assert page.results[0].id == 11 and 1 not in [hit.id for hit in page.results]
