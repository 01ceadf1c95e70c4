"""Board albums against a real InvokeAI (opt-in), and the fake's board routes beside the real ones.

    PHOTOMAP_REAL_INVOKEAI=http://127.0.0.1:9190/ .venv/bin/python -m pytest tests/daemon/invokeai/test_board_real.py

Multi-user servers also need `PHOTOMAP_REAL_INVOKEAI_ADMIN=email:password` (invokeai-up makes
`admin@example.com:Admin-pass-1`): the tests make two users of their own. No models are needed: boards, uploads,
stars and recall work without. The server keeps the few small images and boards the tests make.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/daemon: the fake server
from fake_invokeai import FakeInvokeAI  # noqa: E402

from photomapd import config  # noqa: E402
from photomapd.config import AlbumConfig, Config, ConfigStore  # noqa: E402
from photomapd.errors import BoardNotVisible  # noqa: E402
from photomapd.invokeai import images  # noqa: E402
from photomapd.invokeai.actions import append_reference  # noqa: E402
from photomapd.invokeai.client import InvokeAIClient  # noqa: E402
from photomapd.invokeai.connection import InvokeAIConnection, Target  # noqa: E402
from photomapd.jobs import AlbumJobs  # noqa: E402
from photomapd.store import Store  # noqa: E402

REAL_URL = os.environ.get("PHOTOMAP_REAL_INVOKEAI", "")
ADMIN = os.environ.get("PHOTOMAP_REAL_INVOKEAI_ADMIN", "")
DEADLINE_S = 60.0

pytestmark = pytest.mark.skipif(not REAL_URL, reason="set PHOTOMAP_REAL_INVOKEAI=URL to check a real InvokeAI server")


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    info = PngInfo()
    info.add_text("invokeai_metadata", json.dumps({"positive_prompt": f"a fox {seed}", "seed": seed}))
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (72, 88, 3), dtype=np.uint8)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


class Server:
    """One server (the real one or the fake) seen as one user: raw requests with that user's bearer."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.headers = headers

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url, timeout=30, headers=self.headers) as http:
            return await http.request(method, path, **kwargs)

    async def board(self, name: str) -> str:
        response = await self.request("POST", "api/v1/boards/", params={"board_name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["board_id"])

    async def upload(self, seed: int, board_id: str | None = None, *, intermediate: bool = False) -> str:
        params = {"image_category": "general", "is_intermediate": str(intermediate).lower()}
        if board_id:
            params["board_id"] = board_id
        response = await self.request("POST", "api/v1/images/upload", params=params,
                                      files={"file": (f"{seed}.png", png(seed), "image/png")})
        assert response.status_code == 201, response.text
        return str(response.json()["image_name"])


async def _login(url: str, email: str, password: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post("api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def _users(url: str) -> tuple[bool, list[tuple[str, str]]]:
    """(multi-user?, two fresh non-admin users) on the real server; single-user: no users."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        multiuser = (await http.get("api/v1/auth/status")).json()["multiuser_enabled"]
        if not multiuser:
            return False, []
        if ":" not in ADMIN:
            pytest.skip("multi-user server: set PHOTOMAP_REAL_INVOKEAI_ADMIN=email:password")
        admin = await _login(url, *ADMIN.split(":", 1))
        users = []
        for _ in range(2):
            user = (f"photomap-{secrets.token_hex(4)}@example.com", "Photomap-pass-1")
            made = await http.post("api/v1/auth/users", headers=admin,
                                   json={"email": user[0], "password": user[1], "is_admin": False})
            assert made.status_code == 201, made.text
            users.append(user)
        return True, users


async def _scenario(server: Server) -> list[Any]:
    """The same steps on either server; the answers, with image names and board ids replaced by their order."""
    board = await server.board(f"photomap-{secrets.token_hex(3)}")
    other = await server.board(f"photomap-{secrets.token_hex(3)}")
    first, second = await server.upload(1, board), await server.upload(2, board)
    await server.upload(3, board, intermediate=True)
    names = {first: "first", second: "second", board: "board", other: "other"}

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            return names.get(value, value)
        if isinstance(value, list):
            return [norm(item) for item in value]
        if isinstance(value, dict):  # affected_boards is a set on the real server: its order varies
            return {key: sorted(norm(item)) if key == "affected_boards" else norm(item) for key, item in value.items()}
        return value

    answers: list[Any] = []

    async def step(method: str, path: str, keep: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        response = await server.request(method, path, **kwargs)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        if keep is not None and isinstance(body, dict):
            body = {key: body.get(key) for key in keep}
        answers.append((method, path.replace(first, "first"), response.status_code, norm(body)))

    listing = {"board_id": board, "is_intermediate": "false", "starred_first": "true"}
    await step("GET", "api/v1/images/names", params=listing)
    await step("POST", "api/v1/images/star", json={"image_names": [second, "photomap-no-such-image.png"]})
    await step("GET", "api/v1/images/names", params=listing)
    await step("POST", "api/v1/images/unstar", json={"image_names": [second]})
    await step("POST", "api/v1/board_images/batch", json={"board_id": other, "image_names": [first]})
    await step("GET", "api/v1/images/names", params=listing)
    await step("GET", "api/v1/images/names", params={**listing, "board_id": other})
    await step("GET", f"api/v1/images/i/{first}", keep=("image_name", "board_id", "starred", "is_intermediate",
                                                        "width", "height"))
    await step("GET", f"api/v1/images/i/{first}/metadata")
    await step("GET", "api/v1/images/i/photomap-no-such-image.png/full")
    full = await server.request("GET", f"api/v1/images/i/{first}/full")
    thumb = await server.request("GET", f"api/v1/images/i/{first}/thumbnail")
    answers.append(("files", full.status_code, full.content == png(1) or "metadata" in str(Image.open(
        io.BytesIO(full.content)).info), thumb.status_code, thumb.headers.get("content-type")))
    return answers


async def test_the_fakes_board_routes_answer_like_the_real_server(aiohttp_server: Any) -> None:
    multiuser, users = await _users(REAL_URL)
    fake = FakeInvokeAI("6.14.2", multiuser=multiuser, users=dict(users))
    fake_url = str((await aiohttp_server(fake.app())).make_url("/"))
    real_headers = await _login(REAL_URL, *users[0]) if multiuser else {}
    fake_headers = await _login(fake_url, *users[0]) if multiuser else {}
    real = await _scenario(Server(REAL_URL, real_headers))
    faked = await _scenario(Server(fake_url, fake_headers))
    for got_real, got_fake in zip(real, faked):
        assert got_fake == got_real


async def test_a_board_album_works_end_to_end_and_live_against_the_real_server(model_runner: Any) -> None:
    multiuser, users = await _users(REAL_URL)
    user = users[0] if multiuser else ("", "")
    server = Server(REAL_URL, await _login(REAL_URL, *user) if multiuser else {})
    board = await server.board(f"photomap-{secrets.token_hex(3)}")
    made = [await server.upload(seed, board) for seed in (11, 12)]
    await server.upload(13, board, intermediate=True)
    connection = InvokeAIConnection()
    await connection.configure(Target(url=REAL_URL, username=user[0], password=SecretStr(user[1]) if user[1] else None))
    album = AlbumConfig(key="real", display_name="Real", source="invokeai", boards=[board])
    store = Store(config.index_dir())
    jobs = AlbumJobs(store, model_runner, ConfigStore(Config(albums=[album])), refresh_map=False, invokeai=connection)
    jobs.board_watchers.timing = {"first_delay_s": 0.2, "max_delay_s": 1.0, "full_every_s": 1.0}
    try:
        progress = await jobs.run_index("real")
        assert progress.state == "done", progress.message
        table = store.open("real")
        assert table is not None

        def names() -> set[str]:
            return {row["image_name"] for row in table.where(None, ["image_name"])}

        assert names() == set(made), "the two gallery images, no intermediate"
        jobs.board_watchers.sync([album])
        fresh = await server.upload(14, board)
        finished = time.monotonic()
        deadline = finished + DEADLINE_S
        while fresh not in names():
            assert time.monotonic() < deadline, "the new image never appeared"
            await asyncio.sleep(0.05)
        print(f"\nfinished in InvokeAI → searchable in PhotoMap: {time.monotonic() - finished:.2f} s")
        star = await server.request("POST", "api/v1/images/star", json={"image_names": [made[0]]})
        assert star.status_code == 200
        deadline = time.monotonic() + DEADLINE_S
        while not table.where(f"image_name = '{made[0]}'", ["starred"])[0]["starred"]:
            assert time.monotonic() < deadline, "a star made in InvokeAI never showed here"
            await asyncio.sleep(0.05)
        async with connection.client() as client:
            assert await images.set_starred(client, [made[1]], True) == [made[1]]
            result = await append_reference(client, made[1])
        assert result.ok
        listed = await server.request("GET", "api/v1/images/names",
                                      params={"board_id": board, "is_intermediate": "false", "starred_first": "true"})
        assert listed.json()["starred_count"] == 2, "our star reached InvokeAI"
    finally:
        await jobs.close()
        await connection.aclose()


async def test_user_a_never_lists_user_bs_private_board_on_the_real_server() -> None:
    multiuser, users = await _users(REAL_URL)
    if not multiuser:
        pytest.skip("needs a multi-user server")
    alice = Server(REAL_URL, await _login(REAL_URL, *users[0]))
    bob = Server(REAL_URL, await _login(REAL_URL, *users[1]))
    private = await bob.board("bob-private")
    await bob.upload(21, private)
    mine = await alice.board("alice-own")
    alices = await alice.upload(22, mine)
    async with InvokeAIClient(REAL_URL, users[0][0], SecretStr(users[0][1])) as client:
        listed = await images.list_album(client, ["all"])
        with pytest.raises(BoardNotVisible):
            await images.list_board(client, private)
    assert set(listed) == {alices}


@pytest.fixture
def serve_options() -> Any:
    from photomapd.api.keys import ServeOptions
    from tests.daemon.api.conftest import TEST_TOKEN

    return ServeOptions(token=TEST_TOKEN, model="ViT-B-32", pretrained="none", watch=True)


async def test_the_daemons_api_runs_a_board_album_against_the_real_server(
    aiohttp_client: Any, serve_options: Any
) -> None:
    """What the panel does: settings, a board album, its sync, a thumbnail, a lasso star + move, a new image live."""
    from photomapd.api import create_app
    from photomapd.api.keys import STORE
    from tests.daemon.api.conftest import TEST_TOKEN

    multiuser, users = await _users(REAL_URL)
    user = users[0] if multiuser else ("", "")
    server = Server(REAL_URL, await _login(REAL_URL, *user) if multiuser else {})
    board, other = await server.board(f"photomap-{secrets.token_hex(3)}"), await server.board("photomap-target")
    made = [await server.upload(seed, board) for seed in (31, 32)]
    api = await aiohttp_client(create_app(serve_options))
    api.session.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    settings = {"url": REAL_URL, **({"username": user[0], "password": user[1]} if multiuser else {})}
    assert (await api.put("/api/v1/settings/invokeai", json=settings)).status == 200
    resp = await api.post("/api/v1/albums", json={"key": "real", "display_name": "Real", "source": "invokeai",
                                                  "boards": [board]})
    assert resp.status == 201, await resp.text()

    async def rows() -> dict[str, int]:
        """image_name → id as the daemon's own store holds them (the panel would page through search)."""
        table = await asyncio.to_thread(api.server.app[STORE].open, "real")
        if table is None:
            return {}
        found = await asyncio.to_thread(table.where, None, ["id", "image_name"])
        return {row["image_name"]: row["id"] for row in found}

    deadline = time.monotonic() + DEADLINE_S * 3  # the app's own model process starts first
    while set(made) - set(await rows()):
        assert time.monotonic() < deadline, "the board album was never indexed"
        await asyncio.sleep(0.2)
    ids = await rows()
    thumb = await api.get(f"/api/v1/images/real/{ids[made[0]]}/thumb")
    assert thumb.status == 200 and thumb.content_type == "image/webp"
    resp = await api.post("/api/v1/albums/real/selection", json={"ids": [ids[made[0]]], "starred": True,
                                                                 "board_id": other})
    assert resp.status == 200, await resp.text()
    dto = (await server.request("GET", f"api/v1/images/i/{made[0]}")).json()
    assert dto["starred"] is True and dto["board_id"] == other
    fresh = await server.upload(33, board)
    deadline = time.monotonic() + DEADLINE_S
    while fresh not in await rows():
        assert time.monotonic() < deadline, "the new image never appeared through the API"
        await asyncio.sleep(0.2)
    assert made[0] not in await rows(), "the image moved out of the album's board left it"
