"""A living gallery: a folder of real PNGs indexed through the albums' owner exactly as the daemon does it, then
watcher events and search bursts interleaved for a few minutes. Shows whether search slows as the history grows
and what the table keeps on disk.

    nice -n 10 .venv/bin/python bench/bench_living.py --files 20000 --minutes 6 --out bench/results/living.json

- Files: --files noise PNGs (64x64, numbered, alternating between two sub-folders so a folder filter halves them).
- First index: `AlbumJobs.run_index` with the real `ModelRunner("ViT-B-32", "none")` (random weights: same cost as
  trained ones); IndexRun commits one `upsert` per 32 images and compacts every 50 batches; after the run the owner
  tidies (compacts once enough commits piled up), adds the scalar indexes and (unless --no-map) fits the map.
- Living phase: each event writes --files-per-event new PNGs (and every --edit-every-th event rewrites one existing
  file), calls `jobs.files_changed` as the folder watcher does, waits for that run to end, then runs a burst of
  searches through `search_table` with `jobs.vectors` (text queries from the model's text tower, limit 100, half of
  them with a folder filter). Search p50 is reported per minute and per block of events.
- Finally the same rows are rewritten into a one-commit table and both are searched side by side (the ratio).

The owner's `compact()` is wrapped (not changed) to record its cost and the versions and bytes before and after it;
search times are also grouped by how many commits were left uncompacted when they ran (the owner's tidy cycle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from photomapd import config  # noqa: E402
from photomapd.config import AlbumConfig, Config, ConfigStore  # noqa: E402
from photomapd.index.run import IndexProgress  # noqa: E402
from photomapd.jobs import AlbumJobs  # noqa: E402
from photomapd.model.runner import ModelRunner  # noqa: E402
from photomapd.search import SearchFilters, SearchRequest, VectorCache, search_table  # noqa: E402
from photomapd.store import AlbumTable, Store  # noqa: E402

KEY = "living"
SUB_FOLDERS = ("2024-05", "2024-06")
IMAGE_SIDE = 64  # px: the decode is trivial, so the run's time is the model's, as with real files on 2 cores
RUN_DEADLINE_S = 600  # one watcher run of a handful of files takes seconds; this only stops a hung bench
QUERY_TEXTS = [
    f"{subject} {style}"
    for subject in ("a cat", "a castle", "a portrait of a woman", "a red car", "mountains at dawn", "a robot")
    for style in ("oil painting", "photo", "anime", "watercolor", "3d render", "pencil sketch", "pixel art")
]
ENDED = ("done", "failed", "cancelled")
PENDING_BIN = 10  # uncompacted commits per row of the by-cycle table


def noise_png(path: Path, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, compress_level=1)


def image_path(root: Path, number: int) -> Path:
    return root / SUB_FOLDERS[number % len(SUB_FOLDERS)] / f"img_{number:06d}.png"


def dir_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file()) if path.exists() else 0


def mb(count: int) -> float:
    return round(count / 1e6, 1)


def p50_ms(seconds: list[float]) -> float | None:
    return round(float(np.median(seconds)) * 1e3, 2) if seconds else None


class WriteLog:
    """Counts the table writes the owner makes (by kind) and records every compaction, by wrapping AlbumTable's
    methods for the life of the bench; the methods themselves run unchanged."""

    def __init__(self) -> None:
        self.commits: Counter[str] = Counter()
        self.compactions: list[dict[str, Any]] = []
        self._originals: dict[str, Callable[..., Any]] = {}

    def install(self) -> None:
        for name in ("upsert", "delete_ids", "update_columns", "create_vector_index"):
            self._count(name)
        original = AlbumTable.compact
        self._originals["compact"] = original
        log = self

        def compact(table: AlbumTable) -> None:
            where = config.index_dir() / f"{table.name}.lance"
            before = {"versions": table.version_count(), "mb": mb(dir_bytes(where))}
            began = time.perf_counter()
            original(table)
            seconds = time.perf_counter() - began
            after = {"versions": table.version_count(), "mb": mb(dir_bytes(where))}
            log.compactions.append({"at": time.time(), "s": round(seconds, 3), "before": before, "after": after})

        AlbumTable.compact = compact  # type: ignore[method-assign]

    def _count(self, name: str) -> None:
        original = getattr(AlbumTable, name)
        self._originals[name] = original
        log = self

        def counted(table: AlbumTable, *args: Any, **kwargs: Any) -> Any:
            result = original(table, *args, **kwargs)
            log.commits[name] += 1
            return result

        setattr(AlbumTable, name, counted)

    def uninstall(self) -> None:
        for name, original in self._originals.items():
            setattr(AlbumTable, name, original)


def uncompacted(table: AlbumTable) -> int:
    """Commits since the owner last compacted (its own count, read by the bench)."""
    return table._commits_since_compact or 0


def snapshot(table: AlbumTable, table_dir: Path) -> dict[str, Any]:
    versions = table._table.list_versions()  # the numbers say how many were ever made
    return {
        "rows": table.count(),
        "versions_kept": len(versions),
        "latest_version": max(int(entry["version"]) for entry in versions),  # = versions made over the table's life
        "table_mb": mb(dir_bytes(table_dir)),
        "data_dir_mb": mb(dir_bytes(config.data_dir())),
    }


async def wait_for_run(queue: asyncio.Queue[IndexProgress], after_run_id: int) -> IndexProgress:
    """The end of the first run numbered above `after_run_id`, from the owner's progress stream."""
    deadline = time.monotonic() + RUN_DEADLINE_S
    while True:
        progress = await asyncio.wait_for(queue.get(), timeout=max(0.1, deadline - time.monotonic()))
        if progress.run_id > after_run_id and progress.state in ENDED:
            return progress


