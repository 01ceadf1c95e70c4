"""The client's contract against a real InvokeAI server, and the fake's answers beside the real ones (opt-in).

Skipped unless `PHOTOMAP_REAL_INVOKEAI` names a server, e.g. one started by `../shared/tools/invokeai-up`:

    PHOTOMAP_REAL_INVOKEAI=http://127.0.0.1:9090/ .venv/bin/python -m pytest tests/daemon/invokeai/test_real_invokeai.py

A multi-user server also needs an admin login, `PHOTOMAP_REAL_INVOKEAI_ADMIN=email:password` (invokeai-up makes
`admin@example.com:Admin-pass-1`): the tests add a user of their own through it. Nothing here needs models; the
server keeps the few 64×64 images the tests upload.

Each `*_like_the_fake` test sends the same raw request to the real server and to `FakeInvokeAI` in the same mode, and
compares status and body exactly: that is what keeps the fake (and so every other test) honest.
"""

from __future__ import annotations

import io
import os
import secrets
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/daemon: the fake server
from fake_invokeai import FakeInvokeAI  # noqa: E402

from photomapd import errors  # noqa: E402
from photomapd.invokeai.actions import send_parameters, use_as_reference  # noqa: E402
from photomapd.invokeai.client import InvokeAIClient, probe  # noqa: E402
from photomapd.invokeai.fetch import fetch_image  # noqa: E402
from photomapd.invokeai.recall import build_recall_body  # noqa: E402
from photomapd.invokeai.refimage import prepare_upload  # noqa: E402
from photomapd.metadata import read_metadata  # noqa: E402
from photomapd.metadata.model import ImageMetadata, LoraRef, ModelRef, ReferenceImage  # noqa: E402

REAL_URL = os.environ.get("PHOTOMAP_REAL_INVOKEAI", "")
ADMIN = os.environ.get("PHOTOMAP_REAL_INVOKEAI_ADMIN", "")
MISSING_IMAGE = "photomap-test-no-such-image.png"
MISSING_MODEL = "photomap-test-no-such-model"

pytestmark = pytest.mark.skipif(not REAL_URL, reason="set PHOTOMAP_REAL_INVOKEAI=URL to check a real InvokeAI server")


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (secrets.randbelow(256), 90, 160)).save(out, format="PNG")
    return out.getvalue()


def _meta(*images: str) -> ImageMetadata:
    return ImageMetadata(generator="invokeai", positive_prompt="a lighthouse", model=ModelRef(name=MISSING_MODEL),
                         seed=7, steps=20, cfg_scale=6.0, width=512, height=512, recallable=True,
                         loras=[LoraRef(name=MISSING_MODEL, weight=0.5)],
                         reference_images=[ReferenceImage(image_name=name) for name in images],
                         raw={"invokeai_metadata": {"cfg_rescale_multiplier": 0.25}})


class Real:
    """The real server: its mode, and (multi-user) an admin token and a fresh non-admin user made for this run."""

    def __init__(self, url: str) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.multiuser = False
        self.admin_token = ""
        self.user = ("", "")

    async def setup(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            self.multiuser = (await http.get("api/v1/auth/status")).json()["multiuser_enabled"]
            if not self.multiuser:
                return
            if ":" not in ADMIN:
                pytest.skip("multi-user server: set PHOTOMAP_REAL_INVOKEAI_ADMIN=email:password")
            email, password = ADMIN.split(":", 1)
            login = await http.post("api/v1/auth/login", json={"email": email, "password": password})
            assert login.status_code == 200, login.text
            self.admin_token = login.json()["token"]
            self.user = (f"photomap-{secrets.token_hex(4)}@example.com", "Photomap-pass-1")
            made = await http.post("api/v1/auth/users", headers=self.admin_headers,
                                   json={"email": self.user[0], "password": self.user[1], "is_admin": False})
            assert made.status_code == 201, made.text

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}

    async def login_headers(self, http: httpx.AsyncClient, *, admin: bool = False) -> dict[str, str]:
        """A bearer header from `http`'s server (the real one or the fake) for our user or the admin; single-user:
        none."""
        if not self.multiuser:
            return {}
        email, password = ADMIN.split(":", 1) if admin else self.user
        login = await http.post("api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['token']}"}

    async def upload(self, headers: dict[str, str]) -> str:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            response = await http.post("api/v1/images/upload", headers=headers,
                                       params={"image_category": "user", "is_intermediate": "false"},
                                       files={"file": ("ref.png", _png(), "image/png")})
        assert response.status_code == 201, response.text
        return str(response.json()["image_name"])


