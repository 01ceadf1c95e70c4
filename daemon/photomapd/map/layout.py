"""The semantic map: a 2-D layout of an album's vectors that stays put and grows.

`refresh_map` is the one entry point (sync, run in a worker thread): it fits UMAP when an album has no layout, places
rows whose `x` is null among the fitted rows (`AnchorMap.transform`; old points never move), and refits only on demand
or past `REFIT_GROWTH`, then aligns the new layout to the old one (Procrustes) so the picture stays familiar.
Coordinates and clusters live in the album's table; the placement model and the layout facts live in
`data_dir()/maps/<album>.*` so placing works after a restart. umap-learn (numba) is imported lazily: its first JIT
costs a minute.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ValidationError

from photomapd import config
from photomapd.map.clusters import ClusterInfo, assign_nearest, cluster_layout, label_clusters, needs_hdbscan
from photomapd.spawned import in_this_process
from photomapd.store import AlbumTable

log = logging.getLogger(__name__)

RANDOM_STATE = 42  # fixed: the same vectors give the same map on every machine and every run
N_NEIGHBORS = 15  # bench_map.py: 30 or 50 kept no more neighbours; 15 keeps the graph and saved model smallest
MIN_DIST = 0.1
MIN_UMAP_POINTS = 16  # below this UMAP's neighbour graph is too small to fit; a PCA projection stands in
FIT_SAMPLE = 50_000  # larger albums fit on a seeded sample and `transform` the rest: bounded fit time and memory
REFIT_GROWTH = 1.5  # refit once an album has grown 50 % past the size it was fitted at
CHUNK_ROWS = 5_000  # vectors read and placed per step: 10 MB at 512 dims, and a progress tick per chunk
PLACE_BLOCK = 1_024  # new rows scored against the fitted ones at once: 200 MB of similarities at a 50k fit
# Cosine-distance scale of the placement weights: a near-duplicate (distance ~0) outweighs neighbours 0.1 further
# away by e^5, so it lands on its twin; neighbours at about the same distance share the weight.
PLACE_SOFTNESS = 0.02
STATE_FORMAT = 1

ProgressFn = Callable[[int, int], None]
TextEncoder = Callable[[Sequence[str]], np.ndarray]
# Runs `fn(*args)` for the layout's heavy steps (UMAP, clustering): `spawned.in_this_process`, or a
# `spawned.ChildProcess` so that umap-learn and scikit-learn (~370 MB once imported) never stay in the daemon.
Compute = Callable[..., Any]


def maps_dir() -> Path:
    return config.data_dir() / "maps"


class MapState(BaseModel):
    """`maps/<album>.json`: which reducer file belongs to the layout in the table, and how to place new points."""

    format: int = STATE_FORMAT
    layout_version: int
    method: Literal["umap", "pca"]
    model: str  # the embedding model the reducer was fitted on: a model change means a new layout
    dim: int
    fit_size: int  # rows the reducer saw
    fit_total: int  # rows in the album at fit time, for the growth threshold
    affine: list[list[float]]  # 2x2, then `offset`: the Procrustes alignment applied to the reducer's output
    offset: list[float]
    reducer_file: str
    clusters: list[ClusterInfo]


@dataclass(frozen=True)
class MapRefreshResult:
    action: Literal["none", "fit", "refit", "transform"]
    placed: int  # rows whose coordinates were written by this call
    total: int  # rows in the album
    layout_version: int


class LinearMap:
    """PCA onto two axes, the layout for albums too small for UMAP (pickled like a reducer)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.mean = vectors.mean(axis=0)
        _, _, vt = np.linalg.svd(vectors - self.mean, full_matrices=False)
        axes = np.zeros((2, vectors.shape[1]), dtype=np.float64)  # one or two points span fewer than two axes
        axes[: min(2, len(vt))] = vt[:2]
        self.axes = axes

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        return (np.asarray(vectors, dtype=np.float64) - self.mean) @ self.axes.T


