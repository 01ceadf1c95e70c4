"""The InvokeAI client against the fake server (DESIGN §4's contract) and real misbehaving servers."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/daemon: the fake server
from fake_invokeai import DEFAULT_USERS, FakeInvokeAI  # noqa: E402

from photomapd import errors  # noqa: E402
from photomapd.invokeai.actions import send_parameters, use_as_reference  # noqa: E402
from photomapd.invokeai.client import InvokeAIClient, probe, version_tuple  # noqa: E402
from photomapd.invokeai.connection import InvokeAIConnection, Target  # noqa: E402
from photomapd.metadata.model import ImageMetadata, LoraRef, ModelRef, ReferenceImage  # noqa: E402
from photomapd.invokeai.refimage import prepare_upload  # noqa: E402

USER, PASSWORD = next(iter(DEFAULT_USERS.items()))
NOT_INVOKEAI = "Server is reachable but doesn't appear to be an InvokeAI backend"
FAST = httpx.Timeout(0.5, connect=0.5)  # the "never answers" tests: short, so the suite stays quick
Start = Callable[..., Awaitable[str]]


@pytest.fixture
def start(aiohttp_server: Any) -> Start:
    async def _start(app: FakeInvokeAI | web.Application, **kwargs: Any) -> str:
        server = await aiohttp_server(app.app() if isinstance(app, FakeInvokeAI) else app, **kwargs)
        return str(server.make_url("/"))

    return _start


def _png(size: tuple[int, int] = (8, 8)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _recallable(**extra: Any) -> ImageMetadata:
    return ImageMetadata(generator="invokeai", positive_prompt="a red fox", model=ModelRef(name="sdxl-base"),
                         seed=42, steps=20, cfg_scale=7.0, width=1024, height=1024, recallable=True, **extra)


# --- probe: the four messages, in order --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/", "localhost:9090", "", "javascript:alert(1)"])
async def test_probe_refuses_other_schemes(url: str) -> None:
    assert (await probe(url)).message == "InvokeAI URL must use http:// or https://"


@pytest.mark.parametrize("url", ["http://", "https://", "http://:9090", "http://[::1"])
async def test_probe_needs_a_host(url: str) -> None:
    assert (await probe(url)).message == "InvokeAI URL must include a host"


async def test_probe_closed_port_could_not_reach() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await probe(f"http://127.0.0.1:{port}")
    assert result.ok is False and result.message == "Could not reach backend"


async def test_probe_html_server_is_not_invokeai(start: Start) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>router login</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", html)
    assert (await probe(await start(app))).message == NOT_INVOKEAI


async def test_probe_json_without_version_is_not_invokeai(start: Start) -> None:
    async def not_a_version(request: web.Request) -> web.Response:
        return web.json_response({"name": "comfy", "version": 6})

    app = web.Application()
    app.router.add_get("/api/v1/app/version", not_a_version)
    assert (await probe(await start(app))).message == NOT_INVOKEAI


async def test_probe_server_that_never_answers_times_out() -> None:
    writers: list[asyncio.StreamWriter] = []  # kept open: the server accepts and then says nothing

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await asyncio.wait_for(probe(f"http://127.0.0.1:{port}", timeout=FAST), timeout=10)
    finally:
        for writer in writers:
            writer.close()
        server.close()
    assert result.message == "Could not reach backend"
    assert writers, "the request did reach the silent server"


async def test_connect_timeout_maps_to_could_not_reach() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    result = await probe("http://10.255.255.1:9090", transport=httpx.MockTransport(refuse))
    assert result.message == "Could not reach backend"


async def test_probe_success_reports_version_and_mode(start: Start) -> None:
    single = await probe(await start(FakeInvokeAI("6.14.2")))
    assert (single.ok, single.version, single.multiuser, single.message) == (True, "6.14.2", False, None)
    multi = await probe(await start(FakeInvokeAI("6.14.2", multiuser=True)))
    assert (multi.ok, multi.multiuser) == (True, True)
    old = await probe(await start(FakeInvokeAI("4.2.9", has_auth_routes=False)))
    assert (old.ok, old.version, old.multiuser) == (True, "4.2.9", False)


@pytest.mark.parametrize("suffix", ["invoke", "invoke/"])
async def test_base_url_path_prefix_and_trailing_slash_are_kept(start: Start, suffix: str) -> None:
    fake = FakeInvokeAI("6.14.2")
    board = fake.add_board("Portraits")
    parent = web.Application()
    parent.add_subapp("/invoke/", fake.app())
    url = await start(parent) + suffix
    assert (await probe(url)).version == "6.14.2"
    async with InvokeAIClient(url) as client:
        assert [b.board_id for b in await client.boards()] == [None, board]
    assert all(entry["path"].startswith("/invoke/api/v1/") for entry in fake.requests)


async def test_ipv6_literal_url(start: Start) -> None:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    url = await start(FakeInvokeAI("6.13.0"), host="::1")
    assert url.startswith("http://[::1]:")
    assert (await probe(url)).version == "6.13.0"


async def test_https_with_self_signed_certificate_is_an_explicit_error(start: Start, tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1"],
        capture_output=True, check=False,
    )
    if made.returncode != 0:
        pytest.skip("openssl could not make a test certificate")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    url = (await start(FakeInvokeAI("6.14.2"), ssl=context)).replace("http://", "https://")
    result = await asyncio.wait_for(probe(url), timeout=10)
    assert result.ok is False
    assert result.message == errors.CertificateUntrusted.message
    assert result.message.startswith("Could not reach backend")


def test_version_tuple_reads_every_era() -> None:
    assert version_tuple("6.14.2") == (6, 14, 2)
    assert version_tuple("v2.02") == (2, 2)
    assert version_tuple("3.0.2post1") == (3, 0, 2)
    assert version_tuple("6.12.0rc1") >= (6, 12)
    assert version_tuple("nightly") == (0,)


# --- login --------------------------------------------------------------------------------------------------------


async def test_multiuser_login_then_boards(start: Start) -> None:
    fake = FakeInvokeAI(multiuser=True)
    mine = fake.add_board("Mine", owner=USER)
    fake.add_board("Someone else's", owner="bob@example.com")
    async with InvokeAIClient(await start(fake), USER, SecretStr(PASSWORD)) as client:
        boards = await client.boards()
        await client.boards()
    assert [(b.board_id, b.board_name) for b in boards] == [(None, "Uncategorized"), (mine, "Mine")]
    assert fake.logins == 1  # the token is reused


async def test_wrong_password_is_rejected_not_an_empty_list(start: Start) -> None:
    fake = FakeInvokeAI(multiuser=True)
    async with InvokeAIClient(await start(fake), USER, SecretStr("wrong")) as client:
        with pytest.raises(errors.AuthRejected, match="InvokeAI rejected the username or password"):
            await client.boards()


async def test_multiuser_without_credentials_asks_for_them(start: Start) -> None:
    async with InvokeAIClient(await start(FakeInvokeAI(multiuser=True))) as client:
        with pytest.raises(errors.AuthRequired):
            await client.boards()


async def test_expired_token_logs_in_once_more(start: Start) -> None:
    fake = FakeInvokeAI(multiuser=True)
    async with InvokeAIClient(await start(fake), USER, SecretStr(PASSWORD)) as client:
        await client.boards()
        fake.expire_tokens()
        assert (await client.boards())[0].board_name == "Uncategorized"
    assert fake.logins == 2
    statuses = [entry["authorization"] is not None for entry in fake.requests if entry["path"] == "/api/v1/boards/"]
    assert statuses == [True, True, True]  # first call, the 401 with the expired token, the retry


async def test_password_changed_on_server_gives_up_after_one_relogin(start: Start) -> None:
    fake = FakeInvokeAI(multiuser=True)
    async with InvokeAIClient(await start(fake), USER, SecretStr(PASSWORD)) as client:
        await client.boards()
        fake.expire_tokens()
        fake.users[USER] = "changed"
        with pytest.raises(errors.AuthRejected):
            await client.boards()
    assert fake.logins == 2


@pytest.mark.parametrize("username", ["", "bob", "someone@example.com"])
async def test_single_user_server_is_never_sent_a_login(start: Start, username: str) -> None:
    # InvokeAI checks the email (422 for `bob`) before it says "no login needed" (403): auth/status decides first.
    fake = FakeInvokeAI()
    fake.add_image("ref.png")
    async with InvokeAIClient(await start(fake), username, SecretStr("whatever")) as client:
        assert len(await client.boards()) == 1
        upload = await use_as_reference(client, prepare_upload(_png()), None)
        recalled = await send_parameters(client, _recallable(), keep_seed=True)
    assert upload.image_name in fake.images and recalled.ok
    assert [entry for entry in fake.requests if entry["path"] == "/api/v1/auth/login"] == []
    assert all(entry["authorization"] is None for entry in fake.requests)


async def test_multiuser_username_that_is_not_an_email_says_so(start: Start) -> None:
    async with InvokeAIClient(await start(FakeInvokeAI(multiuser=True)), "bob", SecretStr(PASSWORD)) as client:
        with pytest.raises(errors.AuthRejected) as raised:  # still the "rejected" family: same code
            await client.boards()
    assert isinstance(raised.value, errors.AuthUsernameNotEmail)
    assert raised.value.code == "invokeai_auth_rejected" and "email address" in raised.value.message


async def test_a_failed_relogin_never_sends_the_stale_token_again(start: Start) -> None:
    fake = FakeInvokeAI(multiuser=True)
    async with InvokeAIClient(await start(fake), USER, SecretStr(PASSWORD)) as client:
        await client.boards()
        (stale,) = fake.tokens
        fake.expire_tokens()
        fake.users[USER] = "changed"  # the re-login fails
        for _ in range(2):
            with pytest.raises(errors.AuthRejected):
                await client.boards()
    sent = [entry["path"] for entry in fake.requests if entry["authorization"] == f"Bearer {stale}"]
    assert sent == ["/api/v1/boards/", "/api/v1/boards/"]  # the call it worked for, and the 401 that showed it expired
    assert fake.logins == 3  # the first, the failed re-login, and a fresh try on the next call (no stale token first)


async def test_password_never_appears_in_logs(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeInvokeAI(multiuser=True)
    url = await start(fake)
    async with InvokeAIClient(url, USER, SecretStr(PASSWORD)) as client:
        await client.boards()
        fake.expire_tokens()
        await client.boards()
    async with InvokeAIClient(url, USER, SecretStr(PASSWORD + "-typo")) as client:
        with pytest.raises(errors.AuthRejected) as raised:
            await client.boards()
    assert caplog.records, "debug logging was captured"
    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(raised.value) and PASSWORD not in repr(Target(url, USER, SecretStr(PASSWORD)))


# --- uploads ------------------------------------------------------------------------------------------------------


async def test_upload_to_a_board_and_to_uncategorized(start: Start) -> None:
    fake = FakeInvokeAI()
    board = fake.add_board("Refs")
    upload = prepare_upload(_png(), "fox.png")
    async with InvokeAIClient(await start(fake)) as client:
        named = await use_as_reference(client, upload, board)
        loose = await use_as_reference(client, upload, None)
    assert (named.board_name, loose.board_name) == ("Refs", "Uncategorized")
    assert fake.images[named.image_name or ""]["board_id"] == board
    assert fake.images[loose.image_name or ""]["board_id"] is None
    uploads = [entry for entry in fake.requests if entry["path"] == "/api/v1/images/upload"]
    assert uploads[0]["query"] == {"image_category": "user", "is_intermediate": "false", "board_id": board}
    assert "board_id" not in uploads[1]["query"]
    assert uploads[0]["upload"]["content_type"] == "image/png"


async def test_upload_to_a_deleted_board_says_choose_another(start: Start) -> None:
    async with InvokeAIClient(await start(FakeInvokeAI())) as client:
        with pytest.raises(errors.BoardNotFound):
            await client.upload(prepare_upload(_png()), "no-such-board")


async def test_fake_upload_validates_like_the_server(start: Start) -> None:
    url = await start(FakeInvokeAI())
    files = {"file": ("a.png", _png(), "image/png")}
    async with httpx.AsyncClient(base_url=url) as http:
        no_category = await http.post("api/v1/images/upload", params={"is_intermediate": "false"}, files=files)
        no_flag = await http.post("api/v1/images/upload", params={"image_category": "user"}, files=files)
        bad_board = await http.post("api/v1/images/upload", files=files, params={
            "image_category": "user", "is_intermediate": "false", "board_id": "nope"})
    assert (no_category.status_code, no_flag.status_code, bad_board.status_code) == (422, 422, 404)


# --- recall -------------------------------------------------------------------------------------------------------


async def test_recall_on_6_14_is_strict_and_remix_drops_the_seed(start: Start) -> None:
    fake = FakeInvokeAI("6.14.2")
    async with InvokeAIClient(await start(fake)) as client:
        recalled = await send_parameters(client, _recallable(), keep_seed=True)
        await send_parameters(client, _recallable(), keep_seed=False)
    assert recalled.ok and "Invoke" in recalled.message
    recall, remix = fake.recalls
    assert recall["query"] == {"strict": "true"} and recall["queue_id"] == "default"
    assert recall["body"]["seed"] == 42
    assert remix["body"] == {k: v for k, v in recall["body"].items() if k != "seed"}


async def test_recall_on_6_12_sends_no_strict_and_no_reference_images(start: Start) -> None:
    fake = FakeInvokeAI("6.12.0")
    fake.add_image("ip.png")
    meta = _recallable(reference_images=[ReferenceImage(image_name="flux.png"),
                                         ReferenceImage(image_name="ip.png", model="ip-adapter", weight=0.5)])
    async with InvokeAIClient(await start(fake)) as client:
        result = await send_parameters(client, meta, keep_seed=True)
    (recall,) = fake.recalls
    assert recall["query"] == {}
    assert "reference_images" not in recall["body"]
    assert recall["body"]["ip_adapters"][0]["image_name"] == "ip.png"
    assert "6.13" in result.message


async def test_recall_on_6_11_says_which_version_is_needed(start: Start) -> None:
    fake = FakeInvokeAI("6.11.1")
    async with InvokeAIClient(await start(fake)) as client:
        with pytest.raises(errors.RecallUnsupported, match=r"Recall needs InvokeAI 6\.12 or newer \(this server runs"):
            await send_parameters(client, _recallable(), keep_seed=True)
        with pytest.raises(errors.RecallUnsupported):  # and if asked anyway, the 404 says the same
            await client.recall({"positive_prompt": "x"})


async def test_fake_recall_forbids_unknown_fields(start: Start) -> None:
    async with InvokeAIClient(await start(FakeInvokeAI("6.14.2"))) as client:
        with pytest.raises(errors.InvokeAIRefused, match="Extra inputs are not permitted"):
            await client.recall({"positive_prompt": "x", "prompt_strength": 3})
    async with InvokeAIClient(await start(FakeInvokeAI("6.12.0"))) as client:
        with pytest.raises(errors.InvokeAIRefused, match="reference_images"):
            await client.recall({"reference_images": [{"image_name": "a.png"}]})


async def test_recall_on_a_single_user_server_says_what_it_silently_dropped(start: Start) -> None:
    fake = FakeInvokeAI("6.14.2", models={"sdxl-base"})
    fake.add_image("here.png")
    meta = _recallable(reference_images=[ReferenceImage(image_name="here.png"),
                                         ReferenceImage(image_name="elsewhere.png"),
                                         ReferenceImage(image_name="gone.png")])
    async with InvokeAIClient(await start(fake)) as client:
        result = await send_parameters(client, meta, keep_seed=True)
    (recall,) = fake.recalls  # one 200: the server kept what it had
    assert [ref["image_name"] for ref in recall["body"]["reference_images"]] == ["here.png", "elsewhere.png",
                                                                                "gone.png"]
    assert result.message == ("Recall sent to InvokeAI without 2 reference images (not on that InvokeAI): "
                              "press Invoke there to generate")


async def test_recall_says_which_models_the_server_does_not_have(start: Start) -> None:
    fake = FakeInvokeAI("6.14.2", models={"detail-lora"})
    meta = _recallable(loras=[LoraRef(name="detail-lora", weight=0.5), LoraRef(name="other-lora", weight=0.5)])
    async with InvokeAIClient(await start(fake)) as client:
        result = await send_parameters(client, meta, keep_seed=True)
    assert "without the model sdxl-base and 1 LoRA (not on that InvokeAI)" in result.message


async def test_recall_when_everything_is_there_has_no_note(start: Start) -> None:
    fake = FakeInvokeAI("6.14.2")
    fake.add_image("here.png")
    async with InvokeAIClient(await start(fake)) as client:
        result = await send_parameters(client, _recallable(reference_images=[ReferenceImage(image_name="here.png")]),
                                       keep_seed=True)
    assert result.message == "Recall sent to InvokeAI: press Invoke there to generate"


async def test_recall_refused_for_a_user_sends_the_rest_and_names_both_reasons(start: Start) -> None:
    fake = FakeInvokeAI("6.14.2", multiuser=True, users={USER: PASSWORD, "carol@example.com": "pw"})
    fake.add_image("carols.png", owner="carol@example.com")  # exists, but in carol's private board
    meta = _recallable(reference_images=[ReferenceImage(image_name="carols.png"),
                                         ReferenceImage(image_name="nowhere.png")])
    async with InvokeAIClient(await start(fake), USER, SecretStr(PASSWORD)) as client:
        result = await send_parameters(client, meta, keep_seed=True)
    (recall,) = fake.recalls  # the 403 was not accepted; the retry without the images was
    assert "reference_images" not in recall["body"] and recall["body"]["seed"] == 42
    assert result.message == ("Recall sent to InvokeAI without 2 reference images (not on that InvokeAI, or in "
                              "another user's private board): press Invoke there to generate")


async def test_an_admin_may_use_any_image_and_missing_ones_are_dropped(start: Start) -> None:
    fake = FakeInvokeAI("6.14.2", multiuser=True, admins={USER})
    fake.add_image("carols.png", owner="carol@example.com")
    meta = _recallable(reference_images=[ReferenceImage(image_name="carols.png"),
                                         ReferenceImage(image_name="nowhere.png")])
    async with InvokeAIClient(await start(fake), USER, SecretStr(PASSWORD)) as client:
        result = await send_parameters(client, meta, keep_seed=True)
    (recall,) = fake.recalls
    assert [ref["image"]["image_name"] for ref in recall["parameters"]["reference_images"]] == ["carols.png"]
    assert "without 1 reference image (not on that InvokeAI)" in result.message


async def test_attach_adds_the_upload_as_a_reference_image_on_6_14(start: Start) -> None:
    fake = FakeInvokeAI("6.14.0")
    async with InvokeAIClient(await start(fake)) as client:
        result = await use_as_reference(client, prepare_upload(_png()), None, attach=True)
    (recall,) = fake.recalls
    assert recall["query"] == {"append": "true"}
    assert recall["body"] == {"reference_images": [{"image_name": result.image_name}]}
    assert "attached" in result.message


@pytest.mark.parametrize("version", ["6.12.0", "6.13.0"])
async def test_attach_before_6_14_uploads_and_explains(start: Start, version: str) -> None:
    # 6.13 has no `append` (it ignores the parameter): a recall there would replace the user's reference images.
    fake = FakeInvokeAI(version)
    async with InvokeAIClient(await start(fake)) as client:
        result = await use_as_reference(client, prepare_upload(_png()), None, attach=True)
    assert result.image_name in fake.images and fake.recalls == []
    assert "6.14" in result.message


# --- the app's connection -----------------------------------------------------------------------------------------


async def test_connection_rebuilds_its_client_when_the_target_changes(start: Start) -> None:
    first, second = FakeInvokeAI("6.12.0"), FakeInvokeAI("6.14.2")
    url_a, url_b = await start(first), await start(second)
    connection = InvokeAIConnection()
    with pytest.raises(errors.InvokeAINotConfigured):
        async with connection.client():
            pass
    await connection.configure(Target(url_a))
    async with connection.client() as client_a:
        await connection.configure(Target(url_b))  # a change while a request still uses the old client
        assert (await client_a.info()).version == "6.12.0"
    async with connection.client() as client_b:
        assert (await client_b.info()).version == "6.14.2"
    assert client_a is not client_b and client_a._http.is_closed
    await connection.aclose()
    assert client_b._http.is_closed


# --- uploads: the bytes decide ---------------------------------------------------------------------------------


def test_prepare_upload_trusts_the_bytes_not_the_name() -> None:
    upload = prepare_upload(_png(), "holiday.jpg")
    assert (upload.filename, upload.content_type) == ("holiday.png", "image/png")
    with pytest.raises(errors.RefBytesNotImage) as raised:
        prepare_upload(b"GIF89a-but-not-really", "x.gif")
    assert "address" not in raised.value.message  # no address was involved (that message is the URL fetch's)
