"""Board albums against the fake InvokeAI: indexed over the API with no folder, live, stars both ways, paused."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np
import pyarrow as pa
import pytest
from pydantic import SecretStr
from PIL import Image
from PIL.PngImagePlugin import PngInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/daemon: the fake server
from fake_invokeai import FakeInvokeAI  # noqa: E402

from photomapd import config  # noqa: E402
from photomapd.config import AlbumConfig, Config, ConfigStore  # noqa: E402
from photomapd.boards.watch import BoardWatchers  # noqa: E402
from photomapd.boards.run import BoardRow, diff_board, indexed_board_rows, row_path  # noqa: E402
from photomapd.invokeai.connection import InvokeAIConnection, Target  # noqa: E402
from photomapd.invokeai.images import BoardImage  # noqa: E402
from photomapd.jobs import AlbumJobs  # noqa: E402
from photomapd.store import Store, TableInfo, missing_nullable_fields  # noqa: E402

DEADLINE_S = 20.0


def png(seed: int, prompt: str = "", size: tuple[int, int] = (96, 80)) -> bytes:
    """Distinct noise per seed, with InvokeAI metadata naming `prompt`."""
    rng = np.random.default_rng(seed)
    info = PngInfo()
    meta = {"positive_prompt": prompt or f"a lighthouse {seed}", "seed": seed, "app_version": "6.14.2",
            "model": {"name": "sdxl", "base": "sdxl", "type": "main", "key": "k", "hash": "h"}}
    info.add_text("invokeai_metadata", json.dumps(meta))
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


async def until(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def full_fetches(fake: FakeInvokeAI) -> list[str]:
    return [entry["path"] for entry in fake.requests if entry["path"].endswith("/full")]


class Rig:
    """A fake server, the daemon's connection to it, and an owner with one board album."""

    def __init__(self, fake: FakeInvokeAI, jobs: AlbumJobs, album: AlbumConfig, store: Store) -> None:
        self.fake, self.jobs, self.album, self.store = fake, jobs, album, store

    def rows(self) -> list[dict[str, Any]]:
        table = self.store.open(self.album.key)
        if table is None:
            return []
        return table.where(None, ["id", "path", "folder", "image_name", "board_id", "starred", "positive_prompt"])

    def names(self) -> set[str]:
        return {row["image_name"] for row in self.rows()}


@pytest.fixture
async def rig(aiohttp_server: Any, model_runner: Any) -> Any:
    fake = FakeInvokeAI("6.14.2")
    board = fake.add_board("Portraits")
    other = fake.add_board("Landscapes")
    fake.add_image("a.png", board_id=board, data=png(1))
    fake.add_image("b.png", board_id=board, data=png(2), starred=True)
    fake.add_image("inter.png", board_id=board, data=png(3), is_intermediate=True)  # never in a gallery
    fake.add_image("elsewhere.png", board_id=other, data=png(4))
    fake.add_image("loose.png", data=png(5))  # Uncategorized
    server = await aiohttp_server(fake.app())
    connection = InvokeAIConnection()
    await connection.configure(Target(url=str(server.make_url("/"))))
    album = AlbumConfig(key="gen", display_name="Generations", source="invokeai", boards=[board, "none"])
    store = Store(config.index_dir())
    jobs = AlbumJobs(store, model_runner, ConfigStore(Config(albums=[album])), refresh_map=False, invokeai=connection)
    jobs.board_watchers.timing = {"first_delay_s": 0.05, "max_delay_s": 0.2, "full_every_s": 0.3}
    yield Rig(fake, jobs, album, store)
    await jobs.close()
    await connection.aclose()


def test_diff_by_name_moves_and_stars_without_reembedding() -> None:
    listed = {
        "new.png": BoardImage("new.png", "b1", False),
        "moved.png": BoardImage("moved.png", "b2", False),
        "starred.png": BoardImage("starred.png", None, True),
        "same.png": BoardImage("same.png", "b1", False),
    }
    indexed = {"moved.png": BoardRow(1, "b1", False), "starred.png": BoardRow(2, None, False),
               "same.png": BoardRow(3, "b1", False), "gone.png": BoardRow(4, "b1", True)}
    diff = diff_board(listed, indexed)
    assert [image.image_name for image in diff.new] == ["new.png"]
    assert diff.removed == [4]
    assert sorted((u["id"], u["board_id"], u["starred"]) for u in diff.updates) == [(1, "b2", False), (2, None, True)]
    assert diff.unchanged == 1


