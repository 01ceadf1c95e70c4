"""The guard middleware: token, Host and Origin are checked on every route before any handler runs."""

from __future__ import annotations

from typing import Any

import pytest


async def test_status_answers_with_the_right_token(api: Any) -> None:
    resp = await api.get("/api/v1/status")
    assert resp.status == 200
    body = await resp.json()
    assert body["version"]


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "test-token-0123456789", "Basic dGVzdA=="])
async def test_missing_or_wrong_token_is_401(api: Any, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    if auth is None:
        api.session.headers.pop("Authorization")
    resp = await api.get("/api/v1/status", headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost", "0.0.0.0:{port}"])
async def test_foreign_host_is_403(api: Any, host: str) -> None:
    resp = await api.get("/api/v1/status", headers={"Host": host.format(port=api.port)})
    assert resp.status == 403


async def test_localhost_host_is_accepted(api: Any) -> None:
    resp = await api.get("/api/v1/status", headers={"Host": f"localhost:{api.port}"})
    assert resp.status == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "chrome-extension://someoneelse", "http://127.0.0.1"])
async def test_foreign_origin_is_403_even_with_token(api: Any, origin: str) -> None:
    resp = await api.get("/api/v1/status", headers={"Origin": origin})
    assert resp.status == 403


async def test_extension_origin_gets_cors_headers(api: Any) -> None:
    origin = "moz-extension://3f1c5a52-0000-4000-8000-000000000000"
    resp = await api.get("/api/v1/status", headers={"Origin": origin})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == origin


async def test_unknown_route_still_needs_the_token(api: Any) -> None:
    api.session.headers.pop("Authorization")
    resp = await api.get("/api/v1/../../etc/passwd")
    assert resp.status in (401, 404)
    resp = await api.get("/api/v1/nothing-here")
    assert resp.status == 401
