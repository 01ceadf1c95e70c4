"""The map: parameter choice, cluster method, and the incremental path against a full refit, at 100k x 512.

    .venv/bin/python bench/bench_map.py --rows 100000                # everything (about 10 minutes on 2 cores)
    .venv/bin/python bench/bench_map.py --rows 100000 --skip-study   # only the scale part

Study (labelled 10k set, 200 groups, CLIP-like spread): UMAP n_neighbors / min_dist by fit time and trustworthiness;
clusters by HDBSCAN on the layout (what mapview does) against k-means on the vectors given the true group count,
scored by adjusted Rand index against the true groups.
Scale (100k vectors spread like bench_search's mixture, 1000 groups, written to a real LanceDB table, through `mapview.refresh_map`): first layout
(fit on a 50k sample + transform the rest), placing 1k new rows, the full refit the predecessor did instead, and the
payload the panel fetches. Trustworthiness at scale is measured on a 3k subsample (it is O(n^2)).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import DIM, write_table  # noqa: E402

from photomapd.map import clusters as mapclusters
from photomapd.map import payload as mappayload
from photomapd.map import layout as mapview  # noqa: E402
from photomapd.store import AlbumTable  # noqa: E402

TRUST_SAMPLE = 3_000
TRUST_K = 10
WARM_ROWS = 5_000


def trust(vectors: np.ndarray, layout: np.ndarray, rng: np.random.Generator) -> float:
    from sklearn.manifold import trustworthiness

    pick = rng.choice(len(vectors), min(TRUST_SAMPLE, len(vectors)), replace=False)
    return float(trustworthiness(vectors[pick], layout[pick], n_neighbors=TRUST_K, metric="cosine"))


def same_group_share(points: np.ndarray, truth: np.ndarray, rng: np.random.Generator, cosine: bool) -> float:
    """Share of each query point's 10 nearest neighbours from its own group (1k queries against every point)."""
    queries = rng.choice(len(points), 1_000, replace=False)
    if cosine:
        parts = []
        for block in np.array_split(queries, 8):  # 125 x 100k scores at a time, not 1k x 100k
            scores = points[block] @ points.T
            scores[np.arange(len(block)), block] = -np.inf
            parts.append(np.argpartition(-scores, TRUST_K, axis=1)[:, :TRUST_K])
        nearest = np.concatenate(parts)
    else:
        from scipy.spatial import cKDTree

        nearest = cKDTree(points).query(points[queries], k=TRUST_K + 1)[1][:, 1:]
    return float(np.mean(truth[nearest] == truth[queries][:, None]))