class AnchorMap:
    """Places new vectors among the fitted ones: exact cosine neighbours, then a distance-weighted mean of their spots.

    This is what we persist instead of the UMAP object. umap's own `transform` searches its NN-descent index, which on
    CLIP-like 512-d data found a same-group neighbour for under half the new points (bench_map.py notes); the exact
    search finds them all, costs one matrix product per 1k rows, and the saved file holds two arrays instead of umap
    and pynndescent internals that a library upgrade could break.
    """

    def __init__(self, vectors: np.ndarray, layout: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # L2-normalized at rest: dot = cosine
        self.layout = np.asarray(layout, dtype=np.float64)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        queries = np.asarray(vectors, dtype=np.float32)
        k = min(N_NEIGHBORS, len(self.vectors))
        out = np.empty((len(queries), 2), dtype=np.float64)
        for start in range(0, len(queries), PLACE_BLOCK):
            similarity = queries[start : start + PLACE_BLOCK] @ self.vectors.T
            nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
            distance = 1.0 - np.take_along_axis(similarity, nearest, axis=1).astype(np.float64)
            weight = np.exp(-(distance - distance.min(axis=1, keepdims=True)) / PLACE_SOFTNESS)
            out[start : start + len(weight)] = (self.layout[nearest] * weight[..., None]).sum(1) / weight.sum(1)[:, None]
        return out


# --- state files ----------------------------------------------------------------------------------------------------

def load_state(album_key: str) -> MapState | None:
    """The album's layout facts, or None when there is no layout (or the file is unreadable: then we refit)."""
    path = maps_dir() / f"{album_key}.json"
    try:
        state = MapState.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError):
        log.warning("map state %s is unreadable; the album will be laid out again", path, exc_info=True)
        return None
    return state if state.format == STATE_FORMAT else None


