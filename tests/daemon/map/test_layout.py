"""The map over real LanceDB tables of synthetic clustered vectors: fit, placement, refit + alignment, clusters, payload.

The first UMAP fit in a process pays numba's JIT (seconds); the sets are small so every later fit takes well under one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from scipy import spatial
from sklearn.manifold import trustworthiness

from photomapd import config
from photomapd.map import clusters as mapclusters
from photomapd.map import payload as mappayload
from photomapd.map import layout as mapview
from photomapd.store import AlbumTable, Store, TableInfo

DIM = 64
SUBJECTS = ["red fox forest", "blue ocean whale", "castle knight armor", "neon city night", "kitten sofa yarn"]


def clustered(n: int, seed: int = 1, dim: int = DIM, spread: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """(unit vectors, true cluster per vector): points scattered around len(SUBJECTS) random directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(SUBJECTS), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = rng.integers(0, len(SUBJECTS), n)
    vectors = centres[truth] + rng.normal(scale=spread, size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), truth


def rows(vectors: np.ndarray, truth: np.ndarray, first_id: int = 1, prompts: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "id": first_id + i,
            "path": f"/photos/img{first_id + i}.png",
            "folder": "/photos",
            "mtime_ns": 1,
            "size": 1,
            "width": 64,
            "height": 64,
            "vector": vector.tolist(),
            "positive_prompt": f"{SUBJECTS[label]}, masterpiece, best quality" if prompts else None,
        }
        for i, (vector, label) in enumerate(zip(vectors, truth))
    ]


def new_table(key: str, dim: int = DIM) -> AlbumTable:
    return Store(config.index_dir()).create(key, TableInfo(model="m", pretrained="none", dim=dim))


def coords(table: AlbumTable) -> dict[int, tuple[float, float, int]]:
    data = table.arrow(["id", "x", "y", "cluster"]).to_pydict()
    return {i: (x, y, c) for i, x, y, c in zip(data["id"], data["x"], data["y"], data["cluster"])}


def layout_of(table: AlbumTable) -> tuple[np.ndarray, np.ndarray]:
    ids, vectors = table.vectors()
    placed = coords(table)
    return vectors, np.array([placed[int(i)][:2] for i in ids])


@pytest.fixture
def album() -> tuple[AlbumTable, np.ndarray, np.ndarray]:
    vectors, truth = clustered(500)
    table = new_table("album")
    table.upsert(rows(vectors[:400], truth[:400]))
    return table, vectors, truth


def test_layout_is_deterministic_for_a_fixed_seed() -> None:
    vectors, truth = clustered(300)
    first, second = new_table("first"), new_table("second")
    for table, key in ((first, "first"), (second, "second")):
        table.upsert(rows(vectors, truth))
        assert mapview.refresh_map(table, key).action == "fit"
    assert coords(first) == coords(second)
    assert all(x is not None for x, _, _ in coords(first).values())


def test_layout_keeps_neighbours_and_puts_near_duplicates_together(album: Any) -> None:
    table, vectors, truth = album
    duplicates = vectors[:40] + np.random.default_rng(5).normal(scale=0.002, size=(40, DIM)).astype(np.float32)
    table.upsert(rows(duplicates / np.linalg.norm(duplicates, axis=1, keepdims=True), truth[:40], first_id=1001))
    mapview.refresh_map(table, "album")
    all_vectors, layout = layout_of(table)
    assert trustworthiness(all_vectors, layout, n_neighbors=10, metric="cosine") >= 0.9
    placed = coords(table)
    xy = np.array([placed[i][:2] for i in sorted(placed)])
    span = np.ptp(xy, axis=0).max()
    gaps = [np.hypot(*(np.array(placed[i][:2]) - np.array(placed[1000 + i][:2]))) for i in range(1, 41)]
    assert np.median(gaps) < 0.05 * span


def test_adding_100_images_places_them_without_moving_old_points(album: Any) -> None:
    table, vectors, truth = album
    mapview.refresh_map(table, "album")
    before = coords(table)
    table.upsert(rows(vectors[400:], truth[400:], first_id=401))
    result = mapview.refresh_map(table, "album")
    after = coords(table)
    assert (result.action, result.placed, result.layout_version) == ("transform", 100, 1)
    assert {i: after[i] for i in before} == before
    # Each new point lands among old points of its own true cluster.
    old_ids = np.array(sorted(before))
    old_xy = np.array([before[i][:2] for i in old_ids])
    hits = 0
    for offset in range(100):
        new_xy = np.array(after[401 + offset][:2])
        nearest = old_ids[np.argsort(np.hypot(*(old_xy - new_xy).T))[:5]]
        hits += np.mean(truth[nearest - 1] == truth[400 + offset]) >= 0.6
    assert hits >= 95
    assert mapview.refresh_map(table, "album").action == "none"