@pytest.fixture
async def real() -> AsyncIterator[Real]:
    server = Real(REAL_URL)
    await server.setup()
    yield server


@pytest.fixture
async def fake_like(aiohttp_server: Any, real: Real) -> tuple[FakeInvokeAI, str]:
    """The fake in the real server's mode, with the same users (the admin, our user) and no models, like it."""
    users = {}
    admins = set()
    if real.multiuser:
        email, password = ADMIN.split(":", 1)
        users = {email: password, real.user[0]: real.user[1]}
        admins = {email}
    fake = FakeInvokeAI("6.14.2", multiuser=real.multiuser, users=users, admins=admins, models=set())
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("/"))


async def _both(real_url: str, fake_url: str, method: str, path: str, **kwargs: Any) -> list[tuple[int, Any]]:
    answers = []
    for base in (real_url, fake_url):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            response = await http.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        answers.append((response.status_code, body))
    return answers


# --- the fake beside the real server ----------------------------------------------------------------------------


async def test_auth_status_like_the_fake(real: Real, fake_like: tuple[FakeInvokeAI, str]) -> None:
    (real_status, real_body), (fake_status, fake_body) = await _both(real.url, fake_like[1], "GET",
                                                                     "api/v1/auth/status")
    assert real_status == fake_status == 200
    assert set(real_body) == set(fake_body)
    assert real_body["multiuser_enabled"] == fake_body["multiuser_enabled"] == real.multiuser


@pytest.mark.parametrize("body", [
    {"email": "bob", "password": "x", "remember_me": True},  # the username of issue 12: not an email
    {"email": "@example.com", "password": "x"},
    {"email": "bob@", "password": "x"},
    {"email": "bob@host", "password": "x"},
    {"email": "a b@example.com", "password": "x"},
    {"password": "x"},
    {"email": "nobody@example.com", "password": "wrong", "remember_me": True},  # 403 single-user, 401 multi-user
])
async def test_login_answers_like_the_fake(real: Real, fake_like: tuple[FakeInvokeAI, str],
                                           body: dict[str, Any]) -> None:
    real_answer, fake_answer = await _both(real.url, fake_like[1], "POST", "api/v1/auth/login", json=body)
    assert real_answer == fake_answer


async def test_login_with_a_body_that_is_not_json_like_the_fake(real: Real,
                                                                 fake_like: tuple[FakeInvokeAI, str]) -> None:
    real_answer, fake_answer = await _both(real.url, fake_like[1], "POST", "api/v1/auth/login", content=b"nope",
                                           headers={"Content-Type": "application/json"})
    assert real_answer == fake_answer and real_answer[0] == 422


async def test_routes_without_a_valid_token_like_the_fake(real: Real, fake_like: tuple[FakeInvokeAI, str]) -> None:
    if not real.multiuser:
        pytest.skip("single-user servers need no token")
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        real_answer, fake_answer = await _both(real.url, fake_like[1], "GET", "api/v1/boards/",
                                               params={"all": "true"}, headers=headers)
        assert real_answer == fake_answer and real_answer[0] == 401


@pytest.mark.parametrize(("query", "body"), [
    ({}, {"positive_prompt": "x", "prompt_strength": 3}),  # unknown field
    ({}, {"steps": 0, "width": 32}),  # out of range
    ({"strict": "true", "append": "true"}, {"positive_prompt": "x"}),  # mutually exclusive
    ({}, {}),  # nothing to recall
])
async def test_recall_refusals_like_the_fake(real: Real, fake_like: tuple[FakeInvokeAI, str],
                                             query: dict[str, str], body: dict[str, Any]) -> None:
    answers = []
    for base in (real.url, fake_like[1]):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            response = await http.post("api/v1/recall/default", params=query, json=body,
                                       headers=await real.login_headers(http))
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("strict", [False, True])
async def test_recall_keeps_what_it_has_like_the_fake(real: Real, fake_like: tuple[FakeInvokeAI, str],
                                                      strict: bool) -> None:
    """Missing images, unknown models and LoRAs are dropped from `parameters`; cfg_rescale_multiplier is kept."""
    fake, fake_url = fake_like
    image = await real.upload(real.admin_headers)
    fake.add_image(image)
    body = {"positive_prompt": "a lighthouse", "model": MISSING_MODEL, "cfg_rescale_multiplier": 0.25, "steps": 20,
            "loras": [{"model_name": MISSING_MODEL, "weight": 0.5}],
            "reference_images": [{"image_name": image}, {"image_name": MISSING_IMAGE}]}
    answers = []
    for base in (real.url, fake_url):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            # An admin (or the single user): 200 and silent drops, never 403.
            headers = await real.login_headers(http, admin=True)
            response = await http.post("api/v1/recall/default", params={"strict": "true"} if strict else {},
                                       json=body, headers=headers)
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    kept = answers[0][1]["parameters"]
    assert kept["cfg_rescale_multiplier"] == 0.25 and "model" not in kept and kept["loras"] == []
    assert [ref["image"]["image_name"] for ref in kept["reference_images"]] == [image]


