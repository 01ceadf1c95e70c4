"""Search and id-lookup cost against write history: the same rows written in one commit, the way `IndexRun` writes
them, and after a year of watcher updates, all searched side by side in one process.

    nice -n 10 .venv/bin/python bench/bench_history.py --rows 100000 --watcher-updates 1000 \
        --out bench/results/history.json

Tables (every one 512-d random unit float32 vectors, half the rows in each of two folders):
- one-commit: every row in one `upsert`; no scalar index (the baseline).
- one-commit+btree: a copy of it after `ensure_scalar_indexes()` (BTREE on id and path).
- indexrun: the same rows as `IndexRun` commits them: one `upsert` per BATCH_SIZE rows, `compact()` every
  COMPACT_EVERY_BATCHES commits, then the owner's post-run housekeeping + `ensure_scalar_indexes()`.
- indexrun-unpruned (unless --skip-unpruned): the same, with pruning turned off (KEEP_VERSIONS patched huge), to
  separate "many versions" from "many fragments".
- watched: a copy of indexrun, then --watcher-updates single-file watcher runs, each one `upsert` of one row (three
  new files for every edited one) followed by the owner's post-run housekeeping + `ensure_scalar_indexes()`; with
  `tidy` (the owner's today) the updates go on until the next one would compact, so the table is measured at the
  worst point of its compaction cycle.

Post-run housekeeping (--post-run): `tidy` = what the owner calls after every run (compacts once
COMPACT_AFTER_COMMITS commits piled up); `compact` = compact after every run, what the owner did before `tidy`.

Searches go through the daemon's `search_table` (exact path: 100k is below ANN_MIN_ROWS) with a fresh random unit
query (text-like: no stored row is close to it), limit 100, unfiltered and with a folder filter; tables are visited
in rotating order per query so load on the machine hits them alike. `get` is `AlbumTable.get(id, ["id", "path"])`,
what every thumbnail and file request does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from photomapd import store as store_module  # noqa: E402
from photomapd.index.run import BATCH_SIZE, COMPACT_EVERY_BATCHES  # noqa: E402
from photomapd.search import SearchFilters, SearchRequest, VectorCache, search_table  # noqa: E402
from photomapd.search import vectors as album_vectors  # noqa: E402
from photomapd.search.rank import RESULT_COLUMNS  # noqa: E402
from photomapd.store import COMPACT_AFTER_COMMITS, AlbumTable, Store, TableInfo  # noqa: E402

DIM = 512  # ViT-B-32
INFO = TableInfo(model="ViT-B-32", pretrained="none", dim=DIM)
KEY = "bench"
FOLDERS = ("/bench/a", "/bench/b")
ONE_COMMIT_CHUNK = 100_000  # rows per from_pylist when writing "one commit" tables bigger than this: several commits
EDIT_EVERY = 4  # one watcher update in four edits an existing file (same path and id, new content), the rest add one
GET_SAMPLES = 300
BASE_TIME = datetime(2024, 1, 1)
NO_PRUNING = 10**9  # KEEP_VERSIONS for the unpruned variant: nothing is ever old enough to drop


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    block = rng.standard_normal((count, DIM)).astype(np.float32)
    return block / np.linalg.norm(block, axis=1, keepdims=True)


def row(row_id: int, vector: np.ndarray, mtime_ns: int | None = None) -> dict[str, Any]:
    folder = FOLDERS[row_id % len(FOLDERS)]
    return {
        "id": row_id,
        "path": f"{folder}/{row_id:07d}.png",
        "folder": folder,
        "mtime_ns": mtime_ns if mtime_ns is not None else row_id,
        "size": 4096 + row_id % 997,
        "width": 64,
        "height": 64,
        "vector": vector,
        "created_at": BASE_TIME + timedelta(seconds=row_id),
        "positive_prompt": f"a picture number {row_id}",
    }


def rows_for(ids: range, vectors: np.ndarray) -> list[dict[str, Any]]:
    return [row(row_id, vectors[row_id - 1]) for row_id in ids]


def dir_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def dir_files(path: Path) -> dict[str, int]:
    return {str(entry): entry.stat().st_size for entry in path.rglob("*") if entry.is_file()}


def table_dir(root: Path) -> Path:
    return root / f"{KEY}.lance"


def mb(count: int) -> float:
    return round(count / 1e6, 1)


def ms(seconds: list[float] | np.ndarray, q: float = 50) -> float:
    return round(float(np.percentile(np.asarray(seconds) * 1e3, q)), 2)


class Compactor:
    """Calls `compact()` (or `tidy()`, which may) and records what it cost: seconds and bytes written (new files
    under the table dir); a call that wrote nothing did not compact."""

    def __init__(self, root: Path, method: str = "compact") -> None:
        self.root = root
        self.method = method
        self.seconds: list[float] = []
        self.written: list[int] = []

    def __call__(self, table: AlbumTable) -> None:
        before = dir_files(table_dir(self.root))
        start = time.perf_counter()
        getattr(table, self.method)()
        self.seconds.append(time.perf_counter() - start)
        after = dir_files(table_dir(self.root))
        self.written.append(sum(size for name, size in after.items() if name not in before))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"calls": len(self.seconds), "compacted": sum(1 for size in self.written if size)}
        if self.seconds:
            out |= {"total_s": round(sum(self.seconds), 1), "p50_s": round(float(np.median(self.seconds)), 3),
                    "max_s": round(max(self.seconds), 3)}  # fmt: skip
        if self.written:
            out |= {"written_mb_total": mb(sum(self.written)), "written_mb_p50": mb(int(np.median(self.written)))}
        return out


def snapshot(table: AlbumTable, root: Path) -> dict[str, Any]:
    return {"versions": table.version_count(), "dir_mb": mb(dir_bytes(table_dir(root)))}


def write_one_commit(root: Path, vectors: np.ndarray) -> AlbumTable:
    table = Store(root).create(KEY, INFO)
    for start in range(0, len(vectors), ONE_COMMIT_CHUNK):
        table.upsert(rows_for(range(start + 1, min(len(vectors), start + ONE_COMMIT_CHUNK) + 1), vectors))
    return table


def write_like_indexrun(
    root: Path, vectors: np.ndarray, label: str, post_run: str
) -> tuple[AlbumTable, dict[str, Any]]:
    """IndexRun's commit pattern, then what the owner does after the run."""
    table = Store(root).create(KEY, INFO)
    compact = Compactor(root)
    upserts: list[float] = []
    started = time.perf_counter()
    for commits, start in enumerate(range(0, len(vectors), BATCH_SIZE), start=1):
        ids = range(start + 1, min(len(vectors), start + BATCH_SIZE) + 1)
        began = time.perf_counter()
        table.upsert(rows_for(ids, vectors))
        upserts.append(time.perf_counter() - began)
        if commits % COMPACT_EVERY_BATCHES == 0:
            compact(table)
        if commits % 500 == 0:
            print(f"  {label}: {commits} commits, {time.perf_counter() - started:.0f} s", flush=True)
    before = snapshot(table, root)
    final = Compactor(root, post_run)
    final(table)
    began = time.perf_counter()
    table.ensure_scalar_indexes()
    index_s = time.perf_counter() - began
    tenth = max(1, len(upserts) // 10)
    facts = {
        "commits": len(upserts),
        "write_s": round(time.perf_counter() - started, 1),
        "upsert_ms_p50_first_tenth": ms(upserts[:tenth]),
        "upsert_ms_p50_last_tenth": ms(upserts[-tenth:]),
        "compactions_during_run": compact.summary(),
        "before_post_run": before,
        "post_run": final.summary() | {"method": post_run},
        "after_post_run": snapshot(table, root),
        "scalar_index_s": round(index_s, 2),
    }
    return table, facts


def watcher_updates(
    root: Path, table: AlbumTable, count: int, rng: np.random.Generator, post_run: str
) -> dict[str, Any]:
    """`count` single-file watcher runs, each one commit plus the owner's post-run housekeeping; with `tidy`, then
    more until the next run would compact (the most uncompacted commits the owner leaves)."""
    compact = Compactor(root, post_run)
    upserts: list[float] = []
    next_id = table.max_id() + 1
    existing = table.count()
    started = time.perf_counter()
    event = 0

    def pending() -> int:  # commits since the last compaction: the owner's own count, read by the bench
        return table._commits_since_compact or 0

    while event < count or (post_run == "tidy" and pending() < COMPACT_AFTER_COMMITS - 1):
        event += 1
        vector = unit_vectors(rng, 1)[0]
        if event % EDIT_EVERY == 0:  # an edited file keeps its path and id, with a new mtime and new content
            row_id = int(rng.integers(1, existing + 1))
            new_row = row(row_id, vector, mtime_ns=row_id + 10**12 + event)
        else:
            new_row, next_id = row(next_id, vector), next_id + 1
        began = time.perf_counter()
        table.upsert([new_row])
        upserts.append(time.perf_counter() - began)
        compact(table)
        table.ensure_scalar_indexes()
        if event % 100 == 0:
            print(f"  watched: {event} updates, {time.perf_counter() - started:.0f} s", flush=True)
    return {
        "updates": event,
        "commits_since_compact": pending(),
        "write_s": round(time.perf_counter() - started, 1),
        "upsert_ms_p50": ms(upserts),
        "post_run": compact.summary() | {"method": post_run},
        "after": snapshot(table, root),
        "rows": table.count(),
    }


def copy_store(source: Path, target: Path) -> AlbumTable:
    shutil.copytree(source, target)
    table = Store(target).open(KEY)
    assert table is not None
    return table


def measure_search(tables: dict[str, AlbumTable], queries: np.ndarray) -> dict[str, dict[str, float]]:
    caches = {name: VectorCache() for name in tables}  # one cache per table: they all share the name "bench"
    plain = SearchRequest(limit=100)
    filtered = SearchRequest(limit=100, filters=SearchFilters(folder=FOLDERS[0]))
    search_table(next(iter(tables.values())), VectorCache(), queries[0], plain)  # first-in-process costs, not a table's
    loads: dict[str, float] = {}
    for name, table in tables.items():  # the first query after any write reloads the album's matrix
        began = time.perf_counter()
        search_table(table, caches[name], queries[0], plain)
        loads[name] = time.perf_counter() - began
    times: dict[str, dict[str, list[float]]] = {name: {"exact": [], "filtered": []} for name in tables}
    names = list(tables)
    for turn, query in enumerate(queries):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            for kind, request in (("exact", plain), ("filtered", filtered)):
                began = time.perf_counter()
                page = search_table(tables[name], caches[name], query, request)
                times[name][kind].append(time.perf_counter() - began)
                assert len(page.results) == 100
    return {
        name: {"first_query_ms": round(loads[name] * 1e3, 1)}
        | {f"{kind}_p50_ms": ms(values) for kind, values in times[name].items()}
        | {f"{kind}_p95_ms": ms(values, 95) for kind, values in times[name].items()}
        for name in tables
    }


def anatomy(table: AlbumTable, query: np.ndarray, repeat: int = 50) -> dict[str, float]:
    """Where an exact search's time goes: the LanceDB calls it makes (row count, the page's rows by offset, the filter
    scan) against the numpy ranking; and the same page read by row address (`take_row_ids`), for comparison."""
    cache = VectorCache()
    matrix = cache.matrix(table)
    picked = np.sort(np.random.default_rng(2).choice(len(matrix.ids), 100, replace=False))
    offsets = picked.tolist()
    # Row addresses in scan order (the store has no reader for them: the bench asks LanceDB directly).
    addresses = table._table.search().with_row_id(True).select(["id"]).to_arrow().column("_rowid").to_numpy()
    row_ids = addresses[picked].tolist()
    where = f"folder = '{FOLDERS[0]}'"
    steps: dict[str, Callable[[], Any]] = {
        "count": table.count,
        "take_offsets_100": lambda: table.take_offsets(offsets, RESULT_COLUMNS),
        "take_row_ids_100": lambda: table._table.take_row_ids(row_ids).select(RESULT_COLUMNS).to_arrow(),
        "filter_scan_id_created_at": lambda: table.arrow(["id", "created_at"], where),
        "numpy_rank": lambda: np.argpartition(-(matrix.vectors @ query), 99)[:100],
    }
    out = {}
    for name, step in steps.items():
        seconds = []
        for _ in range(repeat):
            began = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - began)
        out[f"{name}_p50_ms"] = ms(seconds)
    return out