@dataclass(frozen=True)
class Searches:
    cache: VectorCache
    queries: np.ndarray
    plain: SearchRequest
    filtered: SearchRequest


def searches(gallery: Path, queries: np.ndarray, cache: VectorCache) -> Searches:
    folder = SearchFilters(folder=str(gallery / SUB_FOLDERS[0]))  # half the album
    return Searches(cache, queries, SearchRequest(limit=100), SearchRequest(limit=100, filters=folder))


def search_burst(table: AlbumTable, how: Searches, start: int, count: int) -> tuple[float, list[float], list[float]]:
    """(first search's seconds, plain seconds, filtered seconds); the first one after a write reloads the matrix."""
    queries, cache, plain, filtered = how.queries, how.cache, how.plain, how.filtered
    first = 0.0
    plain_s: list[float] = []
    filtered_s: list[float] = []
    for i in range(count):
        query = queries[(start + i) % len(queries)]
        request = filtered if i % 2 else plain
        began = time.perf_counter()
        page = search_table(table, cache, query, request)
        seconds = time.perf_counter() - began
        if not page.results:
            raise RuntimeError("a search found nothing: the bench is not measuring a real search")
        if i == 0:
            first = seconds
        else:
            (filtered_s if i % 2 else plain_s).append(seconds)
    return first, plain_s, filtered_s


def one_commit_copy(table: AlbumTable, root: Path) -> AlbumTable:
    """The same rows in a fresh store, written in one commit: the baseline the living table is held against."""
    copy = Store(root).create(KEY, table.info)
    copy.upsert(table.arrow().to_pylist())
    return copy