async def test_recall_of_images_a_user_may_not_use_like_the_fake(real: Real,
                                                                 fake_like: tuple[FakeInvokeAI, str]) -> None:
    if not real.multiuser:
        pytest.skip("only multi-user servers refuse images (403)")
    fake, fake_url = fake_like
    admins_image = await real.upload(real.admin_headers)
    fake.add_image(admins_image, owner=ADMIN.split(":", 1)[0])
    for name in (admins_image, MISSING_IMAGE):  # another user's private image, and one that doesn't exist
        body = {"positive_prompt": "x", "reference_images": [{"image_name": name}]}
        answers = []
        for base in (real.url, fake_url):
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                response = await http.post("api/v1/recall/default", json=body, headers=await real.login_headers(http))
            answers.append((response.status_code, response.json()))
        assert answers[0] == answers[1] and answers[0][0] == 403


# --- the client's contract --------------------------------------------------------------------------------------


def _client(real: Real, username: str = "", password: str = "") -> InvokeAIClient:
    return InvokeAIClient(real.url, username, SecretStr(password) if password else None)


async def test_probe(real: Real) -> None:
    result = await probe(real.url)
    assert result.ok and result.version and result.multiuser is real.multiuser


async def test_a_username_that_is_not_an_email(real: Real) -> None:
    async with _client(real, "bob", "whatever") as client:
        if real.multiuser:
            with pytest.raises(errors.AuthUsernameNotEmail):
                await client.boards()
        else:  # no login is sent at all: everything works
            assert (await client.boards())[0].board_name == "Uncategorized"
            upload = await use_as_reference(client, prepare_upload(_png(), "bob.png"), None)
            assert upload.image_name


async def test_recall_tells_what_the_server_dropped(real: Real) -> None:
    username, password = real.user if real.multiuser else ("", "")
    async with _client(real, username, password) as client:
        mine = (await use_as_reference(client, prepare_upload(_png()), None)).image_name
        assert mine
        result = await send_parameters(client, _meta(mine, MISSING_IMAGE), keep_seed=True)
    if real.multiuser:  # a non-admin user: 403 for the missing image, then the rest without images
        assert "without 2 reference images (not on that InvokeAI, or in another user's private board)" in \
            result.message
    else:
        assert "without 1 reference image, the model" in result.message and "1 LoRA" in result.message


async def test_the_configured_invokeai_may_be_fetched_from(real: Real) -> None:
    if real.multiuser:
        pytest.skip("a multi-user server wants a token for image files")
    image = await real.upload({})
    data = await fetch_image(f"{real.url}api/v1/images/i/{image}/full", invokeai_url=real.url)
    assert prepare_upload(data).content_type == "image/png"
    with pytest.raises(errors.RefAddressRefused):  # the same file, but not through the configured host
        await fetch_image(f"{real.url}api/v1/images/i/{image}/full")


FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "images"


@pytest.mark.parametrize("path", sorted(FIXTURE_DIR.glob("invokeai-*")), ids=lambda p: p.name)
async def test_the_recall_body_of_every_fixture_is_accepted(real: Real, path: Path) -> None:
    """Strict, as Recall sends it: every field we build (cfg_rescale_multiplier included) is one the server takes."""
    body = build_recall_body(read_metadata(path))
    async with httpx.AsyncClient(base_url=real.url, timeout=30) as http:
        response = await http.post("api/v1/recall/default", params={"strict": "true"}, json=body,
                                   headers=real.admin_headers)  # an admin: images it lacks are dropped, not 403
    assert response.status_code == 200, response.text
    kept = response.json()["parameters"]
    for key in ("cfg_rescale_multiplier", "seed", "steps", "positive_prompt"):
        if key in body:
            assert kept[key] == body[key]
