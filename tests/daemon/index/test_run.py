"""Index runs on real files into a real LanceDB table with the real (random-weight) model, through the albums' owner
(`AlbumJobs`) as the daemon and the CLI run them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photomapd import config
from photomapd.config import AlbumConfig, Config, ConfigStore
from photomapd.index.progress import IndexProgress
from photomapd.jobs import AlbumJobs
from photomapd.index import sources
from photomapd.model.runner import ModelRunner
from photomapd.store import Store

from tests.daemon.images import make_album, make_bomb_png, make_png, make_truncated_png

FIXTURES = Path(__file__).parents[2] / "fixtures" / "images"


@pytest.fixture
def album(tmp_path: Path) -> AlbumConfig:
    folder = tmp_path / "outputs" / "images"
    make_album(folder, 6)
    return AlbumConfig(key="gallery", display_name="Gallery", folders=[str(folder)])


@pytest.fixture
def store() -> Store:
    return Store(config.index_dir())


@pytest.fixture
def decoded_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every file the embedder decodes (wrapping the real decoder, which still runs)."""
    seen: list[str] = []
    real = sources.decode_file

    def spy(path: Path, spec: Any) -> Any:
        seen.append(str(path))
        return real(path, spec)

    monkeypatch.setattr(sources, "decode_file", spy)
    return seen


def index(
    album: AlbumConfig, store: Store, runner: Any, mode: str = "update", paths: set[str] | None = None, **kwargs: Any
) -> tuple[IndexProgress, list[IndexProgress]]:
    """One run through the owner, as the daemon does it: (final progress, every event published)."""

    async def go() -> tuple[IndexProgress, list[IndexProgress]]:
        jobs = AlbumJobs(store, runner, ConfigStore(Config(albums=[album])), **kwargs)
        events = jobs.subscribe(album.key)
        try:
            if paths is None:
                progress = await jobs.run_index(album.key, mode)  # type: ignore[arg-type]
            else:
                jobs.files_changed(album.key, paths)
                progress = await jobs.run_index(album.key)  # joins the queued change set
        finally:
            await jobs.close()
        return progress, [events.get_nowait() for _ in range(events.qsize())]

    return asyncio.run(go())


def run(album: AlbumConfig, store: Store, runner: Any, **kwargs: Any) -> IndexProgress:
    progress, events = index(album, store, runner, refresh_map=False, **kwargs)
    assert progress.state == "done", progress.message
    assert events[-1].state == "done"
    return progress


def test_first_index_embeds_every_image_with_normalized_vectors(album: AlbumConfig, store: Store, model_runner: Any) -> None:
    progress = run(album, store, model_runner)
    assert (progress.new, progress.changed, progress.removed, progress.skipped_count) == (6, 0, 0, 0)
    table = store.open("gallery")
    assert table is not None and table.count() == 6
    ids, vectors = table.vectors()
    assert sorted(ids.tolist()) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert table.info.model == "ViT-B-32" and table.info.pretrained == "none" and table.info.dim == 512
    row = table.get(int(ids[0]))
    assert row is not None and (row["width"], row["height"]) == (96, 96)


def test_update_reembeds_changed_file_only_and_never_decodes_unchanged(
    album: AlbumConfig, store: Store, model_runner: Any, decoded_paths: list[str]
) -> None:
    run(album, store, model_runner)
    folder = Path(album.folders[0])
    table = store.open("gallery")
    assert table is not None
    before = {row["path"]: row for row in table.where(None, ["id", "path", "vector"])}
    changed = folder / "img_0001.png"
    make_png(changed, seed=1234)  # new content, same path
    os.utime(changed, ns=(before[str(changed)]["id"] * 10**9, before[str(changed)]["id"] * 10**9))
    removed = folder / "img_0002.png"
    removed.unlink()
    added = make_png(folder / "sub" / "new.png", seed=77)
    decoded_paths.clear()

    progress = run(album, store, model_runner)

    assert (progress.new, progress.changed, progress.removed, progress.unchanged) == (1, 1, 1, 4)
    assert sorted(decoded_paths) == sorted([str(changed), str(added)])
    table = store.open("gallery")  # a fresh handle sees the new version
    assert table is not None
    after = {row["path"]: row for row in table.where(None, ["id", "path", "vector"])}
    assert str(removed) not in after and str(added) in after
    assert after[str(changed)]["id"] == before[str(changed)]["id"]  # a changed file keeps its id
    assert not np.allclose(after[str(changed)]["vector"], before[str(changed)]["vector"])
    untouched = str(folder / "img_0003.png")
    assert after[untouched]["vector"] == before[untouched]["vector"]
    assert len({row["id"] for row in after.values()}) == len(after) == 6