def side_by_side(tables: dict[str, AlbumTable], how: Searches, rounds: int) -> dict[str, dict[str, float | None]]:
    each = {name: replace(how, cache=VectorCache()) for name in tables}  # the tables share a name: a cache each
    for name, table in tables.items():
        search_burst(table, each[name], 0, 2)  # load the matrices
    times: dict[str, dict[str, list[float]]] = {name: {"plain": [], "filtered": []} for name in tables}
    names = list(tables)
    for turn in range(rounds):
        for name in names[turn % 2 :] + names[: turn % 2]:
            _, plain, filtered = search_burst(tables[name], each[name], turn * 3, 5)
            times[name]["plain"] += plain
            times[name]["filtered"] += filtered
    return {name: {f"{kind}_p50_ms": p50_ms(values) for kind, values in kinds.items()} for name, kinds in times.items()}


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    gallery = work / "gallery"
    for sub in SUB_FOLDERS:
        (gallery / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    began = time.perf_counter()
    for number in range(1, args.files + 1):
        noise_png(image_path(gallery, number), rng)
    results: dict[str, Any] = {
        "files": args.files, "cpus": os.cpu_count(), "map": not args.no_map,
        "png_generation_s": round(time.perf_counter() - began, 1), "loadavg_start": os.getloadavg(),
    }  # fmt: skip
    print(f"{args.files} PNGs written in {results['png_generation_s']} s", flush=True)

    writes = WriteLog()
    writes.install()
    runner = ModelRunner("ViT-B-32", "none")
    album = AlbumConfig(key=KEY, display_name="Living", folders=[str(gallery)])
    store = Store(config.index_dir())
    jobs = AlbumJobs(store, runner, ConfigStore(Config(albums=[album])), refresh_map=not args.no_map)
    try:
        # --- first index ---
        phases: dict[str, float] = {}
        events = jobs.subscribe(KEY)
        began = time.perf_counter()
        deadline = began + args.index_minutes * 60
        task = asyncio.ensure_future(jobs.run_index(KEY))
        last_print = began
        stopped_at: float | None = None
        while not task.done():
            await asyncio.wait({task}, timeout=1.0)
            while not events.empty():
                progress = events.get_nowait()
                phases.setdefault(progress.phase, time.perf_counter() - began)
            now = jobs.progress(KEY)
            if stopped_at is None and time.perf_counter() > deadline and now.phase == "embedding":
                stopped_at = time.perf_counter() - began
                print(f"  index: {args.index_minutes} min are up at {now.done}/{now.total}: stopping there", flush=True)
                await jobs.cancel(KEY)  # committed batches stay; the gallery becomes what was indexed
            if time.perf_counter() - last_print > 60:
                last_print = time.perf_counter()
                print(f"  index: {now.phase} {now.done}/{now.total} at {now.rate or 0:.1f} img/s, "
                      f"{last_print - began:.0f} s (load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
        first = task.result()
        table = store.open(KEY)
        assert table is not None
        if stopped_at is not None:
            indexed = set(table.stat_index())
            for path in gallery.rglob("*.png"):
                if str(path) not in indexed:
                    path.unlink()
            first = await jobs.run_index(KEY)  # nothing left to embed: the owner's post-run compact, indexes, map
        if first.state != "done":
            raise RuntimeError(f"first index ended {first.state}: {first.message}")
        table_dir = config.index_dir() / f"{KEY}.lance"
        index_s = time.perf_counter() - began
        indexed_files = table.count()
        embed_s = (stopped_at or phases.get("optimizing", index_s)) - phases.get("embedding", 0.0)
        results["first_index"] = {
            "files_generated": args.files, "files_indexed": indexed_files, "stopped_at_deadline": stopped_at is not None,
            "seconds": round(index_s, 1), "embedding_s": round(embed_s, 1),
            "img_per_s": round(indexed_files / embed_s, 2) if embed_s > 0 else None,
            "phase_starts_s": {name: round(value, 1) for name, value in phases.items()},
            "commits": dict(writes.commits), "compactions": len(writes.compactions),
            "last_compaction": writes.compactions[-1] if writes.compactions else None,
            "after": snapshot(table, table_dir), "loadavg": os.getloadavg(),
        }  # fmt: skip
        print(json.dumps(results["first_index"]), flush=True)
        commits_after_index = Counter(writes.commits)
        compactions_after_index = len(writes.compactions)
        existing = sorted(str(path) for path in gallery.rglob("*.png"))

        # --- living phase ---
        queries = await runner.run(lambda embedder, texts: embedder.encode_texts(texts), QUERY_TEXTS)
        how = searches(gallery, queries, jobs.vectors)
        await loop.run_in_executor(None, search_burst, table, how, 0, 3)  # load the matrix
        timeline: list[dict[str, Any]] = []
        next_number = args.files + 1
        last_run_id = first.run_id
        living_began, living_wall = time.perf_counter(), time.time()
        event = 0
        while time.perf_counter() - living_began < args.minutes * 60:
            event += 1
            changed: set[str] = set()
            for _ in range(args.files_per_event):
                path = image_path(gallery, next_number)
                noise_png(path, rng)
                changed.add(str(path))
                next_number += 1
            if args.edit_every and event % args.edit_every == 0:  # an edit: same file, new content and mtime
                edited = existing[int(rng.integers(0, len(existing)))]
                noise_png(Path(edited), rng)
                changed.add(edited)
            compactions_before = len(writes.compactions)
            run_began = time.perf_counter()
            jobs.files_changed(KEY, changed)
            ended = await wait_for_run(events, last_run_id)
            run_s = time.perf_counter() - run_began
            if ended.state != "done":
                raise RuntimeError(f"watcher run ended {ended.state}: {ended.message}")
            last_run_id = ended.run_id
            table = store.open(KEY)
            assert table is not None
            first_s, plain_s, filtered_s = await loop.run_in_executor(
                None, search_burst, table, how, event * args.searches_per_event, args.searches_per_event
            )
            compacted = writes.compactions[compactions_before:]
            timeline.append({
                "t_s": round(time.perf_counter() - living_began, 1), "event": event, "files": len(changed),
                "run_s": round(run_s, 3), "compactions": len(compacted), "compact_s": sum(c["s"] for c in compacted),
                "pending_commits": uncompacted(table), "versions": table.version_count(),
                "table_mb": mb(dir_bytes(table_dir)),
                "first_search_ms": round(first_s * 1e3, 2), "plain_ms": [round(s * 1e3, 2) for s in plain_s],
                "filtered_ms": [round(s * 1e3, 2) for s in filtered_s],
            })  # fmt: skip
            if event % 10 == 0:
                print(f"  event {event} at {timeline[-1]['t_s']} s: run {run_s:.2f} s, "
                      f"{timeline[-1]['pending_commits']} commits uncompacted, "
                      f"search p50 {p50_ms(plain_s)} / filtered {p50_ms(filtered_s)} ms, first {first_s * 1e3:.0f} ms "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
        table = store.open(KEY)
        assert table is not None
        watcher_commits = writes.commits - commits_after_index
        per_minute = []
        for minute in range(int(args.minutes) + 1):
            rows = [entry for entry in timeline if minute * 60 <= entry["t_s"] < (minute + 1) * 60]
            if rows:
                per_minute.append({
                    "minute": minute + 1, "events": len(rows),
                    "plain_p50_ms": p50_ms([s / 1e3 for entry in rows for s in entry["plain_ms"]]),
                    "filtered_p50_ms": p50_ms([s / 1e3 for entry in rows for s in entry["filtered_ms"]]),
                    "first_search_p50_ms": p50_ms([entry["first_search_ms"] / 1e3 for entry in rows]),
                    "run_p50_s": round(float(np.median([entry["run_s"] for entry in rows])), 3),
                    "compactions": sum(entry["compactions"] for entry in rows),
                    "versions_max": max(entry["versions"] for entry in rows),
                    "table_mb_max": max(entry["table_mb"] for entry in rows),
                })  # fmt: skip
        by_pending = []  # search time against the commits left uncompacted when it ran: the owner's cycle
        for low in range(0, max(entry["pending_commits"] for entry in timeline) + 1, PENDING_BIN):
            rows = [entry for entry in timeline if low <= entry["pending_commits"] < low + PENDING_BIN]
            if rows:
                by_pending.append({
                    "pending_commits": f"{low}-{low + PENDING_BIN - 1}", "events": len(rows),
                    "plain_p50_ms": p50_ms([s / 1e3 for entry in rows for s in entry["plain_ms"]]),
                    "filtered_p50_ms": p50_ms([s / 1e3 for entry in rows for s in entry["filtered_ms"]]),
                })  # fmt: skip
        living_compactions = writes.compactions[compactions_after_index:]
        results["living"] = {
            "minutes": args.minutes, "events": event, "files_added": next_number - args.files - 1,
            "files_edited": event // args.edit_every if args.edit_every else 0,
            "watcher_commits": dict(watcher_commits), "watcher_commits_total": sum(watcher_commits.values()),
            "compactions": [c | {"at": round(c["at"] - living_wall, 1)} for c in living_compactions],
            "versions_max": max(entry["versions"] for entry in timeline),
            "table_mb_max": max(entry["table_mb"] for entry in timeline),
            "per_minute": per_minute, "by_pending_commits": by_pending, "after": snapshot(table, table_dir),
            "pending_commits_at_end": uncompacted(table), "loadavg_end": os.getloadavg(),
        }  # fmt: skip
        print(json.dumps({k: v for k, v in results["living"].items() if k not in ("per_minute", "by_pending_commits")}))
        for entry in per_minute + by_pending:
            print(json.dumps(entry), flush=True)

        # --- against the same rows in one commit ---
        copy = await loop.run_in_executor(None, one_commit_copy, table, work / "one-commit")
        results["side_by_side"] = await loop.run_in_executor(
            None, side_by_side, {"living": table, "one-commit": copy}, how, args.side_by_side_rounds
        )
        results["side_by_side"]["living"]["pending_commits"] = uncompacted(table)
        print(json.dumps(results["side_by_side"]), flush=True)
        results["timeline"] = timeline
        return results
    finally:
        await jobs.close()
        runner.close()
        writes.uninstall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--index-minutes", type=float, default=40.0, help="stop the first index here, keep what it did")
    parser.add_argument("--minutes", type=float, default=6.0, help="length of the living phase")
    parser.add_argument("--files-per-event", type=int, default=4, help="an InvokeAI batch lands a few images at once")
    parser.add_argument("--edit-every", type=int, default=5, help="every Nth event also rewrites an existing file")
    parser.add_argument("--searches-per-event", type=int, default=21)
    parser.add_argument("--side-by-side-rounds", type=int, default=100)
    parser.add_argument("--no-map", action="store_true", help="skip the owner's map refresh after each run")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-living-", dir=args.workdir))
    for name in ("config", "data", "cache"):  # nothing touches the user's real photomap dirs
        os.environ[f"PHOTOMAP_{name.upper()}_DIR"] = str(work / name)
    results: dict[str, Any] = {}
    try:
        results = asyncio.run(run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.out and results:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