def labelled(centres: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Like bench_search.mixture (same spread: same-centre cosine ~0.4), keeping which centre each vector came from."""
    truth = rng.integers(0, len(centres), count)
    vectors = np.empty((count, DIM), dtype=np.float32)
    for start in range(0, count, 10_000):  # in blocks: the float64 noise for 100k rows would be 400 MB at once
        groups = truth[start : start + 10_000]
        block = centres[groups] + rng.normal(scale=1.2, size=(len(groups), DIM))
        vectors[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return vectors, truth


def study(rng: np.random.Generator) -> None:
    import umap
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    groups = 200
    vectors, truth = labelled(rng.normal(size=(groups, DIM)), 10_000, rng)
    print(f"UMAP parameters on 10k x 512 ({groups} groups of ~50), cosine, random_state fixed; first fit pays the JIT")
    layouts = {}
    for n_neighbors, min_dist in ((15, 0.1), (15, 0.1), (30, 0.1), (50, 0.1), (15, 0.0)):
        start = time.perf_counter()
        reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine", random_state=42, n_jobs=1)
        layout = reducer.fit_transform(vectors)
        took = time.perf_counter() - start
        layouts[(n_neighbors, min_dist)] = layout
        print(f"  n_neighbors {n_neighbors:>2} min_dist {min_dist:.1f}: fit {took:6.1f} s   "
              f"trustworthiness@{TRUST_K} {trust(vectors, layout, rng):.3f}   "
              f"same-group share of 10-NN {same_group_share(layout, truth, rng, cosine=False):.3f}", flush=True)  # fmt: skip
    print(f"  (same-group share of 10-NN in the 512-d space itself: "
          f"{same_group_share(vectors, truth, rng, cosine=True):.3f})")  # fmt: skip
    layout = layouts[(mapview.N_NEIGHBORS, mapview.MIN_DIST)].astype(np.float64)
    print(f"Clusters against the {groups} true groups (adjusted Rand index)")
    for hint in (mapclusters.MAX_CLUSTERS_HINT, 400):
        setting = "mapview's setting" if hint == mapclusters.MAX_CLUSTERS_HINT else "min size n/400"
        start = time.perf_counter()
        found = mapclusters.cluster_layout(layout, max_clusters_hint=hint)
        print(f"  HDBSCAN on the layout, {setting:<18} {time.perf_counter() - start:7.2f} s   "
              f"ARI {adjusted_rand_score(truth, found):.3f}   {len(np.unique(found))} clusters", flush=True)  # fmt: skip
    for name, data in (("vectors", vectors), ("layout", layout)):
        start = time.perf_counter()
        kmeans = KMeans(n_clusters=groups, n_init=1, random_state=0).fit_predict(data)
        print(f"  k-means on the {name:<8} k={groups} given  {time.perf_counter() - start:7.2f} s   "
              f"ARI {adjusted_rand_score(truth, kmeans):.3f}", flush=True)  # fmt: skip


def add_rows(table: AlbumTable, vectors: np.ndarray, first_id: int) -> None:
    rows = [
        {"id": first_id + i, "path": f"/bench/new{first_id + i}.png", "folder": "/bench", "mtime_ns": 1, "size": 1,
         "width": 512, "height": 512, "vector": vector.tolist()}
        for i, vector in enumerate(vectors)
    ]  # fmt: skip
    table.upsert(rows)


def placed_layout(table: AlbumTable, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, layout) of ids 1..rows, in id order (so row i has truth[i - 1])."""
    ids, vectors = table.vectors(f"id <= {rows}")
    data = table.arrow(["id", "x", "y"], f"id <= {rows}").to_pydict()
    where = {row_id: (x, y) for row_id, x, y in zip(data["id"], data["x"], data["y"])}
    order = np.argsort(ids)
    return vectors[order], np.array([where[int(i)] for i in ids[order]])


def report_quality(table: AlbumTable, truth: np.ndarray, rng: np.random.Generator) -> None:
    vectors, layout = placed_layout(table, len(truth))
    print(f"  same-group share of 10-NN: layout {same_group_share(layout, truth, rng, cosine=False):.3f}, "
          f"512-d space {same_group_share(vectors, truth, rng, cosine=True):.3f}; "
          f"trustworthiness@{TRUST_K} on 3k {trust(vectors, layout, rng):.3f}", flush=True)  # fmt: skip


def timed(label: str, fn: Any) -> Any:
    start = time.perf_counter()
    result = fn()
    print(f"  {label:<52} {time.perf_counter() - start:8.2f} s", flush=True)
    return result


def scale(rows: int, rng: np.random.Generator, full_fit: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-map-"))
    import os

    os.environ["PHOTOMAP_DATA_DIR"] = str(root / "data")  # mapview keeps its model files under the data dir
    try:
        centres = rng.normal(size=(max(10, rows // 100), DIM)).astype(np.float32)
        vectors, truth = labelled(centres, rows, rng)
        table = write_table(root / "index", vectors)
        # Past 4096 rows umap switches to pynndescent, whose numba JIT is most of the first fit: warm that path too.
        warm = write_table(root / "warm", labelled(centres, WARM_ROWS, rng)[0])
        print(f"Scale: {rows} x {DIM} in LanceDB (numba JIT warmed on {WARM_ROWS} rows first)")
        reducers = mapview.ReducerCache()  # the albums' owner holds one for the daemon's life
        timed(f"first layout in a process ({WARM_ROWS} rows, mostly JIT)", lambda: mapview.refresh_map(warm, "warm"))
        timed(f"the same again, compiled ({WARM_ROWS} rows)", lambda: mapview.refresh_map(warm, "warm", force_refit=True))
        marks: list[tuple[float, int]] = []
        start = time.perf_counter()
        result = mapview.refresh_map(
            table, "bench", progress=lambda done, total: marks.append((time.time(), done)), reducers=reducers
        )
        took = time.perf_counter() - start
        state = mapview.load_state("bench")
        assert state is not None
        fitted_at = next(t for t, done in marks if done >= state.fit_size) - marks[0][0]
        print(f"  first layout ({result.action}, fit on {state.fit_size}, rest transformed){'':<8} {took:8.2f} s"
              f"   (fit {fitted_at:.1f} s)")  # fmt: skip
        report_quality(table, truth, rng)
        pickle_mb = (mapview.maps_dir() / state.reducer_file).stat().st_size / 1e6
        reducers = mapview.ReducerCache()  # as after a daemon restart
        timed(f"load the persisted model ({pickle_mb:.0f} MB, cold)", lambda: reducers.load(state))

        for run, cold in ((1, False), (2, True)):
            add_rows(table, labelled(centres, 1_000, rng)[0], first_id=rows + run * 1_000)
            if cold:
                reducers = mapview.ReducerCache()
            label = "place 1k new rows, model read from disk" if cold else "place 1k new rows, model in memory"
            placed = timed(label, lambda: mapview.refresh_map(table, "bench", reducers=reducers))
            assert placed.action == "transform" and placed.placed == 1_000
        timed("no change (refresh_map no-op)", lambda: mapview.refresh_map(table, "bench", reducers=reducers))
        timed("full refit + Procrustes (what the predecessor did)", lambda: mapview.refresh_map(
            table, "bench", force_refit=True))  # fmt: skip

        sizes, seconds = [], []
        for _ in range(5):
            begin = time.perf_counter()
            sizes.append(len(mappayload.encode_map(table, "bench")))
            seconds.append(time.perf_counter() - begin)
        print(f"  payload for {rows + 2_000} points: {sizes[0] / 1e6:.2f} MB, encode median "
              f"{np.median(seconds) * 1e3:.0f} ms (min {min(seconds) * 1e3:.0f} ms)")  # fmt: skip
        begin = time.perf_counter()
        mappayload.map_etag(table, "bench")
        print(f"  ETag (the 304 path): {(time.perf_counter() - begin) * 1e3:.1f} ms")

        if full_fit:
            mapview.FIT_SAMPLE = 10**9
            start = time.perf_counter()
            mapview.refresh_map(table, "bench", force_refit=True)
            print(f"  full refit with no sampling (all rows fitted){'':<8} {time.perf_counter() - start:8.2f} s")
            report_quality(table, truth, rng)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-study", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--full-fit", action="store_true", help="also refit on every row, no sample (slow)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    if not args.skip_study:
        study(rng)
    if not args.skip_scale:
        scale(args.rows, rng, args.full_fit)


if __name__ == "__main__":
    main()