def measure_gets(tables: dict[str, AlbumTable], rows: int, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    ids = rng.integers(1, rows + 1, GET_SAMPLES)
    times: dict[str, list[float]] = {name: [] for name in tables}
    names = list(tables)
    for turn, row_id in enumerate(ids.tolist()):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            began = time.perf_counter()
            found = tables[name].get(row_id, ["id", "path"])
            times[name].append(time.perf_counter() - began)
            assert found is not None and found["id"] == row_id
    return {name: {"get_p50_ms": ms(values), "get_p95_ms": ms(values, 95)} for name, values in times.items()}


def threshold_study(work: Path, sizes: list[int], rng: np.random.Generator) -> dict[str, Any]:
    """get() with and without the BTREE at each size, side by side (the index forced below the store's threshold)."""
    out: dict[str, Any] = {}
    saved = store_module.SCALAR_INDEX_MIN_ROWS
    store_module.SCALAR_INDEX_MIN_ROWS = 0
    try:
        for size in sizes:
            plain_root, indexed_root = work / f"get-{size}-plain", work / f"get-{size}-btree"
            write_one_commit(plain_root, unit_vectors(rng, size))
            indexed = copy_store(plain_root, indexed_root)
            indexed.ensure_scalar_indexes()
            plain = Store(plain_root).open(KEY)
            assert plain is not None
            result = measure_gets({"scan": plain, "btree": indexed}, size, rng)
            out[str(size)] = result
            print(f"  get at {size:>7,} rows: scan p50 {result['scan']['get_p50_ms']} ms, "
                  f"btree p50 {result['btree']['get_p50_ms']} ms", flush=True)  # fmt: skip
            shutil.rmtree(plain_root)
            shutil.rmtree(indexed_root)
    finally:
        store_module.SCALAR_INDEX_MIN_ROWS = saved
    return out


def fragment_study(work: Path, vectors: np.ndarray, counts: list[int], queries: np.ndarray) -> dict[str, Any]:
    """What a table's trailing, uncompacted commits cost reads, side by side with the compacted baseline:
    - `count` single-row upserts of new rows left as they landed (what `count` uncompacted watcher events leave);
    - edits among them (an upsert that replaces a row leaves a deletion vector in the big fragment);
    - one watcher event in the owner's order with the map on: upsert, compact, then the map's `update_columns` of
      the new row's position (the state a watched gallery is in between events), and the same compacted once more.
    """
    write_one_commit(work / "fragments-0", vectors)
    Store(work / "fragments-0").open(KEY).ensure_scalar_indexes()  # type: ignore[union-attr]
    tables: dict[str, AlbumTable] = {}
    rng = np.random.default_rng(3)
    next_id = len(vectors) + 1
    for count in counts:
        root = work / f"fragments-{count}"
        table = copy_store(work / "fragments-0", root) if count else Store(root).open(KEY)
        assert table is not None
        for _ in range(count):
            table.upsert([row(next_id, unit_vectors(rng, 1)[0])])
            next_id += 1
        tables[f"{count} uncompacted commits"] = table
    for name, new, edits in (("1 edit (a replaced row)", 0, 1), ("49 commits, 12 of them edits", 37, 12)):
        table = copy_store(work / "fragments-0", work / f"edits-{new}-{edits}")
        for _ in range(new):
            table.upsert([row(next_id, unit_vectors(rng, 1)[0])])
            next_id += 1
        for edit in range(edits):  # same path and id, new content: the old row is deleted from the big fragment
            row_id = int(rng.integers(1, len(vectors) + 1))
            table.upsert([row(row_id, unit_vectors(rng, 1)[0], mtime_ns=10**13 + edit)])
        tables[name] = table
    for name, compact_again in (("event, map write last", False), ("event, map write then compact", True)):
        table = copy_store(work / "fragments-0", work / name.replace(" ", "-").replace(",", ""))
        table.upsert([row(next_id, unit_vectors(rng, 1)[0])])
        table.compact()
        table.update_columns([{"id": next_id, "x": 0.5, "y": 0.5, "cluster": 1}])
        next_id += 1
        if compact_again:
            table.compact()
        tables[name] = table
    search = measure_search(tables, queries)
    gets = measure_gets(tables, len(vectors), rng)
    return {name: search[name] | gets[name] | anatomy(table, queries[0]) for name, table in tables.items()}


def timed_phase(label: str, fn: Callable[[], Any]) -> Any:
    print(f"{label} ...", flush=True)
    began = time.perf_counter()
    result = fn()
    print(f"{label}: {time.perf_counter() - began:.1f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--watcher-updates", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threshold-sizes", default="5000,10000,20000,50000,100000")
    parser.add_argument("--skip-unpruned", action="store_true")
    parser.add_argument("--post-run", choices=("tidy", "compact"), default="tidy", help="the owner's step after a run")
    parser.add_argument("--only-fragments", help="run just the uncompacted-commits study, e.g. 0,20,100,500")
    parser.add_argument("--only-threshold", action="store_true", help="run just the get() with/without BTREE study")
    parser.add_argument("--out", type=Path, help="write every figure as JSON here too")
    parser.add_argument("--workdir", type=Path, help="where the tables go (default: a temp dir, removed after)")
    args = parser.parse_args()
    if args.rows >= album_vectors.ANN_MIN_ROWS:
        parser.error(f"--rows must stay below ANN_MIN_ROWS ({album_vectors.ANN_MIN_ROWS}) to measure the exact path")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still writes the figures gathered so far
    rng = np.random.default_rng(0)
    vectors = unit_vectors(rng, args.rows)
    queries = unit_vectors(np.random.default_rng(1), args.queries)
    work = Path(tempfile.mkdtemp(prefix="bench-history-", dir=args.workdir))
    results: dict[str, Any] = {
        "rows": args.rows, "batch": BATCH_SIZE, "compact_every": COMPACT_EVERY_BATCHES,
        "keep_versions": store_module.KEEP_VERSIONS, "post_run": args.post_run, "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%d %H:%M"),
        "loadavg_start": os.getloadavg(),
    }  # fmt: skip
    try:
        if args.only_fragments:
            counts = [int(count) for count in args.only_fragments.split(",")]
            results["fragments"] = timed_phase(
                "uncompacted commits", lambda: fragment_study(work, vectors, counts, queries)
            )
            base = results["fragments"]["0 uncompacted commits"]
            print(
                "| table | exact p50 ms | vs compacted | filtered p50 ms | vs compacted | get p50 ms | take_offsets ms "
                "| take_row_ids ms |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for name, figures in results["fragments"].items():
                print(f"| {name} | {figures['exact_p50_ms']} | {figures['exact_p50_ms'] / base['exact_p50_ms']:.2f}x "
                      f"| {figures['filtered_p50_ms']} | {figures['filtered_p50_ms'] / base['filtered_p50_ms']:.2f}x "
                      f"| {figures['get_p50_ms']} | {figures['take_offsets_100_p50_ms']} "
                      f"| {figures['take_row_ids_100_p50_ms']} |")  # fmt: skip
            return
        results["threshold"] = timed_phase(
            "get() with and without BTREE", lambda: threshold_study(work, [int(s) for s in args.threshold_sizes.split(",")], rng)
        )  # fmt: skip
        if args.only_threshold:
            return
        tables: dict[str, AlbumTable] = {}
        began = time.perf_counter()
        tables["one-commit"] = timed_phase("one commit", lambda: write_one_commit(work / "one-commit", vectors))
        results["one_commit"] = {"write_s": round(time.perf_counter() - began, 1)} | snapshot(
            tables["one-commit"], work / "one-commit"
        )
        tables["one-commit+btree"] = copy_store(work / "one-commit", work / "one-commit-btree")
        tables["one-commit+btree"].ensure_scalar_indexes()
        tables["indexrun"], results["indexrun"] = timed_phase(
            "IndexRun-like writes", lambda: write_like_indexrun(work / "indexrun", vectors, "indexrun", args.post_run)
        )
        print(json.dumps(results["indexrun"]), flush=True)
        if not args.skip_unpruned:
            store_module.KEEP_VERSIONS = NO_PRUNING
            try:
                tables["indexrun-unpruned"], results["indexrun_unpruned"] = timed_phase(
                    "IndexRun-like writes, no pruning",
                    lambda: write_like_indexrun(work / "indexrun-unpruned", vectors, "unpruned", args.post_run),
                )
            finally:
                store_module.KEEP_VERSIONS = results["keep_versions"]
            print(json.dumps(results["indexrun_unpruned"]), flush=True)
        tables["watched"] = copy_store(work / "indexrun", work / "watched")
        results["watched"] = timed_phase(
            f"{args.watcher_updates} watcher updates",
            lambda: watcher_updates(work / "watched", tables["watched"], args.watcher_updates, rng, args.post_run),
        )
        print(json.dumps(results["watched"]), flush=True)

        results["search"] = timed_phase("search, interleaved", lambda: measure_search(tables, queries))
        results["get"] = timed_phase("get(), interleaved", lambda: measure_gets(tables, args.rows, rng))
        results["anatomy"] = {name: anatomy(tables[name], queries[0]) for name in ("one-commit", "watched")}
        print(json.dumps(results["anatomy"]), flush=True)
        results["loadavg_end"] = os.getloadavg()
        base = results["search"]["one-commit"]
        for name, figures in results["search"].items():
            figures["exact_vs_one_commit"] = round(figures["exact_p50_ms"] / base["exact_p50_ms"], 2)
            figures["filtered_vs_one_commit"] = round(figures["filtered_p50_ms"] / base["filtered_p50_ms"], 2)
        print(
            "\n| table | first query ms | exact p50 ms | vs one-commit | filtered p50 ms | vs one-commit | get p50 ms |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, figures in results["search"].items():
            print(f"| {name} | {figures['first_query_ms']} | {figures['exact_p50_ms']} | {figures['exact_vs_one_commit']}x "
                  f"| {figures['filtered_p50_ms']} | {figures['filtered_vs_one_commit']}x "
                  f"| {results['get'][name]['get_p50_ms']} |")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
