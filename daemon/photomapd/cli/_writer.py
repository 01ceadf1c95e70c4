"""One writer per data dir (DESIGN §10): a CLI command that changes something goes through the running daemon, or,
with none running, holds the instance lock for its whole duration so a daemon started meanwhile waits for it.

The order closes the race with a daemon that starts while the command looks: ask for a daemon → none: take the lock
(waiting while another CLI command holds it; a daemon holding it means one is starting, so use it once it answers)
→ with the lock held no daemon can start, and a last look confirms none answers → work locally.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from photomapd.cli._remote import DaemonClient, connect
from photomapd.errors import PhotoMapError
from photomapd.native import lifecycle

BUSY_EXIT = 75  # EX_TEMPFAIL: "try again later", so a script can tell it from a real failure


class InstanceBusy(PhotoMapError):
    """`--no-wait`, and another CLI command holds the instance lock."""

    status = 409
    code = "instance_busy"
    exit_code = BUSY_EXIT

    def __init__(self, holder: lifecycle.LockHolder) -> None:
        super().__init__(f"{holder.describe()} is changing PhotoMap's data; try again when it has finished")


class DaemonNotAnswering(PhotoMapError):
    """A daemon holds the lock but never answered /status: it hangs while starting."""

    status = 503
    code = "daemon_not_answering"

    def __init__(self, holder: lifecycle.LockHolder) -> None:
        super().__init__(
            f"{holder.describe()} holds the PhotoMap lock but does not answer; see {lifecycle.log_path()}"
        )


def add_wait_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once (exit 75) instead of waiting while another photomapd command changes the data",
    )


@contextmanager
def single_writer(args: argparse.Namespace) -> Iterator[DaemonClient | None]:
    """The running daemon's client; or, when none runs, None while this process holds the instance lock."""
    daemon = connect()
    if daemon is not None:
        yield daemon
        return
    lock = lifecycle.InstanceLock(command=getattr(args, "command_line", None) or "photomapd")
    daemon = _lock_or_daemon(lock, wait=not getattr(args, "no_wait", False))
    if daemon is not None:
        yield daemon
        return
    try:
        daemon = connect()  # we hold the lock, so no daemon can be up; this look makes that an observed fact
        if daemon is not None:
            lock.release()
            yield daemon
            return
        yield None
    finally:
        lock.release()


def _lock_or_daemon(lock: lifecycle.InstanceLock, *, wait: bool) -> DaemonClient | None:
    """None once `lock` is ours; a daemon's client when a daemon started meanwhile and took the lock first."""
    waiter = lifecycle.LockWaiter(lock)
    announced: lifecycle.LockHolder | None = None
    while True:
        ours, holder = waiter.try_once()
        if ours:
            return None
        if holder is not None and holder.is_daemon:
            daemon = _wait_for_daemon(holder)
            if daemon is not None:
                return daemon
            continue  # it died while starting: the lock is free again (or someone else's)
        if holder is not None and holder != announced:
            if not wait:
                raise InstanceBusy(holder)
            print(f"waiting for {holder.describe()} to finish…", file=sys.stderr, flush=True)
            announced = holder
        time.sleep(lifecycle.LOCK_POLL_S)


def _wait_for_daemon(holder: lifecycle.LockHolder) -> DaemonClient | None:
    """A daemon has the lock and is starting: its client once it answers; None if it exits first."""
    deadline = time.monotonic() + lifecycle.START_TIMEOUT_S
    while True:
        daemon = connect()
        if daemon is not None:
            return daemon
        if holder.pid is not None and not lifecycle.pid_alive(holder.pid):
            return None
        if time.monotonic() >= deadline:
            raise DaemonNotAnswering(holder)
        time.sleep(lifecycle.POLL_INTERVAL_S)
