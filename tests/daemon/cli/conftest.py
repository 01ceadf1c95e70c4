"""Fixtures for the CLI's tests: a real `serve` for the commands that go through it, and a fake InvokeAI."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest
from aiohttp import web

from photomapd.native import lifecycle

from tests.daemon.fake_invokeai import DEFAULT_USERS, FakeInvokeAI
from tests.daemon.processes import Daemons, running, use_test_model, wait_until

USER = next(iter(DEFAULT_USERS))


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[[], lifecycle.DaemonStatus]]:
    """Start `photomapd serve` (test model, no watching) and wait for it to answer; killed at the end."""
    daemons = Daemons(tmp_path)

    def start() -> lifecycle.DaemonStatus:
        use_test_model()
        proc = daemons.start()
        daemon = wait_until(running, "serve to answer /status")
        assert daemon.pid == proc.pid
        return daemon

    yield start
    daemons.close()


@pytest.fixture
def fake_url() -> Iterator[tuple[FakeInvokeAI, str]]:
    """A multi-user fake InvokeAI with one board of USER's, on its own loop in a thread: the CLI runs `asyncio.run`
    itself (and a daemon is another process), so it can't share the test's loop."""
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
