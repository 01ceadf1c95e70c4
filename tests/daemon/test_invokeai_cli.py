"""`photomapd invokeai ...`: probe prints the version or the message; the password never reaches the output."""

from __future__ import annotations

import asyncio
import io
import stat
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the fake server lives next to these tests
from fake_invokeai import DEFAULT_USERS, FakeInvokeAI  # noqa: E402

from photomapd import config  # noqa: E402
from photomapd.cli import main  # noqa: E402

USER, PASSWORD = next(iter(DEFAULT_USERS.items()))


@pytest.fixture
def fake_url() -> Iterator[tuple[FakeInvokeAI, str]]:
    """The fake on its own loop in a thread: the CLI runs `asyncio.run` itself, so it can't share the test's loop."""
    fake = FakeInvokeAI("6.13.1", multiuser=True)
    fake.add_board("Sketches", owner=USER)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(fake.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["runner"], state["port"] = runner, runner.addresses[0][1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield fake, f"http://127.0.0.1:{state['port']}"
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)  # type: ignore[attr-defined]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_probe_prints_the_version(fake_url: tuple[FakeInvokeAI, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invokeai", "probe", fake_url[1]]) == 0
    assert capsys.readouterr().out.strip() == "6.13.1"


def test_probe_prints_the_message_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invokeai", "probe", "file:///tmp"]) == 1
    assert capsys.readouterr().err.strip() == "InvokeAI URL must use http:// or https://"


def test_set_show_and_boards_never_print_the_password(
    fake_url: tuple[FakeInvokeAI, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = fake_url
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["invokeai", "set", "--url", url, "--username", USER, "--password-stdin"]) == 0
    assert main(["invokeai", "show"]) == 0
    assert main(["invokeai", "boards"]) == 0
    out = capsys.readouterr()
    assert "saved; InvokeAI 6.13.1" in out.out and "password: set" in out.out and "Sketches" in out.out
    assert PASSWORD not in out.out + out.err
    assert stat.S_IMODE(config.secrets_path().stat().st_mode) == 0o600
    assert config.load_config().invokeai.url == url


def test_boards_with_a_wrong_password_is_an_error(
    fake_url: tuple[FakeInvokeAI, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not-it\n"))
    main(["invokeai", "set", "--url", fake_url[1], "--username", USER, "--password-stdin"])
    assert main(["invokeai", "boards"]) == 1
    assert "InvokeAI rejected the username or password" in capsys.readouterr().err
