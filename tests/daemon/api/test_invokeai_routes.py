"""InvokeAI settings, boards and actions through the real daemon app, against the fake InvokeAI server."""

from __future__ import annotations

import io
import json
import logging
import shutil
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/daemon: the fake server
from fake_invokeai import DEFAULT_USERS, FakeInvokeAI  # noqa: E402

from photomapd import config, errors  # noqa: E402
from photomapd.config import AlbumConfig, ConfigStore  # noqa: E402
from photomapd.store import Store, TableInfo  # noqa: E402

USER, PASSWORD = next(iter(DEFAULT_USERS.items()))
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
IMAGES = {1: "invokeai-6.10.0-metadata-graph.png", 2: "a1111-parameters-02-itxt.png", 3: "plain-nometa.jpg"}
DIM = 4


@pytest.fixture
def album() -> str:
    """An indexed album of three real files (InvokeAI, A1111, none), written before the app reads its config."""
    ConfigStore().update(lambda cfg: cfg.albums.append(AlbumConfig(key="gallery", display_name="Gallery",
                                                                    folders=[str(FIXTURES)])))
    table = Store(config.index_dir()).create("gallery", TableInfo(model="ViT-B-32", pretrained="none",
                                                                            dim=DIM))
    table.upsert(
        {"id": row_id, "path": str(FIXTURES / name), "folder": str(FIXTURES), "mtime_ns": 1, "size": 1, "width": 8,
         "height": 8, "vector": [0.5] * DIM}
        for row_id, name in IMAGES.items()
    )
    return "gallery"


@pytest.fixture
async def fake(aiohttp_server: Any) -> tuple[FakeInvokeAI, str]:
    server_fake = FakeInvokeAI("6.14.2")
    server = await aiohttp_server(server_fake.app())
    return server_fake, str(server.make_url("/"))


async def _put(api: Any, **body: Any) -> dict[str, Any]:
    resp = await api.put("/api/v1/settings/invokeai", json=body)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(out, format="PNG")
    return out.getvalue()


# --- settings -----------------------------------------------------------------------------------------------------


async def test_settings_start_empty(api: Any) -> None:
    resp = await api.get("/api/v1/settings/invokeai")
    assert await resp.json() == {"url": "", "username": "", "password_set": False, "board_id": None,
                                 "attach_ref_images": False}


async def test_put_saves_the_url_as_typed_and_answers_the_probe(api: Any, fake: tuple[FakeInvokeAI, str]) -> None:
    _, url = fake
    saved = await _put(api, url=url)  # with its trailing slash
    assert saved["url"] == url and saved["probe"] == {"ok": True, "version": "6.14.2", "multiuser": False,
                                                      "message": None, "actions": {
                                                          name: {"available": True, "reason": None}
                                                          for name in ("recall", "remix", "append")}}  # fmt: skip
    assert json.loads(config.config_path().read_text())["invokeai"]["url"] == url
    assert (await (await api.get("/api/v1/invokeai/probe")).json())["ok"] is True


@pytest.mark.parametrize(
    ("typed", "message"),
    [("file:///home/me", "InvokeAI URL must use http:// or https://"), ("http://", "InvokeAI URL must include a host")],
)
async def test_a_failing_url_is_still_saved(api: Any, typed: str, message: str) -> None:
    saved = await _put(api, url=typed)
    assert saved["probe"] == {"ok": False, "version": None, "multiuser": None, "message": message, "actions": None}
    assert (await (await api.get("/api/v1/settings/invokeai")).json())["url"] == typed


