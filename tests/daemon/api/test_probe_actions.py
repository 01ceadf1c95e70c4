"""The settings probe says, per action, whether this InvokeAI can do it and why not, and whether it is multi-user:
the real daemon app against fake InvokeAI servers of several versions (tests/daemon/fake_invokeai.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/daemon: the fake server
from fake_invokeai import FakeInvokeAI  # noqa: E402


@pytest.mark.parametrize(
    ("version", "multiuser", "unavailable"),
    [
        ("6.10.0", False, {
            "recall": "Recall needs InvokeAI 6.12 or newer (this server runs 6.10.0)",
            "remix": "Remix needs InvokeAI 6.12 or newer (this server runs 6.10.0)",
            "append": "Append needs InvokeAI 6.14 or newer (this server runs 6.10.0)",
        }),
        ("6.13.1", True, {"append": "Append needs InvokeAI 6.14 or newer (this server runs 6.13.1)"}),
        ("6.14.2", True, {}),
    ],
)  # fmt: skip
async def test_probe_greys_each_action_the_server_is_too_old_for(
    api: Any, aiohttp_server: Any, version: str, multiuser: bool, unavailable: dict[str, str]
) -> None:
    server = await aiohttp_server(FakeInvokeAI(version, multiuser=multiuser).app())
    saved = await api.put("/api/v1/settings/invokeai", json={"url": str(server.make_url("/"))})
    assert saved.status == 200, await saved.text()
    for probe in ((await saved.json())["probe"], await (await api.get("/api/v1/invokeai/probe")).json()):
        assert probe["ok"] is True and probe["version"] == version and probe["multiuser"] is multiuser
        for action in ("recall", "remix", "append"):
            reason = unavailable.get(action)
            assert probe["actions"][action] == {"available": reason is None, "reason": reason}, action


async def test_a_failed_probe_has_no_actions(api: Any) -> None:
    saved = await (await api.put("/api/v1/settings/invokeai", json={"url": "file:///nowhere"})).json()
    assert saved["probe"]["ok"] is False and saved["probe"]["actions"] is None
