"""Search logic over a real LanceDB table of synthetic vectors (no model)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photomapd import config
from photomapd.search import SearchFilters, filters_to_where
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
    table = Store(config.index_dir()).open_for_indexing("album", TableInfo(model="m", pretrained="none", dim=dim))
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