def test_placed_near_duplicates_land_on_their_twin(album: Any) -> None:
    table, vectors, truth = album
    mapview.refresh_map(table, "album")
    twins = vectors[:20] + np.random.default_rng(8).normal(scale=0.002, size=(20, DIM)).astype(np.float32)
    table.upsert(rows(twins / np.linalg.norm(twins, axis=1, keepdims=True), truth[:20], first_id=2001))
    assert mapview.refresh_map(table, "album").action == "transform"
    placed = coords(table)
    span = np.ptp(np.array([xy[:2] for xy in placed.values()]), axis=0).max()
    gaps = [np.hypot(*(np.array(placed[i][:2]) - np.array(placed[2000 + i][:2]))) for i in range(1, 21)]
    assert max(gaps) < 0.02 * span
    assert all(placed[i][2] == placed[2000 + i][2] for i in range(1, 21))  # and join the twin's cluster


def test_nothing_changed_is_a_no_op_that_writes_nothing(album: Any) -> None:
    table, _, _ = album
    mapview.refresh_map(table, "album")
    version = table.version
    result = mapview.refresh_map(table, "album")
    assert (result.action, result.placed) == ("none", 0)
    assert table.version == version


def test_growth_past_threshold_refits_and_aligns_to_the_old_layout() -> None:
    # An album grows the way albums do, by new subjects: 300 images of three subjects, then 400 more that bring two
    # new ones (300 -> 700 rows: past REFIT_GROWTH).
    vectors, truth = clustered(700)
    arrival = np.argsort(truth >= 3, kind="stable")
    vectors, truth = vectors[arrival], truth[arrival]
    assert set(truth[:300].tolist()) == {0, 1, 2}
    table = new_table("album")
    table.upsert(rows(vectors[:300], truth[:300]))
    mapview.refresh_map(table, "album")
    before = coords(table)
    table.upsert(rows(vectors[300:], truth[300:], first_id=301))
    result = mapview.refresh_map(table, "album")
    after = coords(table)
    assert (result.action, result.layout_version) == ("refit", 2)
    ids = np.array(sorted(before))
    old = np.array([before[i][:2] for i in ids])
    new = np.array([after[i][:2] for i in ids])
    group = truth[ids - 1]
    # Where UMAP puts a point differs between CPUs (numba's AVX2 and AVX-512 code rounds differently), so no bound
    # below is fitted to one machine's numbers: each holds with room over 24 refits of this scenario across data and
    # UMAP seeds, which move a layout at least as much as numba's generic-CPU build moves it from the native one. The
    # figures quoted are those refits'.

    # Aligned: no turn, mirror, zoom or shift of the new map would bring the old points closer to where they were.
    # A least-squares alignment makes the two shares equal on any CPU (ratio 1); unaligned refits left 1.7x to 260x.
    moved = ((new - old) ** 2).sum() / ((old - old.mean(axis=0)) ** 2).sum()
    _, _, least = spatial.procrustes(old, new)
    assert moved <= 1.2 * least, (moved, least)

    # The groups keep their members: an old point's nearest old neighbours on the new map are of its own group (all
    # of them in every refit measured; a layout that mixed groups would be far below).
    _, neighbours = spatial.cKDTree(new).query(new, k=11)
    assert np.mean(group[neighbours[:, 1:]] == group[:, None]) >= 0.95

    # ... and their place: old points stay nearer their own group's old centre than any other group's. All points
    # did in 23 of 24 refits; one refit swapped a group (65 %). Under half would take two of three groups moving.
    centres = np.array([old[group == g].mean(axis=0) for g in range(3)])
    nearest_centre = np.linalg.norm(new[:, None, :] - centres[None], axis=2).argmin(axis=1)
    assert np.mean(nearest_centre == group) >= 0.5


def test_forced_refit_bumps_the_layout_version(album: Any) -> None:
    table, _, _ = album
    mapview.refresh_map(table, "album")
    result = mapview.refresh_map(table, "album", force_refit=True)
    assert (result.action, result.layout_version) == ("refit", 2)
    assert sorted(p.name for p in mapview.maps_dir().iterdir()) == ["album.json", "album.v2.pkl"]


def test_tiny_albums_get_coordinates_and_switch_to_umap_when_big_enough() -> None:
    vectors, truth = clustered(30)
    table = new_table("tiny")
    table.upsert(rows(vectors[:1], truth[:1]))
    assert mapview.refresh_map(table, "tiny").action == "fit"
    table.upsert(rows(vectors[1:5], truth[1:5], first_id=2))
    mapview.refresh_map(table, "tiny")
    assert all(x is not None and np.isfinite(x) for x, _, _ in coords(table).values())
    assert mapview.load_state("tiny").method == "pca"  # type: ignore[union-attr]
    table.upsert(rows(vectors[5:], truth[5:], first_id=6))
    assert mapview.refresh_map(table, "tiny").action == "refit"
    assert mapview.load_state("tiny").method == "umap"  # type: ignore[union-attr]
    assert len(coords(table)) == 30 and all(x is not None for x, _, _ in coords(table).values())


