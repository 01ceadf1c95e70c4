"""Run the API on 127.0.0.1: pick the port (config's, or a free one when taken) and publish it in state.json.

While it runs the daemon keeps what it published true: state.json, the token file and the lock file's name are put
back every lifecycle.REPAIR_INTERVAL_S when something damaged or deleted them, so `status` and the native host's
`hello` find it again within a second, with the token the extension already holds.
"""

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
        await _serve_locked(options, port, instance)
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


async def _serve_locked(options: ServeOptions, port: int | None, instance: lifecycle.InstanceLock) -> None:
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
    keeper = asyncio.create_task(_keep_published(instance, bound_port, options.token, stop))
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
        stop.set()  # also when we leave by an exception: the keeper must be done before state.json is cleared
        await keeper
        await runner.cleanup()
        lifecycle.clear_state()


async def _keep_published(instance: lifecycle.InstanceLock, port: int, token: str, stop: asyncio.Event) -> None:
    """Every REPAIR_INTERVAL_S until `stop`, put back state.json, the token file and the lock's name if they no
    longer say what this daemon is. The daemon's own token wins: the extension holds it, a new one would lock it out.
    A repair in flight when `stop` comes is finished, never cut off (a thread can't be cancelled anyway)."""
    failing: str | None = None  # say a failure once, not every second, and say when it is over
    while True:
        try:
            await asyncio.wait_for(stop.wait(), lifecycle.REPAIR_INTERVAL_S)
            return
        except TimeoutError:
            pass
        try:
            repaired = await asyncio.to_thread(lifecycle.repair_published_files, instance, port, token)
        except OSError as exc:  # a full disk or a read-only dir must not stop the daemon: try again next round
            if str(exc) != failing:
                log.error("cannot repair this daemon's state.json or token file: %s", exc)
                failing = str(exc)
            continue
        if failing is not None:
            log.info("this daemon's state.json and token file can be written again")
            failing = None
        for path in repaired:
            log.warning("%s was damaged or gone: wrote it again for this daemon", path)
