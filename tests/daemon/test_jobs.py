"""`AlbumJobs`, the one owner of every album's work: concurrent requests never make two writers, ids stay unique, a
rebuild keeps the old index live until it is swapped in, Re-layout waits for the index, interrupted runs resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from photomapd import config
from photomapd.config import AlbumConfig, Config, ConfigStore
from photomapd.jobs import AlbumJobs
from photomapd.store import Store

from tests.daemon.images import make_album, make_png

RUN_TIMEOUT_S = 300  # generous: the suite runs on 2 loaded cores


@pytest.fixture
def album(tmp_path: Path) -> AlbumConfig:
    folder = tmp_path / "images"
    make_album(folder, 12)
    return AlbumConfig(key="pics", display_name="Pics", folders=[str(folder)])


@pytest.fixture
async def jobs(album: AlbumConfig, model_runner: Any) -> Any:
    owner = AlbumJobs(Store(config.index_dir()), model_runner, ConfigStore(Config(albums=[album])), refresh_map=False)
    yield owner
    await owner.close()


def unique_rows(store: Store, key: str) -> list[dict[str, Any]]:
    table = store.open(key)
    assert table is not None
    rows = table.where(None, ["id", "path"])
    assert len({r["id"] for r in rows}) == len(rows), "ids must be unique"
    assert len({r["path"] for r in rows}) == len(rows), "paths must be unique"
    return rows


async def test_an_update_and_watcher_change_sets_at_once_index_every_file_once(jobs: AlbumJobs, album: AlbumConfig) -> None:
    first = await asyncio.wait_for(jobs.run_index("pics"), RUN_TIMEOUT_S)
    assert first.state == "done" and first.new == 12
    folder = Path(album.folders[0])
    added = [make_png(folder / f"new_{i:03d}.png", seed=1000 + i) for i in range(40)]
    # What the CLI beside a watching daemon did: a full update while the watcher reports the same files in parts.
    jobs.files_changed("pics", {str(p) for p in added[:20]})
    cli_run = jobs.request_index("pics")
    jobs.files_changed("pics", {str(p) for p in added[20:]})
    final = await asyncio.wait_for(jobs.finished("pics", cli_run.run_id), RUN_TIMEOUT_S)
    assert jobs.progress("pics").run_id == cli_run.run_id, "requests made before the run started are one run"
    assert final.state == "done" and final.new == 40
    rows = unique_rows(jobs.store, "pics")
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.iterdir())


async def test_a_request_during_a_run_queues_behind_it_with_its_own_run_id(jobs: AlbumJobs, album: AlbumConfig) -> None:
    running = jobs.request_index("pics")
    events = jobs.subscribe("pics")
    while (await asyncio.wait_for(events.get(), RUN_TIMEOUT_S)).state != "running":
        pass
    make_png(Path(album.folders[0]) / "late.png", seed=4242)
    queued = jobs.request_index("pics")
    assert queued.state == "queued" and queued.run_id > running.run_id
    final = await asyncio.wait_for(jobs.finished("pics", queued.run_id), RUN_TIMEOUT_S)
    assert final.run_id == queued.run_id and final.state == "done"
    assert len(unique_rows(jobs.store, "pics")) == 13


def _as_another_process_sees_it(album_key: str) -> tuple[str, int, int]:
    """(live table, its rows, staging rows or -1) through a read-only Store of its own."""
    reader = Store(config.index_dir(), read_only=True)
    table, staging = reader.open(album_key), reader.open_staging(album_key)
    assert table is not None
    return table.name, table.count(), staging.count() if staging is not None else -1


async def test_rebuild_keeps_the_old_index_searchable_until_it_is_swapped_in(jobs: AlbumJobs, album: AlbumConfig) -> None:
    make_album(Path(album.folders[0]), 28, start_seed=100)  # 40 images: two commits, so a half-built staging exists
    await asyncio.wait_for(jobs.run_index("pics"), RUN_TIMEOUT_S)
    live = jobs.store.open("pics")
    assert live is not None
    ids_before = sorted(r["id"] for r in unique_rows(jobs.store, "pics"))
    rebuild = jobs.request_index("pics", "rebuild")
    done = asyncio.ensure_future(jobs.finished("pics", rebuild.run_id))
    seen: list[tuple[str, int, int]] = []  # (live table, its rows, staging rows) as another process sees them
    while not done.done():
        try:
            seen.append(_as_another_process_sees_it("pics"))
        except RuntimeError as err:  # the old table was dropped between this reader's open and its count
            assert "Not found" in str(err) and jobs.store.open("pics").name != live.name, err
            seen.append(_as_another_process_sees_it("pics"))  # a reader that looks again finds the new one
        await asyncio.sleep(0.02)
    assert (await done).state == "done"
    assert all(rows == 40 for _, rows, _ in seen), "the gallery never shows fewer images during a rebuild"
    assert any(name == live.name and 0 < staged < 40 for name, _, staged in seen), seen
    after = jobs.store.open("pics")
    assert after is not None and after.name != live.name and after.count() == 40
    assert sorted(r["id"] for r in unique_rows(jobs.store, "pics")) == ids_before, "every file keeps its id"


async def test_relayout_requested_during_an_index_waits_and_every_row_gets_a_position(
    album: AlbumConfig, model_runner: Any
) -> None:
    owner = AlbumJobs(Store(config.index_dir()), model_runner, ConfigStore(Config(albums=[album])))
    try:
        await asyncio.wait_for(owner.run_index("pics"), RUN_TIMEOUT_S)
        for i in range(8):
            make_png(Path(album.folders[0]) / f"more_{i}.png", seed=300 + i)
        run = owner.request_index("pics")
        job = owner.request_relayout("pics")
        assert job.state == "queued", "a re-layout never runs beside an index run of its album"
        final = await asyncio.wait_for(owner.finished("pics", run.run_id), RUN_TIMEOUT_S)
        assert final.state == "done"
        finished = await asyncio.wait_for(owner.wait_relayout("pics"), RUN_TIMEOUT_S)
        assert finished is not None and finished.state == "done", finished
        table = owner.store.open("pics")
        assert table is not None and table.count() == 20
        assert table.count("x IS NULL OR y IS NULL") == 0
    finally:
        await owner.close()


async def test_a_run_marked_interrupted_resumes_when_the_owner_starts(album: AlbumConfig, model_runner: Any) -> None:
    store = Store(config.index_dir())
    config_store = ConfigStore(Config(albums=[album]))
    first = AlbumJobs(store, model_runner, config_store, refresh_map=False)
    await asyncio.wait_for(first.run_index("pics"), RUN_TIMEOUT_S)
    await first.close()
    for i in range(5):
        make_png(Path(album.folders[0]) / f"while_down_{i}.png", seed=700 + i)
    store.mark_interrupted("pics", "update")  # what a daemon killed mid-run leaves

    second = AlbumJobs(Store(config.index_dir()), model_runner, config_store, refresh_map=False)
    try:
        events = second.subscribe("pics")
        second.resume_interrupted()
        while (event := await asyncio.wait_for(events.get(), RUN_TIMEOUT_S)).state not in ("done", "failed"):
            pass
        assert event.state == "done" and event.new == 5
        assert Store(config.index_dir()).interrupted_runs() == {}
    finally:
        await second.close()


async def test_deleting_an_album_stops_its_run_and_drops_its_data(jobs: AlbumJobs, album: AlbumConfig) -> None:
    config.save_config(jobs.config_store.current)
    await asyncio.wait_for(jobs.run_index("pics"), RUN_TIMEOUT_S)
    jobs.request_index("pics", "rebuild")
    await jobs.delete_album("pics")
    assert jobs.store.open("pics") is None and jobs.store.open_staging("pics") is None
    assert [a.key for a in config.load_config().albums] == []
    assert Path(album.folders[0]).exists() and len(list(Path(album.folders[0]).iterdir())) == 12