def test_a_small_album_is_laid_out_without_starting_a_map_process() -> None:
    """PCA and a single cluster need nothing the daemon lacks: the child process (seconds to start) is left alone."""
    vectors, truth = clustered(12)
    table = new_table("small")
    table.upsert(rows(vectors, truth))

    def no_child(fn: Any, *args: Any) -> Any:
        raise AssertionError(f"{fn.__name__} was sent to a map process")

    assert mapview.refresh_map(table, "small", compute=no_child).action == "fit"
    assert len(coords(table)) == 12 and {cluster for _, _, cluster in coords(table).values()} == {0}


def test_corrupt_or_missing_model_file_means_a_refit_not_a_crash(album: Any) -> None:
    table, vectors, truth = album
    mapview.refresh_map(table, "album")
    (mapview.maps_dir() / "album.v1.pkl").write_bytes(b"not a pickle")
    table.upsert(rows(vectors[400:], truth[400:], first_id=401))
    result = mapview.refresh_map(table, "album")
    assert (result.action, result.layout_version) == ("refit", 2)
    (mapview.maps_dir() / "album.json").write_text("{broken")
    table.upsert(rows(vectors[:1], truth[:1], first_id=900))
    assert mapview.refresh_map(table, "album").action == "refit"
    assert all(x is not None for x, _, _ in coords(table).values())


def test_large_albums_fit_on_a_sample_and_place_the_rest(album: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    table, _, truth = album
    monkeypatch.setattr(mapview, "FIT_SAMPLE", 150)
    monkeypatch.setattr(mapview, "CHUNK_ROWS", 64)
    events: list[tuple[int, int]] = []
    mapview.refresh_map(table, "album", progress=lambda done, total: events.append((done, total)))
    state = mapview.load_state("album")
    assert state is not None and (state.fit_size, state.fit_total) == (150, 400)
    assert events[0] == (0, 400) and events[-1] == (400, 400) and len(events) >= 6
    assert [done for done, _ in events] == sorted(done for done, _ in events)
    all_vectors, layout = layout_of(table)
    assert trustworthiness(all_vectors, layout, n_neighbors=10, metric="cosine") >= 0.9


def test_clusters_follow_the_true_groups_and_are_labelled_by_distinctive_prompt_words(album: Any) -> None:
    table, _, truth = album
    mapview.refresh_map(table, "album")
    placed = coords(table)
    found = np.array([placed[i][2] for i in range(1, 401)])
    labels = {info.id: info.label for info in mapview.load_state("album").clusters}  # type: ignore[union-attr]
    for subject in range(len(SUBJECTS)):
        members = found[truth[:400] == subject]
        majority = np.bincount(members).argmax()
        assert np.mean(members == majority) >= 0.9
        assert set(labels[int(majority)].split(", ")) == set(SUBJECTS[subject].split())
    assert not any("masterpiece" in label or "quality" in label for label in labels.values())


def test_clusters_without_prompts_get_a_zero_shot_label() -> None:
    rng = np.random.default_rng(3)
    beach = rng.normal(size=DIM).astype(np.float32)

    def encode_text(texts: list[str]) -> np.ndarray:  # a text tower where only "beach" points at the photos
        return np.stack([beach if "beach" in text else rng.normal(size=DIM).astype(np.float32) for text in texts])

    photos = beach + rng.normal(scale=0.05, size=(60, DIM)).astype(np.float32)
    table = new_table("photos")
    table.upsert(rows(photos / np.linalg.norm(photos, axis=1, keepdims=True), np.zeros(60, int), prompts=False))
    mapview.refresh_map(table, "photos", encode_text=encode_text)
    assert {info.label for info in mapview.load_state("photos").clusters} == {"beach"}  # type: ignore[union-attr]


def test_prompt_words_skip_lora_tags_weights_and_filler() -> None:
    assert mapclusters.prompt_words("(Red fox:1.2), <lora:detail:0.8> masterpiece, in the forest") == {
        "red", "fox", "forest"
    }  # fmt: skip


def test_procrustes_recovers_rotation_mirror_scale_and_shift() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 2))
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.diag([1, -1])
    target = 3.0 * points @ rotation + np.array([5.0, -2.0])
    affine, offset = mapview.procrustes(points, target)
    np.testing.assert_allclose(points @ affine + offset, target, atol=1e-9)


