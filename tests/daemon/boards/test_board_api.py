"""Board albums through the daemon's API against the fake InvokeAI: files, drawer, stars, batch actions, Append."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/daemon: the fake server
from fake_invokeai import FakeInvokeAI  # noqa: E402

from photomapd import config  # noqa: E402
from photomapd.config import AlbumConfig, ConfigStore  # noqa: E402
from photomapd.boards.run import board_folder, row_path  # noqa: E402
from photomapd.store import Store, TableInfo  # noqa: E402

from tests.daemon.api.conftest import api, serve_options  # noqa: E402,F401  (the API client fixtures)

DIM = 4
USER, PASSWORD = "alice@example.com", "correct horse battery staple"


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    info = PngInfo()
    info.add_text("invokeai_metadata", json.dumps({"positive_prompt": f"a fox {seed}", "seed": seed, "steps": 20,
                                                   "model": {"name": "sdxl", "base": "sdxl", "type": "main",
                                                             "key": "k", "hash": "h"}}))
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


class Board:
    def __init__(self, fake: FakeInvokeAI, url: str, portraits: str, landscapes: str) -> None:
        self.fake, self.url, self.portraits, self.landscapes = fake, url, portraits, landscapes


@pytest.fixture
async def board(aiohttp_server: Any) -> Board:
    """A fake server with three images in Portraits, and an album "gen" of that board indexed as the owner would
    leave it (rows written straight to the table: these tests are about the routes, not embedding)."""
    fake = FakeInvokeAI("6.14.2")
    portraits, landscapes = fake.add_board("Portraits"), fake.add_board("Landscapes")
    for seed, name in enumerate(("a.png", "b.png", "c.png"), start=1):
        fake.add_image(name, board_id=portraits, data=png(seed))
    url = str((await aiohttp_server(fake.app())).make_url("/"))
    ConfigStore().update(lambda cfg: cfg.albums.append(
        AlbumConfig(key="gen", display_name="Generations", source="invokeai", boards=[portraits])))
    table = Store(config.index_dir()).create("gen", TableInfo(model="ViT-B-32", pretrained="none", dim=DIM))
    from photomapd.metadata.reader import parse_metadata_bytes

    table.upsert(
        {"id": row_id, "path": row_path(name), "folder": board_folder(portraits), "mtime_ns": 1, "size": 0,
         "width": 80, "height": 64, "vector": [0.5] * DIM, "image_name": name, "board_id": portraits,
         "starred": False, "generator": "invokeai", "has_recallable": True,
         "metadata_json": parse_metadata_bytes(fake.images[name]["data"]).model_dump_json()}
        for row_id, name in enumerate(("a.png", "b.png", "c.png"), start=1)
    )  # fmt: skip
    return Board(fake, url, portraits, landscapes)


async def _connect(api: Any, url: str, **extra: Any) -> None:
    resp = await api.put("/api/v1/settings/invokeai", json={"url": url, **extra})
    assert resp.status == 200, await resp.text()


def _rows() -> dict[str, dict[str, Any]]:
    table = Store(config.index_dir()).open("gen")
    assert table is not None
    return {row["image_name"]: row for row in table.where(None, ["id", "image_name", "board_id", "starred"])}


async def test_a_lasso_selection_is_starred_and_added_to_a_board_in_one_action(board: Board, api: Any) -> None:
    await _connect(api, board.url)
    resp = await api.post("/api/v1/albums/gen/selection", json={"ids": [1, 2], "starred": True,
                                                                "board_id": board.landscapes})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["message"] == "Starred 2 images in InvokeAI; Moved 2 images to InvokeAI board “Landscapes”"
    for name in ("a.png", "b.png"):
        assert board.fake.images[name]["starred"] is True and board.fake.images[name]["board_id"] == board.landscapes
    untouched = board.fake.images["c.png"]
    assert untouched["starred"] is False and untouched["board_id"] == board.portraits, "only the selection changes"
    rows = _rows()
    assert rows["a.png"]["starred"] is True and rows["a.png"]["board_id"] == board.landscapes
    assert rows["c.png"]["starred"] is False


async def test_a_star_made_here_is_made_in_invokeai_and_unstarring_too(board: Board, api: Any) -> None:
    await _connect(api, board.url)
    resp = await api.post("/api/v1/albums/gen/selection/star", json={"ids": [3], "starred": True})
    assert (await resp.json())["ids"] == [3]
    assert board.fake.images["c.png"]["starred"] is True
    resp = await api.get("/api/v1/images/gen/3")
    assert (await resp.json())["starred"] is True
    resp = await api.post("/api/v1/albums/gen/search", json={"filters": {"starred": True}})
    hits = (await resp.json())["results"]
    assert [(hit["id"], hit["starred"]) for hit in hits] == [(3, True)], "the grid can mark the starred image"
    await api.post("/api/v1/albums/gen/selection/star", json={"ids": [3], "starred": False})
    assert board.fake.images["c.png"]["starred"] is False and _rows()["c.png"]["starred"] is False


async def test_an_empty_selection_is_refused_with_a_message(board: Board, api: Any) -> None:
    resp = await api.post("/api/v1/albums/gen/selection/star", json={"ids": [], "starred": True})
    assert resp.status == 422
    assert (await resp.json())["error"]["message"] == "Select at least one image"


async def test_board_files_and_drawer_come_from_invokeai_with_no_folder(board: Board, api: Any) -> None:
    await _connect(api, board.url)
    resp = await api.get("/api/v1/images/gen/1")
    drawer = await resp.json()
    assert (drawer["image_name"], drawer["board_id"], drawer["starred"]) == ("a.png", board.portraits, False)
    assert drawer["metadata"]["positive_prompt"] == "a fox 1"
    resp = await api.get("/api/v1/images/gen/1/file")
    assert resp.status == 200 and await resp.read() == board.fake.images["a.png"]["data"]
    resp = await api.get("/api/v1/images/gen/1/thumb")
    assert resp.status == 200 and resp.content_type == "image/webp"
    again = await api.get("/api/v1/images/gen/1/thumb", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    board.fake.delete_image("a.png")
    resp = await api.get("/api/v1/images/gen/1/file")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "invokeai_image_gone"


async def test_recall_ref_and_append_on_a_board_image_go_by_its_name_with_no_upload(board: Board, api: Any) -> None:
    await _connect(api, board.url)
    resp = await api.post("/api/v1/images/gen/2/recall")
    assert resp.status == 200, await resp.text()
    assert board.fake.recalls[-1]["body"]["positive_prompt"] == "a fox 2"
    resp = await api.post("/api/v1/images/gen/2/ref")
    assert (await resp.json())["image_name"] == "b.png"
    resp = await api.post("/api/v1/images/gen/2/append")
    assert resp.status == 200, await resp.text()
    assert board.fake.recalls[-1]["query"] == {"append": "true"}
    assert board.fake.recalls[-1]["body"] == {"reference_images": [{"image_name": "b.png"}]}, "nothing else is sent"
    assert not [entry for entry in board.fake.requests if entry["path"] == "/api/v1/images/upload"]


async def test_append_on_a_613_server_names_the_version_needed(board: Board, api: Any, aiohttp_server: Any) -> None:
    old = FakeInvokeAI("6.13.0")
    await _connect(api, str((await aiohttp_server(old.app())).make_url("/")))
    resp = await api.post("/api/v1/images/gen/2/append")
    assert resp.status == 409
    assert (await resp.json())["error"]["message"] == "Append needs InvokeAI 6.14 or newer (this server is 6.13.0)"
    assert old.recalls == []


async def test_a_selection_downloads_as_a_zip(board: Board, api: Any) -> None:
    await _connect(api, board.url)
    resp = await api.post("/api/v1/albums/gen/selection/zip", json={"ids": [1, 3, 99]})
    assert resp.status == 200 and resp.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as archive:
        assert sorted(archive.namelist()) == ["a.png", "c.png"]
        assert archive.read("c.png") == board.fake.images["c.png"]["data"]


async def test_a_board_album_refuses_folders_and_needs_a_board(api: Any) -> None:
    cases = [
        ({"folders": ["/tmp"], "boards": ["all"]},
         "A board album takes its images from InvokeAI, not from folders: leave folders empty"),
        ({"boards": []}, 'A board album needs at least one board: a board id, "none" for Uncategorized, or "all"'),
        ({"boards": ["all", "none"]}, '"all" already includes every board and Uncategorized: give it alone'),
    ]
    for extra, message in cases:
        resp = await api.post("/api/v1/albums", json={"key": "b", "display_name": "B", "source": "invokeai", **extra})
        assert resp.status == 422, extra
        assert (await resp.json())["error"]["message"] == message


async def test_user_a_cannot_make_an_album_of_user_bs_private_board(api: Any, aiohttp_server: Any) -> None:
    fake = FakeInvokeAI("6.14.2", multiuser=True, users={USER: PASSWORD, "bob@example.com": "b-pass"})
    private = fake.add_board("Bob's", owner="bob@example.com")
    fake.add_board("Alice's", owner=USER)
    await _connect(api, str((await aiohttp_server(fake.app())).make_url("/")), username=USER, password=PASSWORD)
    resp = await api.post("/api/v1/albums", json={"key": "b", "display_name": "B", "source": "invokeai",
                                                  "boards": [private]})
    assert resp.status == 409
    assert (await resp.json())["error"]["message"] == f"InvokeAI has no board '{private}' that this user can see"
    resp = await api.get("/api/v1/albums")
    assert await resp.json() == []
