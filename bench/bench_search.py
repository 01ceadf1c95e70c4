"""Search latency and recall over synthetic CLIP-like vectors, through the daemon's own `search_table`.

    .venv/bin/python bench/bench_search.py --rows 100000            # exact (brute force) and ANN
    .venv/bin/python bench/bench_search.py --rows 1000000 --no-exact-baselines

Vectors: 512-d unit vectors drawn around `rows / 100` random centres (CLIP embeddings of a gallery are clustered;
uniform random vectors have no neighbours worth finding and make every ANN look bad). Queries, half each:
"image" = a stored row plus small noise (more like this), "text" = a fresh draw from the mixture (no stored row
close to it: the hard case for an ANN). Latency is one `search_table` call (rank + read the page's rows from LanceDB), text encoding excluded.
Recall@10 = overlap of the returned top 10 with the exact top 10 (numpy over the full matrix).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from photomapd.search import vectors as album_vectors  # noqa: E402
from photomapd.search import SearchRequest, VectorCache, search_table  # noqa: E402
from photomapd.store import AlbumTable, Store, TableInfo  # noqa: E402

DIM = 512  # ViT-B-32, the default model
TOP_K = 10
WRITE_BATCH = 100_000


def mixture(centres: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around random centres: same-centre pairs have cosine ~0.4, others ~0 (CLIP-like spread)."""
    out = np.empty((count, DIM), dtype=np.float32)
    for start in range(0, count, WRITE_BATCH):
        size = min(WRITE_BATCH, count - start)
        block = centres[rng.integers(0, len(centres), size)] + rng.normal(scale=1.2, size=(size, DIM))
        out[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def make_queries(vectors: np.ndarray, centres: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    near = vectors[rng.integers(0, len(vectors), count // 2)] + rng.normal(scale=0.05, size=(count // 2, DIM))
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    return np.concatenate([near.astype(np.float32), mixture(centres, count - count // 2, rng)])


def write_table(root: Path, vectors: np.ndarray) -> AlbumTable:
    """Every WRITE_BATCH rows in one `upsert` (one commit): the ideal history; bench_history.py measures real ones."""
    table = Store(root).create("bench", TableInfo(model="ViT-B-32", pretrained="none", dim=DIM))
    for start in range(0, len(vectors), WRITE_BATCH):
        block = vectors[start : start + WRITE_BATCH]
        table.upsert(
            {"id": row_id, "path": f"/bench/{row_id}.png", "folder": "/bench", "mtime_ns": row_id, "size": row_id,
             "width": 512, "height": 512, "vector": vector}
            for row_id, vector in enumerate(block, start=start + 1)
        )  # fmt: skip
    return table


def exact_top(vectors: np.ndarray, query: np.ndarray) -> set[int]:
    scores = vectors @ query
    return set((np.argpartition(-scores, TOP_K)[:TOP_K] + 1).tolist())


def percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1e3
    return f"p50 {np.percentile(ms, 50):7.1f} ms   p95 {np.percentile(ms, 95):7.1f} ms"


def timed(fn, queries: np.ndarray) -> tuple[list[float], list]:  # type: ignore[no-untyped-def]
    seconds, answers = [], []
    for query in queries:
        start = time.perf_counter()
        answers.append(fn(query))
        seconds.append(time.perf_counter() - start)
    return seconds, answers


def recall(answers: list[set[int]], truth: list[set[int]]) -> float:
    return float(np.mean([len(a & t) / TOP_K for a, t in zip(answers, truth)]))


def report(name: str, seconds: list[float], answers: list[set[int]], truth: list[set[int]], half: int) -> None:
    print(
        f"{name:<44} {percentiles(seconds)}   recall@10 {recall(answers, truth):.3f} "
        f"(image {recall(answers[:half], truth[:half]):.3f}, text {recall(answers[half:], truth[half:]):.3f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-exact-baselines", action="store_true", help="skip the predecessor's per-query copy")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact search_table run")
    parser.add_argument("--no-ann", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(max(10, args.rows // 100), DIM)).astype(np.float32)
    vectors = mixture(centres, args.rows, rng)
    queries = make_queries(vectors, centres, args.queries, rng)
    half = args.queries // 2
    truth = [exact_top(vectors, query) for query in queries]
    root = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        start = time.perf_counter()
        table = write_table(root, vectors)
        print(f"{args.rows:,} rows x {DIM} written in {time.perf_counter() - start:.1f} s", flush=True)

        if not args.no_exact_baselines:
            def predecessor(query: np.ndarray) -> set[int]:  # copies and re-normalises the matrix per query
                matrix = vectors.copy()
                matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
                return set((np.argsort(-(matrix @ query))[:TOP_K] + 1).tolist())

            seconds, answers = timed(predecessor, queries[:: max(1, args.queries // 20)])
            picked = truth[:: max(1, args.queries // 20)]
            print(f"{'predecessor (copy + renormalise + argsort)':<44} {percentiles(seconds)}   "
                  f"recall@10 {recall(answers, picked):.3f}", flush=True)  # fmt: skip

        seconds, answers = timed(lambda q: set((np.argpartition(-(vectors @ q), TOP_K)[:TOP_K] + 1).tolist()), queries)
        report("numpy matvec + argpartition (no table)", seconds, answers, truth, half)

        cache = VectorCache()
        request = SearchRequest(limit=TOP_K)

        def exact(query: np.ndarray) -> set[int]:
            return {hit.id for hit in search_table(table, cache, query, request).results}

        if not args.no_exact:
            start = time.perf_counter()
            cache.matrix(table)
            print(f"vector cache load: {time.perf_counter() - start:.1f} s", flush=True)
            album_vectors.ANN_MIN_ROWS = args.rows + 1  # force the exact path
            seconds, answers = timed(exact, queries)
            report("search_table, exact (cached matrix)", seconds, answers, truth, half)
            cache.forget("bench")

        if not args.no_ann:
            album_vectors.ANN_MIN_ROWS = 1
            start = time.perf_counter()
            album_vectors.ensure_ann_index(table)
            print(f"IVF-PQ index build: {time.perf_counter() - start:.1f} s "
                  f"({album_vectors.ann_partitions(args.rows)} partitions, nprobes {album_vectors.ann_nprobes(args.rows)})",
                  flush=True)  # fmt: skip
            table = Store(root).open("bench")  # type: ignore[assignment]
            seconds, answers = timed(exact, queries[:5])  # warm the index cache
            seconds, answers = timed(exact, queries)
            report("search_table, IVF-PQ + refine", seconds, answers, truth, half)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
