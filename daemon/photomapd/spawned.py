"""Work done in a spawned child process, for the libraries a daemon that rests light must not hold: torch and the
model (model/worker.py), umap-learn and scikit-learn for a map layout (map/layout.py). When the child exits, the OS
takes back everything it held; a thread in the daemon could free the data, never the ~0.3-1 GB of libraries.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Self, TypeVar

T = TypeVar("T")

PARENT_CHECK_S = 1.0  # how soon an orphaned child notices and exits


def spawn_pool() -> ProcessPoolExecutor:
    """One child process, started by the first call. Spawned, not forked: a forked child would inherit the daemon's
    threads and locks mid-use, and its event loop. Like any spawned process it imports the caller's main module
    first: entry points guard their main code (console scripts do; `python -m photomapd` is skipped by
    multiprocessing itself)."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )


def stop_idle_tracker() -> None:
    """multiprocessing starts a resource tracker (one more Python process, ~12 MB) with the first spawned child and
    keeps it for the daemon's life. With no child left it tracks nothing: stop it, and the next spawn starts a new
    one. `_stop` is private (CPython's own tests use it); without it the tracker simply stays."""
    if multiprocessing.active_children():
        return
    from multiprocessing import resource_tracker

    stop = getattr(resource_tracker._resource_tracker, "_stop", None)
    if stop is not None:
        stop()


def _exit_with_parent(parent_pid: int) -> None:
    """A daemon killed with -9 cannot stop its children, and a child would wait on its queue for good, holding its
    memory: watch for the parent to go (the orphan is re-parented, so its parent id changes) and exit."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="photomap-parent-watch", daemon=True).start()


class ChildProcess:
    """Runs picklable calls in one spawned process, started by the first call (so work that turns out to need
    nothing heavy costs nothing); `close` ends it. Used by one thread at a time."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            self._pool = spawn_pool()
        return self._pool.submit(fn, *args).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def in_this_process(fn: Callable[..., T], *args: Any) -> T:
    """The same call shape as ChildProcess, run right here (the CLI, and a daemon set to keep everything loaded)."""
    return fn(*args)
