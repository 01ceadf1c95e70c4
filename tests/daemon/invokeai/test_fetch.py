"""The context menu's image download (DESIGN §13): real loopback servers, and loopback is exactly what it must refuse.

Every server here is on 127.0.0.1, so a fetch that succeeds does so through the configured-InvokeAI exception
(`invokeai_url=` names the server), and a refusal is checked on the server's side too: it saw no request at all.
"""

from __future__ import annotations

import asyncio
import io
import ssl
import subprocess
import time
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from photomapd import errors
from photomapd.invokeai import fetch
from photomapd.invokeai.fetch import fetch_image, is_refused_address
from photomapd.invokeai.refimage import prepare_upload
from PIL import Image


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (30, 60, 200)).save(out, format="PNG")
    return out.getvalue()


class Site:
    """A loopback web server that records every request it receives."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.app = web.Application(middlewares=[self._record])
        self.url = ""

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.seen.append(request.path_qs)
        return await handler(request)

    def route(self, path: str, handler: Any) -> None:
        self.app.router.add_get(path, handler)


@pytest.fixture
def make_site(aiohttp_server: Any) -> Any:
    async def _make(**routes: Any) -> Site:
        site = Site()

        async def picture(request: web.Request) -> web.Response:
            return web.Response(body=_png(), content_type="image/png")

        site.route("/cat.png", picture)
        for name, handler in routes.items():
            site.route(f"/{name}", handler)
        server = await aiohttp_server(site.app)
        site.url = str(server.make_url("/"))
        return site

    return _make


def _port(url: str) -> int:
    return httpx.URL(url).port or 80


# --- the address rule -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1",  # loopback
    "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "fd00::1", "fc00::5",  # private
    "169.254.169.254", "169.254.0.1", "fe80::1",  # link-local (the cloud metadata address among them)
    "0.0.0.0", "::",  # unspecified (0.0.0.0 reaches this machine on Linux)
    "100.64.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255",  # CGNAT, multicast, reserved, broadcast
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped IPv6
    "2002:7f00:1::", "64:ff9b::a9fe:a9fe",  # 6to4 and NAT64 forms of 127.0.0.1 and 169.254.169.254
])
def test_refused_addresses(address: str) -> None:
    assert is_refused_address(ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::6810:84e5", "::ffff:8.8.8.8",
                                     "172.32.0.1", "192.169.0.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_refused_address(ip_address(address))


# --- refusals, before any connection --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "0.0.0.0", "2130706433", "0x7f.1", "0x7f000001", "127.1", "[::ffff:127.0.0.1]",
    "[::1]",
])
async def test_this_machine_in_every_spelling_is_refused(make_site: Any, host: str) -> None:
    site = await make_site()
    with pytest.raises(errors.RefAddressRefused) as raised:
        await fetch_image(f"http://{host}:{_port(site.url)}/cat.png")
    assert "public internet addresses" in raised.value.message
    assert raised.value.code == "ref_image_invalid"
    assert site.seen == []  # refused before connecting, not after reading


async def test_an_octal_address_is_not_even_parsed(make_site: Any) -> None:
    site = await make_site()  # httpx refuses a dotted quad with a leading zero; inet_aton would read it as octal
    with pytest.raises(errors.RefImageInvalid):
        await fetch_image(f"http://0177.0.0.1:{_port(site.url)}/cat.png")
    assert site.seen == []


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/a.png", "http://192.168.1.1/a.png",
    "http://172.16.5.4/a.png", "http://[fd00::1]/a.png", "http://[fe80::1]/a.png", "http://[::]/a.png",
])
async def test_private_and_link_local_addresses_are_refused(url: str) -> None:
    # The refusal comes before any connect: these tests send nothing off this machine.
    started = time.monotonic()
    with pytest.raises(errors.RefAddressRefused):
        await fetch_image(url, timeout=httpx.Timeout(0.2))
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:image/png;base64,AAAA", "ftp://host/a.png",
                                 "gopher://127.0.0.1/"])
async def test_only_http_and_https(url: str) -> None:
    with pytest.raises(errors.RefImageInvalid, match="Only http:// and https://"):
        await fetch_image(url)


# --- the configured InvokeAI is the one exception -------------------------------------------------------------------


async def test_the_configured_invokeai_host_is_allowed(make_site: Any) -> None:
    site = await make_site()
    data = await fetch_image(site.url + "cat.png", invokeai_url=site.url)
    assert prepare_upload(data).content_type == "image/png"
    assert site.seen == ["/cat.png"]


async def test_the_exception_is_that_host_and_port_only(make_site: Any) -> None:
    invokeai, other = await make_site(), await make_site()
    with pytest.raises(errors.RefAddressRefused):
        await fetch_image(other.url + "cat.png", invokeai_url=invokeai.url)  # same 127.0.0.1, another port
    assert other.seen == []


async def test_the_exception_matches_by_address_not_spelling(make_site: Any) -> None:
    site = await make_site()  # configured as http://127.0.0.1:PORT/, fetched as localhost
    data = await fetch_image(f"http://localhost:{_port(site.url)}/cat.png", invokeai_url=site.url)
    assert data == _png()


# --- redirects ------------------------------------------------------------------------------------------------------


async def test_a_redirect_to_a_refused_address_is_refused(make_site: Any) -> None:
    target = await make_site()

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound(target.url + "cat.png")

    async def metadata(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    start = await make_site(bounce=bounce, metadata=metadata)
    for path in ("bounce", "metadata"):
        with pytest.raises(errors.RefAddressRefused):
            await fetch_image(start.url + path, invokeai_url=start.url)
    assert start.seen == ["/bounce", "/metadata"] and target.seen == []


async def test_three_redirects_are_followed_and_a_fourth_is_refused(make_site: Any) -> None:
    async def hop(request: web.Request) -> web.Response:
        left = int(request.query["left"])
        raise web.HTTPFound("/cat.png" if left == 0 else f"/hop?left={left - 1}")

    site = await make_site(hop=hop)
    assert await fetch_image(site.url + "hop?left=2", invokeai_url=site.url) == _png()  # 3 redirects
    site.seen.clear()
    with pytest.raises(errors.RefImageInvalid) as raised:
        await fetch_image(site.url + "hop?left=3", invokeai_url=site.url)  # 4 redirects
    assert raised.value.message == errors.REF_TOO_MANY_REDIRECTS
    assert site.seen == ["/hop?left=3", "/hop?left=2", "/hop?left=1", "/hop?left=0"]  # never reached /cat.png


async def test_a_redirect_to_another_scheme_is_refused(make_site: Any) -> None:
    async def to_file(request: web.Request) -> web.Response:
        raise web.HTTPFound("file:///etc/passwd")

    site = await make_site(file=to_file)
    with pytest.raises(errors.RefImageInvalid, match="Only http:// and https://"):
        await fetch_image(site.url + "file", invokeai_url=site.url)


# --- what comes back ------------------------------------------------------------------------------------------------


async def test_answers_that_are_not_images(make_site: Any) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>not a picture</html>", content_type="text/html")

    async def gone(request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    site = await make_site(page=page, gone=gone)
    for path, message in (("page", errors.REF_NOT_IMAGE), ("gone", errors.REF_DOWNLOAD_FAILED + " (HTTP 404)")):
        with pytest.raises(errors.RefImageInvalid) as raised:
            await fetch_image(site.url + path, invokeai_url=site.url)
        assert raised.value.message == message


async def test_size_cap(make_site: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "REF_MAX_BYTES", 100)
    site = await make_site()
    with pytest.raises(errors.RefImageTooBig):
        await fetch_image(site.url + "cat.png", invokeai_url=site.url)


async def test_a_trickling_server_is_cut_off_at_the_deadline(make_site: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "FETCH_DEADLINE_S", 1.0)
    sent: list[int] = []

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        for byte in _png():  # one byte every 0.2 s: no single read ever waits long enough to time out
            await response.write(bytes([byte]))
            sent.append(byte)
            await asyncio.sleep(0.2)
        return response

    site = await make_site(trickle=trickle)
    started = time.monotonic()
    with pytest.raises(errors.RefDownloadTooSlow, match="took more than 1 s"):
        await fetch_image(site.url + "trickle", invokeai_url=site.url, timeout=httpx.Timeout(5.0))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3.0
    assert 0 < len(sent) < len(_png())  # it was still sending when it was cut off


async def test_a_server_that_never_answers_times_out() -> None:
    writers: list[asyncio.StreamWriter] = []  # kept open: the server accepts and then says nothing

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        with pytest.raises(errors.RefImageInvalid, match="Could not download"):
            await asyncio.wait_for(fetch_image(url + "a.png", invokeai_url=url, timeout=httpx.Timeout(0.5)), 10)
    finally:
        for writer in writers:
            writer.close()
        server.close()
    assert writers, "the request did reach the silent server"


def _certificates(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    """(server context with a cert for `localhost`, client context trusting only its CA), or None without openssl."""
    ca_key, ca, key, csr, cert, ext = (tmp_path / name for name in ("ca.key", "ca.pem", "srv.key", "srv.csr",
                                                                    "srv.pem", "ext.cnf"))
    ext.write_text("subjectAltName=DNS:localhost\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "1",
         "-subj", "/CN=photomap-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "1",
         "-extfile", ext],
    ]
    for step in steps:
        if subprocess.run(["openssl", *map(str, step)], capture_output=True, check=False).returncode != 0:
            return None
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(ca))


async def test_https_checks_the_certificate_for_the_name_not_the_pinned_address(aiohttp_server: Any,
                                                                              tmp_path: Path) -> None:
    contexts = _certificates(tmp_path)
    if contexts is None:
        pytest.skip("openssl could not make test certificates")
    server_context, trust = contexts
    hosts: list[str] = []

    async def picture(request: web.Request) -> web.Response:
        hosts.append(request.headers["Host"])
        return web.Response(body=_png(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", picture)
    port = (await aiohttp_server(app, ssl=server_context)).port
    by_name = f"https://localhost:{port}/"
    assert await fetch_image(by_name + "cat.png", invokeai_url=by_name, verify=trust) == _png()
    assert hosts == [f"localhost:{port}"]  # connected to the checked address, still asked for the name
    with pytest.raises(errors.RefImageInvalid, match="Could not download"):  # the cert doesn't name 127.0.0.1
        await fetch_image(f"https://127.0.0.1:{port}/cat.png", invokeai_url=by_name, verify=trust)
    assert len(hosts) == 1