async def test_unreachable_url_probe(api: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    saved = await _put(api, url=f"http://127.0.0.1:{port}")
    assert saved["probe"]["message"] == "Could not reach backend"


async def test_password_is_write_only_and_0600(api: Any, fake: tuple[FakeInvokeAI, str],
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, url = fake
    saved = await _put(api, url=url, username=USER, password=PASSWORD)
    assert saved["password_set"] is True and saved["username"] == USER and "password" not in saved
    seen = [json.dumps(saved), await (await api.get("/api/v1/settings/invokeai")).text(),
            await (await api.get("/api/v1/invokeai/boards")).text(), config.config_path().read_text()]
    secrets = config.secrets_path()
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert json.loads(secrets.read_text()) == {"invokeai_password": PASSWORD}
    kept = await _put(api, url=url)  # omitted fields keep their values
    assert (kept["username"], kept["password_set"]) == (USER, True)
    bad = await api.put("/api/v1/settings/invokeai", json={"url": url, "password": 12345, "extra": PASSWORD})
    assert bad.status == 422
    seen.append(await bad.text())
    cleared = await _put(api, url="", username="", password="")
    assert (cleared["url"], cleared["username"], cleared["password_set"]) == ("", "", False)
    assert cleared["probe"] == {"ok": False, "version": None, "multiuser": None, "message": None, "actions": None}
    assert json.loads(secrets.read_text()) == {"invokeai_password": None}
    assert caplog.records
    for text in [*seen, caplog.text]:
        assert PASSWORD not in text


# --- boards -------------------------------------------------------------------------------------------------------


async def test_boards_of_a_multiuser_server(api: Any, aiohttp_server: Any) -> None:
    fake = FakeInvokeAI("6.14.2", multiuser=True)
    mine = fake.add_board("Mine", owner=USER)
    url = str((await aiohttp_server(fake.app())).make_url("/"))
    await _put(api, url=url, username=USER, password=PASSWORD)
    resp = await api.get("/api/v1/invokeai/boards")
    assert await resp.json() == [{"board_id": None, "board_name": "Uncategorized"},
                                 {"board_id": mine, "board_name": "Mine"}]
    await _put(api, url=url, password="wrong")
    resp = await api.get("/api/v1/invokeai/boards")
    assert resp.status == 502
    assert (await resp.json())["error"] == {"code": "invokeai_auth_rejected",
                                            "message": "InvokeAI rejected the username or password"}


async def test_without_a_url_actions_say_configure_first(api: Any) -> None:
    resp = await api.get("/api/v1/invokeai/boards")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "invokeai_not_configured"


# --- actions on indexed images ------------------------------------------------------------------------------------


async def test_recall_and_remix_an_indexed_invokeai_image(album: str, api: Any,
                                                          fake: tuple[FakeInvokeAI, str]) -> None:
    server_fake, url = fake
    await _put(api, url=url)
    recall = await api.post(f"/api/v1/images/{album}/1/recall")
    remix = await api.post(f"/api/v1/images/{album}/1/remix")
    assert recall.status == 200 and (await recall.json())["ok"] is True
    assert remix.status == 200
    sent_recall, sent_remix = server_fake.recalls
    assert sent_recall["query"] == {"strict": "true"}
    assert sent_recall["body"]["seed"] == 1860920704 and sent_recall["body"]["model"] == "waiIllustriousSDXL_v160"
    assert sent_remix["body"] == {k: v for k, v in sent_recall["body"].items() if k != "seed"}


@pytest.mark.parametrize("row_id", [2, 3])
async def test_recall_without_invokeai_metadata_is_409(album: str, api: Any, fake: tuple[FakeInvokeAI, str],
                                                       row_id: int) -> None:
    server_fake, url = fake
    await _put(api, url=url)
    for action in ("recall", "remix"):
        resp = await api.post(f"/api/v1/images/{album}/{row_id}/{action}")
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_recallable"
    assert server_fake.recalls == []


async def test_recall_on_an_old_server_names_the_version_needed(album: str, api: Any, aiohttp_server: Any) -> None:
    server = await aiohttp_server(FakeInvokeAI("6.11.0").app())
    await _put(api, url=str(server.make_url("/")))
    resp = await api.post(f"/api/v1/images/{album}/1/recall")
    assert resp.status == 409
    assert (await resp.json())["error"]["message"].startswith("Recall needs InvokeAI 6.12 or newer")
    remix = await api.post(f"/api/v1/images/{album}/1/remix")  # the button the user pressed, not "Recall"
    assert (await remix.json())["error"]["message"] == "Remix needs InvokeAI 6.12 or newer (this server runs 6.11.0)"


async def test_use_as_ref_uploads_the_file_to_the_chosen_board(album: str, api: Any,
                                                               fake: tuple[FakeInvokeAI, str]) -> None:
    server_fake, url = fake
    board = server_fake.add_board("References")
    await _put(api, url=url)
    assert await (await api.put("/api/v1/invokeai/board", json={"board_id": board})).json() == {"board_id": board}
    resp = await api.post(f"/api/v1/images/{album}/3/ref")  # any image, even one without metadata
    result = await resp.json()
    assert resp.status == 200 and result["board_name"] == "References"
    uploaded = server_fake.images[result["image_name"]]
    assert uploaded["board_id"] == board and uploaded["content_type"] == "image/jpeg"
    assert uploaded["size"] == (FIXTURES / IMAGES[3]).stat().st_size


async def test_unknown_image_is_404(album: str, api: Any, fake: tuple[FakeInvokeAI, str]) -> None:
    await _put(api, url=fake[1])
    assert (await api.post(f"/api/v1/images/{album}/999/recall")).status == 404


# --- context menu: POST /ref-image --------------------------------------------------------------------------------


async def test_ref_image_from_bytes_goes_to_uncategorized(api: Any, fake: tuple[FakeInvokeAI, str]) -> None:
    server_fake, url = fake
    await _put(api, url=url)
    resp = await api.post("/api/v1/ref-image", data=_png(), headers={"Content-Type": "application/octet-stream"})
    result = await resp.json()
    assert resp.status == 200 and result["board_name"] == "Uncategorized"
    assert server_fake.images[result["image_name"]]["board_id"] is None


async def test_ref_image_url_on_this_machine_is_refused_and_never_fetched(api: Any, fake: tuple[FakeInvokeAI, str],
                                                                         aiohttp_server: Any) -> None:
    server_fake, url = fake
    await _put(api, url=url)
    seen: list[str] = []

    async def picture(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(body=_png(), content_type="image/png")

    site = web.Application()
    site.router.add_get("/cat.png", picture)
    web_server = await aiohttp_server(site)  # 127.0.0.1 like the fake InvokeAI, but not it
    for target in (str(web_server.make_url("/cat.png")), f"http://localhost:{web_server.port}/cat.png",
                   "http://169.254.169.254/latest/meta-data/"):
        resp = await api.post("/api/v1/ref-image", json={"url": target})
        body = await resp.json()
        assert resp.status == 422 and body["error"]["code"] == "ref_image_invalid", body
        assert body["error"]["message"] == errors.RefAddressRefused.message
    assert seen == [] and server_fake.images == {}


async def test_ref_image_url_from_the_configured_invokeai_is_fetched(api: Any, fake: tuple[FakeInvokeAI, str],
                                                                    aiohttp_server: Any) -> None:
    server_fake, url = fake
    await _put(api, url=url)
    first = await (await api.post("/api/v1/ref-image", data=_png(),
                                  headers={"Content-Type": "application/octet-stream"})).json()
    gallery_url = f"{url}api/v1/images/i/{first['image_name']}/full"  # what InvokeAI's own gallery links to
    resp = await api.post("/api/v1/ref-image", json={"url": gallery_url})
    result = await resp.json()
    assert resp.status == 200, result
    assert server_fake.images[result["image_name"]]["filename"] == "full.png"
    fetched = [entry for entry in server_fake.requests if entry["path"].endswith("/full")]
    assert len(fetched) == 1 and fetched[0]["method"] == "GET"


async def test_ref_image_url_redirected_off_the_invokeai_host_is_refused(api: Any, aiohttp_server: Any) -> None:
    elsewhere_seen: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        elsewhere_seen.append(request.path)
        return web.Response(body=_png(), content_type="image/png")

    other = web.Application()
    other.router.add_get("/cat.png", elsewhere)
    other_server = await aiohttp_server(other)
    server_fake = FakeInvokeAI("6.14.2")
    app = server_fake.app()

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(other_server.make_url("/cat.png")))

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>", content_type="image/png")  # says image, isn't one

    app.router.add_get("/bounce", bounce)
    app.router.add_get("/page", page)
    url = str((await aiohttp_server(app)).make_url("/"))
    await _put(api, url=url)
    resp = await api.post("/api/v1/ref-image", json={"url": url + "bounce"})
    assert (await resp.json())["error"]["message"] == errors.RefAddressRefused.message
    assert elsewhere_seen == []
    resp = await api.post("/api/v1/ref-image", json={"url": url + "page"})
    assert (await resp.json())["error"]["message"] == errors.REF_NOT_IMAGE  # an address was given: it is to blame
    assert server_fake.images == {}


async def test_ref_image_url_and_file_scheme_refused(api: Any, fake: tuple[FakeInvokeAI, str]) -> None:
    await _put(api, url=fake[1])
    resp = await api.post("/api/v1/ref-image", json={"url": "file:///etc/passwd"})
    assert resp.status == 422 and (await resp.json())["error"]["message"] == errors.REF_URL_SCHEME


async def test_ref_image_that_is_not_an_image_is_refused(api: Any, fake: tuple[FakeInvokeAI, str]) -> None:
    await _put(api, url=fake[1])
    resp = await api.post("/api/v1/ref-image", data=b"<html>", headers={"Content-Type": "image/png"})
    assert resp.status == 422
    message = (await resp.json())["error"]["message"]
    assert message == errors.RefBytesNotImage.message and "address" not in message
    assert fake[0].images == {}


# --- every route that reads an album file is confined like /file ---------------------------------------------------


@pytest.fixture
def confined_album(tmp_path: Path) -> tuple[Path, Path]:
    """Album `swapped` with one indexed InvokeAI image; returns (that file, a recallable file outside the album)."""
    folder, outside = tmp_path / "album", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    indexed = folder / "generated.png"
    shutil.copyfile(FIXTURES / IMAGES[1], indexed)
    secret = outside / "secret.png"
    shutil.copyfile(FIXTURES / IMAGES[1], secret)  # recallable too: only the confinement can stop it
    ConfigStore().update(lambda cfg: cfg.albums.append(AlbumConfig(key="swapped", display_name="Swapped",
                                                                    folders=[str(folder)])))
    table = Store(config.index_dir()).create("swapped", TableInfo(model="ViT-B-32", pretrained="none", dim=DIM))
    table.upsert([{"id": 1, "path": str(indexed), "folder": str(folder), "mtime_ns": 1, "size": 1, "width": 8,
                   "height": 8, "vector": [0.5] * DIM}])
    return indexed, secret


async def test_ref_recall_and_remix_refuse_a_file_swapped_for_a_symlink(
    confined_album: tuple[Path, Path], api: Any, fake: tuple[FakeInvokeAI, str]
) -> None:
    indexed, secret = confined_album
    server_fake, url = fake
    await _put(api, url=url)
    assert (await api.post("/api/v1/images/swapped/1/recall")).status == 200  # inside the album: it works
    server_fake.recalls.clear()
    indexed.unlink()
    indexed.symlink_to(secret)
    file_resp = await api.get("/api/v1/images/swapped/1/file")
    expected = (file_resp.status, await file_resp.json())
    assert expected[0] == 404 and expected[1]["error"]["code"] == "file_outside_album"
    for action in ("ref", "recall", "remix"):
        resp = await api.post(f"/api/v1/images/swapped/1/{action}")
        assert (resp.status, await resp.json()) == expected, action
    assert server_fake.images == {} and server_fake.recalls == []
    assert not [entry for entry in server_fake.requests if entry["path"] == "/api/v1/images/upload"]
