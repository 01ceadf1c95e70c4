"""Run the API on 127.0.0.1: pick the port (config's, or a free one when taken) and publish it in state.json."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket

from aiohttp import web

from photomapd.native import lifecycle
from photomapd.api import create_app
from photomapd.api.keys import ServeOptions
from photomapd.config import ConfigStore
from photomapd.native.lifecycle import read_state, write_state  # noqa: F401  (server.read_state is the public name)

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


async def serve(options: ServeOptions, port: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM; cleanup contexts then stop watchers and let in-flight index batches finish.

    Only one daemon runs per data dir: a second one raises AlreadyRunning (exit code 0) naming the first. A CLI
    command that holds the lock (it changes things while no daemon runs) is waited for, then the daemon starts.
    """
    instance = lifecycle.InstanceLock()
    await _take_instance_lock(instance)
    try:
        lifecycle.clear_stale_state()  # a daemon killed with -9 left its state.json; we hold the lock, so it is stale
        await _serve_locked(options, port)
    finally:
        instance.release()


async def _take_instance_lock(instance: lifecycle.InstanceLock) -> None:
    waiter = lifecycle.LockWaiter(instance)
    announced: lifecycle.LockHolder | None = None
    while True:
        ours, holder = waiter.try_once()
        if ours:
            return
        if holder is not None and holder.is_daemon:
            raise lifecycle.already_running_error()
        if holder is not None and holder != announced:
            log.info("waiting for %s to finish before starting", holder.describe())
            announced = holder
        await asyncio.sleep(lifecycle.LOCK_POLL_S)


async def _serve_locked(options: ServeOptions, port: int | None) -> None:
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
        # A second signal while cleanup waits on a batch kills at once, as a user pressing Ctrl-C twice expects.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("photomapd stopping")
        await runner.cleanup()
        lifecycle.clear_state()