def _file_key(path: Path) -> tuple[Path, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (path, stat.st_mtime_ns, stat.st_size)  # a rewritten or damaged file no longer matches


class ReducerCache:
    """The last placement model used, keyed by its file. At 50k fitted rows it holds 100 MB of vectors, and reading
    it again for every watcher-triggered update would eat the placement budget; one slot keeps memory bounded to one
    album's model. Owned by the albums' owner (`jobs.AlbumJobs`), which also serializes every map write."""

    def __init__(self) -> None:
        self._slot: tuple[tuple[Path, int, int], Any] | None = None

    def remember(self, path: Path, reducer: Any) -> None:
        key = _file_key(path)
        self._slot = (key, reducer) if key else None

    def load(self, state: MapState) -> Any | None:
        path = maps_dir() / state.reducer_file
        if self._slot is not None and self._slot[0] == _file_key(path):
            return self._slot[1]
        try:
            with open(path, "rb") as handle:
                reducer = pickle.load(handle)  # our own file in our data dir, written by _save below
        except Exception:  # a missing or corrupt pickle (or a umap upgrade) only costs a refit
            log.warning("map model %s is unreadable; refitting", state.reducer_file, exc_info=True)
            return None
        self.remember(path, reducer)
        return reducer


def _save(album_key: str, state: MapState, reducer: Any, reducers: ReducerCache) -> None:
    """Reducer first, then the JSON naming it: a crash in between leaves the old pair intact plus an orphan file."""
    folder = maps_dir()
    config.write_atomic(folder / state.reducer_file, pickle.dumps(reducer, protocol=pickle.HIGHEST_PROTOCOL))
    config.write_atomic(folder / f"{album_key}.json", state.model_dump_json(indent=1).encode())
    reducers.remember(folder / state.reducer_file, reducer)
    for stale in folder.glob(f"{album_key}.v*.pkl"):
        if stale.name != state.reducer_file:
            stale.unlink(missing_ok=True)


def drop_map(album_key: str) -> None:
    """Forget an album's layout files (album deleted); the table's x/y go with the table."""
    for path in maps_dir().glob(f"{album_key}.*"):
        path.unlink(missing_ok=True)


# --- reading the table in bounded chunks ----------------------------------------------------------------------------


def _id_chunks(ids: np.ndarray) -> list[np.ndarray]:
    ordered, size = np.sort(ids), CHUNK_ROWS
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def _read_vectors(table: AlbumTable, wanted: np.ndarray, extra: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) for the `wanted` ids, read by id range so memory stays at the result plus one chunk."""
    id_parts: list[np.ndarray] = []
    vector_parts: list[np.ndarray] = []
    for chunk in _id_chunks(wanted):
        condition = f"id >= {int(chunk[0])} AND id <= {int(chunk[-1])}" + (f" AND {extra}" if extra else "")
        ids, vectors = table.vectors(condition)
        keep = np.isin(ids, chunk)
        id_parts.append(ids[keep])
        vector_parts.append(vectors[keep])
    if not id_parts:
        return np.zeros(0, dtype=np.int64), np.zeros((0, table.info.dim), dtype=np.float32)
    return np.concatenate(id_parts), np.concatenate(vector_parts)


def _placed(table: AlbumTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, xy float64[n, 2], cluster int[n]) of the rows that have coordinates."""
    data = table.arrow(["id", "x", "y", "cluster"], "x IS NOT NULL AND y IS NOT NULL")
    ids = data.column("id").to_numpy()
    xy = np.column_stack([data.column("x").to_numpy(), data.column("y").to_numpy()]).astype(np.float64)
    clusters = data.column("cluster").fill_null(-1).to_numpy()
    return ids, xy.reshape(len(ids), 2), clusters


# --- layout ---------------------------------------------------------------------------------------------------------


def _new_reducer(n_points: int) -> Any:
    # numba caches its compiled UMAP kernels on disk; point it at our cache dir so that works (and is reused across
    # daemon restarts and map processes) even where site-packages is read-only, as in pipx or system installs.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(config.cache_dir() / "numba"))
    import umap  # lazy: numba compiles on first import, seconds the daemon should not pay at start-up

    return umap.UMAP(
        n_components=2,
        metric="cosine",
        n_neighbors=min(N_NEIGHBORS, n_points - 1),
        min_dist=MIN_DIST,
        random_state=RANDOM_STATE,
        n_jobs=1,  # a fixed random_state makes umap run serially anyway; saying so silences its warning
        low_memory=True,
    )


def _umap_layout(vectors: np.ndarray) -> np.ndarray:
    """The UMAP fit, run wherever `compute` sends it (in a daemon that rests light: a map process of its own)."""
    return np.asarray(_new_reducer(len(vectors)).fit_transform(vectors), dtype=np.float64)


def _fit(vectors: np.ndarray, compute: Compute) -> tuple[Any, np.ndarray, Literal["umap", "pca"]]:
    """(placement model, layout of `vectors`, method)."""
    if len(vectors) < MIN_UMAP_POINTS:
        linear = LinearMap(vectors.astype(np.float64))
        return linear, linear.transform(vectors), "pca"
    layout = compute(_umap_layout, vectors)
    return AnchorMap(vectors, layout), layout, "umap"


def procrustes(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, t) minimising |source @ A + t - target|: rotation (or mirror), uniform scale and shift, no shear."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(src.T @ dst)
    spread = float((src**2).sum())
    scale = float(singular.sum()) / spread if spread > 0 else 1.0
    affine = scale * (u @ vt)
    return affine, target_mean - source_mean @ affine


def _project(reducer: Any, state: MapState, vectors: np.ndarray) -> np.ndarray:
    raw = np.asarray(reducer.transform(vectors), dtype=np.float64)
    return raw @ np.asarray(state.affine) + np.asarray(state.offset)


def _write(table: AlbumTable, ids: np.ndarray, xy: np.ndarray, clusters: np.ndarray) -> None:
    rows = [
        {"id": int(row_id), "x": float(x), "y": float(y), "cluster": int(c)}
        for row_id, (x, y), c in zip(ids, xy, clusters)
    ]
    table.update_columns(rows)


def _layout_all(
    table: AlbumTable,
    album_key: str,
    previous: MapState | None,
    progress: ProgressFn,
    encode_text: TextEncoder | None,
    reducers: ReducerCache,
    compute: Compute,
) -> MapState:
    """Fit on (a sample of) the whole album, place the rest, align to the old layout, cluster, write, save."""
    all_ids = table.arrow(["id"]).column("id").to_numpy()
    total = len(all_ids)
    rng = np.random.default_rng(RANDOM_STATE)
    sample = np.sort(rng.choice(all_ids, FIT_SAMPLE, replace=False)) if total > FIT_SAMPLE else np.sort(all_ids)
    progress(0, total)
    fit_ids, fit_vectors = _read_vectors(table, sample)
    reducer, fit_layout, method = _fit(fit_vectors, compute)
    progress(len(fit_ids), total)
    id_parts, layout_parts = [fit_ids], [fit_layout]
    for chunk in _id_chunks(np.setdiff1d(all_ids, fit_ids, assume_unique=True)):
        chunk_ids, vectors = _read_vectors(table, chunk)
        id_parts.append(chunk_ids)
        layout_parts.append(np.asarray(reducer.transform(vectors), dtype=np.float64))
        progress(sum(len(part) for part in id_parts), total)
    ids, layout = np.concatenate(id_parts), np.concatenate(layout_parts)

    affine, offset = np.eye(2), np.zeros(2)
    old_ids, old_xy, _ = _placed(table)
    common, new_at, old_at = np.intersect1d(ids, old_ids, assume_unique=True, return_indices=True)
    if len(common) >= 3:  # fewer points can't pin down a rotation; the first layout of an album keeps UMAP's frame
        affine, offset = procrustes(layout[new_at], old_xy[old_at])
        layout = layout @ affine + offset

    # A small album's PCA layout and single cluster need no library the daemon lacks: no map process for them.
    clusters = compute(cluster_layout, layout) if needs_hdbscan(len(layout)) else cluster_layout(layout)
    labels = label_clusters(table, ids, clusters, fit_ids, fit_vectors, encode_text)
    _write(table, ids, layout, clusters)
    version = (previous.layout_version if previous else 0) + 1
    state = MapState(
        layout_version=version,
        method=method,
        model=table.info.model,
        dim=table.info.dim,
        fit_size=len(fit_ids),
        fit_total=total,
        affine=affine.tolist(),
        offset=offset.tolist(),
        reducer_file=f"{album_key}.v{version}.pkl",
        clusters=labels,
    )
    _save(album_key, state, reducer, reducers)
    progress(total, total)
    log.info("map %s: laid out %d rows (%s, fitted on %d), layout v%d", album_key, total, method, len(fit_ids), version)
    return state


def _place_new(table: AlbumTable, state: MapState, reducer: Any, new_ids: np.ndarray, progress: ProgressFn) -> int:
    """Place rows without coordinates with the fitted reducer; every other row keeps its x, y."""
    placed_ids, placed_xy, placed_clusters = _placed(table)
    done = 0
    progress(0, len(new_ids))
    for chunk in _id_chunks(new_ids):
        ids, vectors = _read_vectors(table, chunk, "x IS NULL")
        if len(ids) == 0:
            continue
        xy = _project(reducer, state, vectors)
        _write(table, ids, xy, assign_nearest(placed_xy, placed_clusters, xy))
        done += len(ids)
        progress(done, len(new_ids))
    return done


def _needs_full_layout(state: MapState | None, table: AlbumTable, total: int, placed: int) -> bool:
    if state is None or placed == 0:
        return True
    if (state.model, state.dim) != (table.info.model, table.info.dim):
        return True  # vectors from another model live in another space
    # A PCA stand-in is replaced by UMAP as soon as the album is big enough for it.
    return total > state.fit_total * REFIT_GROWTH or (state.method == "pca" and total >= MIN_UMAP_POINTS)


def refresh_map(
    table: AlbumTable,
    album_key: str,
    *,
    force_refit: bool = False,
    progress: ProgressFn | None = None,
    encode_text: TextEncoder | None = None,
    reducers: ReducerCache | None = None,
    compute: Compute = in_this_process,
) -> MapRefreshResult:
    """Bring the album's map up to date: fit, refit + align, or place new rows. Cheap when nothing changed.

    `encode_text` (CLIP's text tower, optional) labels clusters of images without prompts by zero-shot. The caller
    is the album's owner, which never runs two writers of one album at once.
    """
    report = progress or (lambda done, total: None)
    reducers = reducers if reducers is not None else ReducerCache()
    total = table.count()
    new_ids = table.arrow(["id"], "x IS NULL OR y IS NULL").column("id").to_numpy()
    state = load_state(album_key)
    if total == 0:
        return MapRefreshResult("none", 0, 0, state.layout_version if state else 0)
    if not force_refit and state is not None and len(new_ids) == 0:
        return MapRefreshResult("none", 0, total, state.layout_version)
    reducer = None
    if not force_refit and not _needs_full_layout(state, table, total, total - len(new_ids)):
        reducer = reducers.load(state)  # type: ignore[arg-type]
    if reducer is None:
        action: Literal["fit", "refit"] = "refit" if state is not None or len(new_ids) < total else "fit"
        state = _layout_all(table, album_key, state, report, encode_text, reducers, compute)
        return MapRefreshResult(action, total, total, state.layout_version)
    assert state is not None
    placed = _place_new(table, state, reducer, new_ids, report)
    return MapRefreshResult("transform", placed, total, state.layout_version)