async def test_the_poller_retries_a_failed_sync_even_when_the_server_shows_nothing_new() -> None:
    """A sync a change queued can fail (a timeout, a hiccup): the poller saw the change already, so without a retry
    the new image would wait for the next change on the server."""
    album = AlbumConfig(key="gen", display_name="Generations", source="invokeai", boards=["b1"])
    changes: list[str] = []

    async def same(boards: list[str]) -> Any:
        return ("b1", 3, "newest.png")

    watchers = BoardWatchers(same, same, changes.append, lambda key, message: None,
                             first_delay_s=0.01, max_delay_s=0.02, full_every_s=0.05)
    watchers.sync([album])
    try:
        await until(lambda: len(changes) == 1, "the first sync")
        await asyncio.sleep(0.2)
        assert len(changes) == 1, "an unchanged server queues nothing more"
        watchers.retry("gen")  # what the owner does when that sync fails
        await until(lambda: len(changes) == 2, "the retried sync")
    finally:
        await watchers.close()


async def test_board_album_is_indexed_over_the_api_with_no_folder(rig: Rig) -> None:
    progress = await rig.jobs.run_index("gen")
    assert progress.state == "done", progress.message
    assert rig.album.folders == []
    rows = {row["image_name"]: row for row in rig.rows()}
    assert set(rows) == {"a.png", "b.png", "loose.png"}, "the board and Uncategorized; no intermediate, no other board"
    board = rig.fake.images["a.png"]["board_id"]
    assert rows["a.png"]["board_id"] == board and rows["loose.png"]["board_id"] is None
    assert rows["b.png"]["starred"] is True and rows["a.png"]["starred"] is False
    assert rows["a.png"]["path"] == row_path("a.png") and rows["a.png"]["folder"] == f"invokeai:board/{board}"
    assert rows["a.png"]["positive_prompt"] == "a lighthouse 1", "metadata comes from the PNG InvokeAI serves"
    assert sorted(full_fetches(rig.fake)) == sorted(f"/api/v1/images/i/{n}/full" for n in rows)

    before = len(full_fetches(rig.fake))
    again = await rig.jobs.run_index("gen")
    assert again.state == "done" and again.unchanged == 3 and again.new == 0
    assert len(full_fetches(rig.fake)) == before, "nothing already embedded is fetched again"


async def test_new_image_appears_and_deleted_or_moved_ones_leave_without_a_request_from_the_panel(rig: Rig) -> None:
    assert (await rig.jobs.run_index("gen")).state == "done"
    board = rig.fake.images["a.png"]["board_id"]
    rig.jobs.board_watchers.sync([rig.album])
    rig.fake.add_image("fresh.png", board_id=board, data=png(11))  # InvokeAI finished an image
    await until(lambda: "fresh.png" in rig.names(), "the new image to be indexed")
    rig.fake.delete_image("a.png")
    other = next(bid for bid, b in rig.fake.boards.items() if b["board_name"] == "Landscapes")
    rig.fake.images["loose.png"]["board_id"] = other  # moved out of the album's boards
    await until(lambda: rig.names() == {"b.png", "fresh.png"}, "the deleted and moved images to leave")
    rig.fake.images["b.png"]["starred"] = False  # unstarred in InvokeAI: nothing the cheap check sees
    await until(lambda: not any(row["starred"] for row in rig.rows()), "the star made in InvokeAI to show here")


async def test_a_star_made_in_invokeai_shows_here_at_the_next_sync(rig: Rig) -> None:
    assert (await rig.jobs.run_index("gen")).state == "done"
    rig.fake.images["a.png"]["starred"] = True
    rig.fake.images["b.png"]["starred"] = False
    before = len(full_fetches(rig.fake))
    progress = await rig.jobs.run_index("gen")
    assert progress.state == "done" and progress.changed == 2
    stars = {row["image_name"]: row["starred"] for row in rig.rows()}
    assert stars == {"a.png": True, "b.png": False, "loose.png": False}
    assert len(full_fetches(rig.fake)) == before, "a star is a column update, not a re-embed"