def test_payload_decodes_to_the_table_ids_coordinates_and_clusters(album: Any) -> None:
    table, _, _ = album
    table.upsert(rows(*clustered(1, seed=9), first_id=2**33))  # an id past uint32 switches the id type
    mapview.refresh_map(table, "album")
    decoded = mappayload.decode_map(mappayload.encode_map(table, "album"))
    placed = coords(table)
    assert decoded.header["count"] == 401 and decoded.header["id_type"] == "uint64"
    assert decoded.ids.tolist() == sorted(placed)
    np.testing.assert_array_equal(decoded.x, np.array([placed[i][0] for i in sorted(placed)], dtype=np.float32))
    np.testing.assert_array_equal(decoded.y, np.array([placed[i][1] for i in sorted(placed)], dtype=np.float32))
    assert decoded.cluster.tolist() == [placed[i][2] for i in sorted(placed)]
    assert sum(c["count"] for c in decoded.header["clusters"]) == 401
    assert decoded.header["bounds"] == [float(decoded.x.min()), float(decoded.y.min()),
                                        float(decoded.x.max()), float(decoded.y.max())]  # fmt: skip


def test_payload_leaves_out_unplaced_and_removed_rows_and_narrows_by_condition(album: Any) -> None:
    table, vectors, truth = album
    mapview.refresh_map(table, "album")
    table.delete_ids([1, 2, 3])
    table.upsert(rows(vectors[400:410], truth[400:410], first_id=401))  # not placed yet
    decoded = mappayload.decode_map(mappayload.encode_map(table, "album"))
    assert decoded.header["count"] == 397 and decoded.header["pending"] == 10
    assert {1, 2, 3, 401}.isdisjoint(decoded.ids.tolist())
    narrowed = mappayload.decode_map(mappayload.encode_map(table, "album", "id <= 10"))
    assert narrowed.ids.tolist() == list(range(4, 11))
    assert narrowed.header["id_type"] == "uint32"


def test_etag_changes_only_after_a_change(album: Any) -> None:
    table, vectors, truth = album
    mapview.refresh_map(table, "album")
    tag = mappayload.map_etag(table, "album")
    assert mappayload.map_etag(table, "album") == tag
    mapview.refresh_map(table, "album")  # nothing to do
    assert mappayload.map_etag(table, "album") == tag
    assert mappayload.map_etag(table, "album", "id < 5") != tag
    table.upsert(rows(vectors[400:401], truth[400:401], first_id=401))
    mapview.refresh_map(table, "album")
    assert mappayload.map_etag(table, "album") != tag


def test_decode_rejects_a_truncated_payload(album: Any) -> None:
    table, _, _ = album
    mapview.refresh_map(table, "album")
    payload = mappayload.encode_map(table, "album")
    with pytest.raises(ValueError):
        mappayload.decode_map(payload[:-3])
    with pytest.raises(ValueError):
        mappayload.decode_map(b"GIF89a" + payload[6:])


def test_a_map_fitted_in_a_child_process_is_the_same_and_leaves_the_caller_without_umap(tmp_path: Any) -> None:
    """What a daemon that rests light does: UMAP and HDBSCAN run in a spawned process, so neither library (nor
    numba) stays in the daemon once the layout is written."""
    vectors, truth = clustered(200)
    here = new_table("here")
    here.upsert(rows(vectors, truth))
    mapview.refresh_map(here, "here")
    new_table("there").upsert(rows(vectors, truth))
    script = (
        "import sys\n"
        "from photomapd import config\n"
        "from photomapd.map import layout\n"
        "from photomapd.spawned import ChildProcess\n"
        "from photomapd.store import Store\n"
        "if __name__ == '__main__':\n"
        "    with ChildProcess() as compute:\n"
        "        result = layout.refresh_map(Store(config.index_dir()).open('there'), 'there', compute=compute)\n"
        "    print(result.action, [name for name in ('umap', 'sklearn', 'numba') if name in sys.modules])\n"
    )
    (tmp_path / "fit.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "fit.py")], capture_output=True, text=True, timeout=600,
                          check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=1) == ["fit", "[]\n"]

    there = Store(config.index_dir()).open("there")
    assert there is not None
    mine, theirs = coords(here), coords(there)
    assert set(mine) == set(theirs)
    xy_here = np.array([mine[i][:2] for i in sorted(mine)])
    xy_there = np.array([theirs[i][:2] for i in sorted(theirs)])
    span = float(np.ptp(xy_here, axis=0).max())
    # Same seed and same machine: the same layout, within float noise (a different layout differs by ~span).
    assert float(np.abs(xy_here - xy_there).max()) < 0.01 * span
    assert [mine[i][2] for i in sorted(mine)] == [theirs[i][2] for i in sorted(theirs)]