def test_unchanged_album_update_loads_no_model_and_decodes_nothing(
    album: AlbumConfig, store: Store, model_runner: Any, decoded_paths: list[str]
) -> None:
    run(album, store, model_runner)
    decoded_paths.clear()
    progress = run(album, store, model_runner)
    assert (progress.new, progress.changed, progress.removed, progress.unchanged) == (0, 0, 0, 6)
    assert decoded_paths == []


def test_broken_files_are_skipped_with_reasons_and_the_run_goes_on(
    album: AlbumConfig, store: Store, model_runner: Any
) -> None:
    folder = Path(album.folders[0])
    (folder / "empty.png").write_bytes(b"")
    (folder / "not-an-image.jpg").write_bytes(b"this is text, not a JPEG")
    make_truncated_png(folder / "truncated.png")
    make_bomb_png(folder / "bomb.png")
    progress = run(album, store, model_runner)
    reasons = {Path(s.path).name: s.reason for s in progress.skipped}
    assert reasons.keys() == {"empty.png", "not-an-image.jpg", "truncated.png", "bomb.png"}
    assert "empty" in reasons["empty.png"]
    assert "too large" in reasons["bomb.png"]
    assert "cannot decode" in reasons["not-an-image.jpg"]
    assert progress.skipped_count == 4
    table = store.open("gallery")
    assert table is not None and table.count() == 6


def test_rebuild_reembeds_everything(album: AlbumConfig, store: Store, model_runner: Any, decoded_paths: list[str]) -> None:
    run(album, store, model_runner)
    decoded_paths.clear()
    ids_before = sorted(store.open("gallery").arrow(["id"]).column("id").to_pylist())  # type: ignore[union-attr]
    progress = run(album, store, model_runner, mode="rebuild")
    assert progress.new == 6 and len(decoded_paths) == 6
    table = store.open("gallery")
    assert table is not None and table.count() == 6
    assert table.name != "gallery", "a rebuild is built into a staging table and swapped in"
    assert sorted(table.arrow(["id"]).column("id").to_pylist()) == ids_before, "every file keeps its id"


def test_watcher_change_set_updates_only_those_paths(album: AlbumConfig, store: Store, model_runner: Any, decoded_paths: list[str]) -> None:
    run(album, store, model_runner)
    folder = Path(album.folders[0])
    added = make_png(folder / "fresh.png", seed=501)
    gone = folder / "img_0004.png"
    gone.unlink()
    decoded_paths.clear()
    progress = run(album, store, model_runner, paths={str(added), str(gone)})
    assert (progress.new, progress.removed) == (1, 1)
    assert decoded_paths == [str(added)]


@pytest.mark.skipif(not FIXTURES.exists(), reason="fixtures not copied yet")
def test_metadata_columns_are_stored_for_real_samples(tmp_path: Path, store: Store, model_runner: Any) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    for name in ("invokeai-6.10.0-metadata-graph.png", "a1111-parameters-01-cropped.png", "plain-nometa.jpg"):
        (folder / name).write_bytes((FIXTURES / name).read_bytes())
    album = AlbumConfig(key="samples", display_name="Samples", folders=[str(folder)])
    run(album, store, model_runner)
    table = store.open("samples")
    assert table is not None
    rows = {Path(r["path"]).name: r for r in table.where(None, ["path", "generator", "model", "seed", "has_recallable"])}
    invoke = rows["invokeai-6.10.0-metadata-graph.png"]
    assert (invoke["generator"], invoke["model"], invoke["seed"]) == ("invokeai", "waiIllustriousSDXL_v160", 1860920704)
    assert invoke["has_recallable"] is True
    a1111 = rows["a1111-parameters-01-cropped.png"]
    assert (a1111["generator"], a1111["seed"], a1111["has_recallable"]) == ("a1111", 235284042, False)
    assert rows["plain-nometa.jpg"]["generator"] is None


def test_unmounted_folder_keeps_its_rows(tmp_path: Path, store: Store, model_runner: Any) -> None:
    first, second = tmp_path / "local", tmp_path / "nas"
    make_album(first, 2)
    make_album(second, 3, start_seed=10)
    album = AlbumConfig(key="two", display_name="Two", folders=[str(first), str(second)])
    run(album, store, model_runner)
    second.rename(tmp_path / "nas-unmounted")
    progress = run(album, store, model_runner)
    assert progress.removed == 0
    assert progress.message is not None and "not available" in progress.message
    table = store.open("two")
    assert table is not None and table.count() == 5


