"""The store on real LanceDB files: cached tables with a write token, invariants refused and repaired, staging tables
swapped in atomically, old versions pruned."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from photomapd import config
from photomapd.store import COMPACT_AFTER_COMMITS, KEEP_VERSIONS, AlbumTable, InvariantViolation, Store, TableInfo

DIM = 8
INFO = TableInfo(model="m", pretrained="none", dim=DIM)


def unit(seed: int) -> list[float]:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return (vector / np.linalg.norm(vector)).tolist()


def row(row_id: int, path: str, mtime_ns: int = 1, seed: int | None = None) -> dict[str, Any]:
    return {"id": row_id, "path": path, "folder": "/p", "mtime_ns": mtime_ns, "size": 1, "width": 1, "height": 1,
            "vector": unit(row_id if seed is None else seed)}  # fmt: skip


def raw_add(table: AlbumTable, rows: list[dict[str, Any]]) -> None:
    """Write rows past every check, the way an older version (or a second writer) could leave a table."""
    defaults = {"loras": [], "has_recallable": False, "metadata_json": "{}"}
    table._table.add(pa.Table.from_pylist([{**defaults, **r} for r in rows], schema=table.schema))


@pytest.fixture
def store() -> Store:
    return Store(config.index_dir())


def test_open_is_cached_and_the_version_token_changes_only_with_writes(store: Store) -> None:
    table = store.create("a", INFO)
    assert store.open("a") is table
    before = table.version
    table.count()
    table.arrow(["id"])
    assert table.version == before, "reads must not change the token caches key on"
    table.upsert([row(1, "/p/1.png")])
    assert table.version != before
    assert Store(config.index_dir()).open("a").version != table.version  # type: ignore[union-attr]


def test_upsert_refuses_vectors_that_are_not_finite_and_unit_length(store: Store) -> None:
    table = store.create("a", INFO)
    broken = row(1, "/p/1.png")
    broken["vector"] = [float("nan")] * DIM
    with pytest.raises(InvariantViolation):
        table.upsert([broken])
    long = row(2, "/p/2.png")
    long["vector"] = [1.0] * DIM
    with pytest.raises(InvariantViolation):
        table.upsert([long])
    with pytest.raises(InvariantViolation):
        table.upsert([row(3, "/p/3.png"), row(4, "/p/3.png")])
    assert table.count() == 0


def test_repair_keeps_the_newest_row_per_path_and_gives_colliding_ids_fresh_ones(store: Store) -> None:
    table = store.create("a", INFO)
    table.upsert([row(1, "/p/a.png"), row(2, "/p/b.png")])
    # What two writers allocating `max_id()+1` each left: the same path twice, and one id for two paths.
    raw_add(table, [row(3, "/p/a.png", mtime_ns=5), row(2, "/p/c.png")])
    bad = row(4, "/p/d.png")
    bad["vector"] = [3.0] * DIM  # not unit-length: not our embedder's (LanceDB itself refuses NaN on write)
    raw_add(table, [bad])

    report = Store(config.index_dir()).open("a").repair()  # type: ignore[union-attr]

    assert (report.duplicate_paths, report.reassigned_ids, report.bad_vectors) == (1, 1, 1)
    rows = Store(config.index_dir()).open("a").where(None, ["id", "path", "mtime_ns"])  # type: ignore[union-attr]
    by_path = {r["path"]: r for r in rows}
    assert sorted(by_path) == ["/p/a.png", "/p/b.png", "/p/c.png"], "the damaged vector's row goes (re-embedded later)"
    assert by_path["/p/a.png"]["mtime_ns"] == 5, "the newest row of a duplicated path is kept"
    assert len({r["id"] for r in rows}) == len(rows) == 3
    assert not Store(config.index_dir()).open("a").repair().changed  # type: ignore[union-attr]


def test_staging_keeps_the_live_table_until_the_swap_then_replaces_it(store: Store) -> None:
    live = store.create("a", INFO)
    live.upsert([row(1, "/p/old.png")])
    other = TableInfo(model="other", pretrained="x", dim=DIM)
    staging = store.staging("a", other)
    staging.upsert([row(1, "/p/old.png"), row(2, "/p/new.png")])

    # A second process (or a restarted daemon) still sees the old index while the staging table fills.
    reader = Store(config.index_dir())
    assert reader.open("a").count() == 1 and reader.open("a").info.model == "m"  # type: ignore[union-attr]
    assert Store(config.index_dir()).staging("a", other).count() == 2, "a killed rebuild resumes into its table"

    swapped = store.swap_in_staging("a")
    assert store.open("a") is swapped and swapped.info.model == "other" and swapped.count() == 2
    fresh = Store(config.index_dir())
    assert fresh.open("a").count() == 2 and fresh.open_staging("a") is None  # type: ignore[union-attr]
    assert fresh.drop_orphans() == [], "the old table was dropped at the swap"


def test_a_staging_table_for_another_model_is_started_afresh(store: Store) -> None:
    store.create("a", INFO)
    first = store.staging("a", TableInfo(model="x", pretrained="none", dim=DIM))
    first.upsert([row(1, "/p/1.png")])
    second = store.staging("a", TableInfo(model="y", pretrained="none", dim=DIM))
    assert second.count() == 0 and second.name != first.name


def test_compact_prunes_old_versions_and_keeps_a_few(store: Store) -> None:
    table = store.create("a", INFO)
    for i in range(20):  # the indexer's path: one commit per batch
        table.upsert([row(i + 1, f"/p/{i}.png")])
    assert table.version_count() > 20
    table.compact()
    # The newest KEEP_VERSIONS, counted once compaction's own commits exist. The prune cuts by time: one either way
    # for a machine so loaded that LanceDB reads its clock late.
    assert KEEP_VERSIONS - 1 <= table.version_count() <= KEEP_VERSIONS + 1
    assert table.count() == 20


def test_drop_forgets_live_and_staging_tables(store: Store) -> None:
    store.create("a", INFO).upsert([row(1, "/p/1.png")])
    store.staging("a", INFO)
    store.drop("a")
    fresh = Store(config.index_dir())
    assert fresh.open("a") is None and fresh.open_staging("a") is None
    assert not list(config.index_dir().glob("a*.lance"))


def test_tidy_compacts_and_prunes_only_once_enough_commits_piled_up(store: Store) -> None:
    table = store.create("a", INFO)
    for i in range(10):  # a watched gallery: one small commit per event
        table.upsert([row(i + 1, f"/p/{i}.png")])
    data_files = {p.name for p in (config.index_dir() / "a.lance" / "data").iterdir()}
    table.tidy()
    kept = {p.name for p in (config.index_dir() / "a.lance" / "data").iterdir()}
    assert kept == data_files, "ten small commits are not worth rewriting the table"
    for i in range(10, 10 + COMPACT_AFTER_COMMITS):
        table.upsert([row(i + 1, f"/p/{i}.png")])
    table.tidy()
    assert table.version_count() <= KEEP_VERSIONS + 1
    assert table.count() == 10 + COMPACT_AFTER_COMMITS