async def test_a_server_that_goes_away_pauses_the_album_and_it_resumes_when_back(
    aiohttp_server: Any, model_runner: Any, unused_tcp_port: int
) -> None:
    fake = FakeInvokeAI("6.14.2")
    board = fake.add_board("Portraits")
    fake.add_image("a.png", board_id=board, data=png(1))
    server = await aiohttp_server(fake.app(), port=unused_tcp_port)
    connection = InvokeAIConnection()
    await connection.configure(Target(url=str(server.make_url("/"))))
    album = AlbumConfig(key="gen", display_name="Generations", source="invokeai", boards=[board])
    store = Store(config.index_dir())
    jobs = AlbumJobs(store, model_runner, ConfigStore(Config(albums=[album])), refresh_map=False, invokeai=connection)
    jobs.board_watchers.timing = {"first_delay_s": 0.05, "max_delay_s": 0.2, "full_every_s": 0.3}
    try:
        assert (await jobs.run_index("gen")).state == "done"
        jobs.board_watchers.sync([album])
        await server.close()
        await until(lambda: jobs.progress("gen").message == "Could not reach backend", "the album to pause")
        assert jobs.progress("gen").state == "failed"
        fake.add_image("b.png", board_id=board, data=png(2))
        await aiohttp_server(fake.app(), port=unused_tcp_port)
        table = store.open("gen")
        assert table is not None
        await until(lambda: table.count() == 2 and jobs.progress("gen").state == "done", "the album to resume")
    finally:
        await jobs.close()
        await connection.aclose()


async def test_user_as_all_boards_album_never_lists_user_bs_private_board(
    aiohttp_server: Any, model_runner: Any
) -> None:
    alice, bob = "alice@example.com", "bob@example.com"
    fake = FakeInvokeAI("6.14.2", multiuser=True, users={alice: "a-pass", bob: "b-pass"})
    mine, theirs = fake.add_board("Alice's", owner=alice), fake.add_board("Bob's", owner=bob)
    fake.add_image("alice-1.png", owner=alice, board_id=mine, data=png(1))
    fake.add_image("alice-loose.png", owner=alice, data=png(2))
    fake.add_image("bob-1.png", owner=bob, board_id=theirs, data=png(3))
    fake.add_image("bob-loose.png", owner=bob, data=png(4))
    server = await aiohttp_server(fake.app())
    connection = InvokeAIConnection()
    await connection.configure(Target(url=str(server.make_url("/")), username=alice, password=SecretStr("a-pass")))
    album = AlbumConfig(key="mine", display_name="Mine", source="invokeai", boards=["all"])
    store = Store(config.index_dir())
    jobs = AlbumJobs(store, model_runner, ConfigStore(Config(albums=[album])), refresh_map=False, invokeai=connection)
    try:
        progress = await jobs.run_index("mine")
        assert progress.state == "done", progress.message
        table = store.open("mine")
        assert table is not None
        assert {row["image_name"] for row in table.where(None, ["image_name"])} == {"alice-1.png", "alice-loose.png"}
        assert not [e for e in fake.requests if theirs in str(e["query"]) or "bob" in e["path"]], "never even asked"
        assert all(e["authorization"] for e in fake.requests if "/images/i/" in e["path"]), "files need the token"
    finally:
        await jobs.close()
        await connection.aclose()


def test_an_older_table_gains_the_board_columns_on_open_and_keeps_its_rows() -> None:
    store = Store(config.index_dir())
    info = TableInfo(model="m", pretrained="none", dim=4)
    table = store.create("old", info)
    legacy = pa.schema([field for field in table.schema if field.name not in ("image_name", "board_id", "starred")],
                       metadata=table.schema.metadata)
    store._db.create_table("old", schema=legacy, mode="overwrite")  # as a release before board albums made it
    raw = store._db.open_table("old")
    raw.add(pa.Table.from_pylist([{"id": 1, "path": "/p/1.png", "folder": "/p", "mtime_ns": 1, "size": 1, "width": 1,
                                   "height": 1, "vector": [1.0, 0.0, 0.0, 0.0], "loras": [], "has_recallable": False,
                                   "metadata_json": "{}"}], schema=legacy))  # fmt: skip
    assert {f.name for f in missing_nullable_fields(raw.schema, 4)} == {"image_name", "board_id", "starred"}

    reopened = Store(config.index_dir()).open("old")
    assert reopened is not None
    assert {"image_name", "board_id", "starred"} <= set(reopened.schema.names)
    assert reopened.info == info, "the model facts in the schema metadata survive the migration"
    assert reopened.where(None, ["id", "starred", "image_name"]) == [{"id": 1, "starred": None, "image_name": None}]
    assert indexed_board_rows(reopened) == {}, "folder rows are not board rows"
