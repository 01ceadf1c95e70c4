"""Run the API on 127.0.0.1: pick the port (config's, or a free one when taken) and publish it in state.json."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import signal
import socket

from aiohttp import web

from photomapd import config
from photomapd.api import create_app
from photomapd.api.keys import ServeOptions
from photomapd.config import ConfigStore

log = logging.getLogger(__name__)

BIND_HOST = "127.0.0.1"  # never 0.0.0.0: the API is for this machine's browser only


def bind_socket(port: int) -> socket.socket:
    """A listening socket on `port`, or on a free port when that one is taken by another program."""
    for candidate in (port, 0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((BIND_HOST, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or candidate == 0:
                raise
            log.warning("port %d is taken; using a free port instead", port)
            continue
        sock.listen(128)
        sock.setblocking(False)
        return sock
    raise AssertionError("unreachable")


def write_state(port: int) -> None:
    config.write_json_atomic(config.state_path(), {"port": port, "pid": os.getpid()})


def read_state() -> dict[str, int] | None:
    try:
        state = json.loads(config.state_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) else None


async def serve(options: ServeOptions, port: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM; cleanup contexts then stop watchers and let in-flight index batches finish."""
    config_store = ConfigStore()
    app = create_app(options, config_store)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    sock = bind_socket(port if port is not None else config_store.current.port)
    site = web.SockSite(runner, sock)
    await site.start()
    bound_port = sock.getsockname()[1]
    write_state(bound_port)
    log.info("photomapd listening on http://%s:%d", BIND_HOST, bound_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        state = read_state()
        if state and state.get("pid") == os.getpid():
            config.state_path().unlink(missing_ok=True)