def test_every_folder_missing_fails_clearly_and_deletes_nothing(tmp_path: Path, store: Store, model_runner: Any) -> None:
    folder = tmp_path / "usb"
    make_album(folder, 2)
    album = AlbumConfig(key="usb", display_name="USB", folders=[str(folder)])
    run(album, store, model_runner)
    folder.rename(tmp_path / "gone")
    progress, _ = index(album, store, model_runner, refresh_map=False)
    assert progress.state == "failed"
    assert progress.message is not None and "not available" in progress.message
    table = store.open("usb")
    assert table is not None and table.count() == 2


def test_a_failing_map_refresh_does_not_fail_the_committed_index(
    album: AlbumConfig, store: Store, model_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_map(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("layout exploded")

    monkeypatch.setattr("photomapd.map.layout.refresh_map", broken_map)
    progress, _ = index(album, store, model_runner)
    assert progress.state == "done"
    assert progress.message is not None and "map could not be updated" in progress.message
    table = store.open("gallery")
    assert table is not None and table.count() == 6


def test_an_edited_or_rebuilt_file_keeps_its_local_star(tmp_path: Path, store: Store, model_runner: Any) -> None:
    folder = tmp_path / "images"
    paths = [make_png(folder / f"{i}.png", i) for i in range(3)]
    album = AlbumConfig(key="stars", display_name="Stars", folders=[str(folder)])
    index(album, store, model_runner)
    table = store.open("stars")
    assert table is not None
    starred_id = next(row["id"] for row in table.where(f"path = '{paths[0]}'", ["id"]))
    table.update_columns([{"id": starred_id, "starred": True}])

    make_png(paths[0], 99)  # edited: re-embedded as a new row with the same id
    index(album, store, model_runner)
    assert {row["id"] for row in store.open("stars").where("starred", ["id"])} == {starred_id}  # type: ignore[union-attr]
    index(album, store, model_runner, mode="rebuild")  # a new table, swapped in
    assert {row["id"] for row in store.open("stars").where("starred", ["id"])} == {starred_id}  # type: ignore[union-attr]


def test_an_int8_model_never_adds_rows_to_an_fp32_album(tmp_path: Path, store: Store, model_runner: Any) -> None:
    folder = tmp_path / "images"
    make_album(folder, 3)
    album = AlbumConfig(key="mixed", display_name="Mixed", folders=[str(folder)])
    index(album, store, model_runner)
    table = store.open("mixed")
    assert table is not None and table.info.precision == "fp32"

    int8 = ModelRunner("ViT-B-32", "none", precision="int8")
    try:
        if int8.call_sync(lambda model: model.precision) != "int8":
            pytest.skip("this CPU runs int8 as fp32 (no AVX2 int8 kernels)")
        make_png(folder / "new.png", 404)
        final, _ = index(album, store, int8)
        assert final.state == "failed" and "rebuild the index to switch" in (final.message or "")
        assert store.open("mixed").count() == 3  # type: ignore[union-attr]  # nothing int8 went in
        rebuilt, _ = index(album, store, int8, mode="rebuild")
        assert rebuilt.state == "done"
        table = store.open("mixed")
        assert table is not None and table.info.precision == "int8" and table.count() == 4
    finally:
        int8.close()


def test_an_invokeai_thumbnail_is_decoded_instead_of_its_image(
    tmp_path: Path, store: Store, model_runner: Any, decoded_paths: list[str]
) -> None:
    """InvokeAI's outputs/images/thumbnails/<name>.webp, as fresh as its image and covering the model's input: the
    vector comes from it (a millisecond's decode), the row keeps the image's own size."""
    images = tmp_path / "outputs" / "images"
    image = make_png(images / "gen.png", 5, size=(512, 512))
    thumbnail = images / "thumbnails" / "gen.webp"
    thumbnail.parent.mkdir(parents=True)
    from PIL import Image

    Image.open(image).resize((256, 256)).save(thumbnail, "WEBP")
    album = AlbumConfig(key="invoke", display_name="Invoke", folders=[str(images)])
    run(album, store, model_runner)
    assert decoded_paths == [str(thumbnail)]
    row = store.open("invoke").where(None, ["path", "width", "height"])[0]  # type: ignore[union-attr]
    assert (row["path"], row["width"], row["height"]) == (str(image), 512, 512)
