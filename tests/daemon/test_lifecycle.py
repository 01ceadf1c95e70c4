"""Single instance, stale-state recovery, graceful shutdown, `status` and `stop`, against real `serve` processes."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from photomapd import config, lifecycle

SERVE_START_S = 60.0  # a cold `serve` imports aiohttp + lancedb: ~3 s here, far more on a loaded CI box


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = SERVE_START_S) -> object:
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def photomapd(*args: str, timeout_s: float = SERVE_START_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "photomapd", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `photomapd serve` processes on a free port; every daemon left at the end is killed, test passed or not."""
    port = free_port()
    started: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> subprocess.Popen[str]:
        log = open(tmp_path / f"serve-{len(started)}.log", "w+")
        command = [sys.executable, "-m", "photomapd", "serve", "--port", str(port), "--no-watch", *extra]
        started.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    holder = lifecycle.lock_holder_pid()
    if holder and lifecycle.pid_alive(holder) and holder != os.getpid():
        os.kill(holder, signal.SIGKILL)


def running() -> lifecycle.DaemonStatus | None:
    return lifecycle.running_daemon()


def test_second_serve_names_the_first_and_exits_0(serve: Callable[..., subprocess.Popen[str]]) -> None:
    first, second = serve(), serve()  # started together: both race for the lock
    loser = wait_until(lambda: next((p for p in (first, second) if p.poll() is not None), None), "one serve to exit")
    assert isinstance(loser, subprocess.Popen)
    winner = second if loser is first else first
    assert loser.returncode == 0
    daemon = wait_until(running, "the winner to answer /status")
    assert isinstance(daemon, lifecycle.DaemonStatus)
    assert daemon.pid == winner.pid and winner.poll() is None

    third = photomapd("serve", "--port", str(free_port()))
    assert third.returncode == 0
    assert f"Already running at http://127.0.0.1:{daemon.port} (pid {winner.pid})" in third.stderr
    assert lifecycle.running_daemon() == daemon  # the third never touched the first's state


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_daemon_cleanly_and_frees_the_lock(
    serve: Callable[..., subprocess.Popen[str]], sig: signal.Signals
) -> None:
    proc = serve()
    wait_until(running, "serve to answer /status")
    proc.send_signal(sig)
    assert proc.wait(timeout=SERVE_START_S) == 0
    assert not config.state_path().exists()
    assert lifecycle.lock_holder_pid() is None  # released and emptied
    assert lifecycle.InstanceLock().acquire()  # nobody holds it any more


def test_sigterm_mid_index_commits_whole_batches_and_exits(
    serve: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    from photomapd.albums import AlbumCreate, add_album
    from photomapd.indexer import BATCH_SIZE
    from photomapd.store import Store

    from tests.daemon.images import make_album

    image_count = BATCH_SIZE * 4
    make_album(tmp_path / "images", image_count)
    add_album(config.ConfigStore(), AlbumCreate(key="big", display_name="Big", folders=[str(tmp_path / "images")]))
    proc = serve("--pretrained", "none")
    daemon = wait_until(running, "serve to answer /status")
    assert isinstance(daemon, lifecycle.DaemonStatus)
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    token = config.load_or_create_token()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request("POST", "/api/v1/albums/big/index", body=b'{"mode": "update"}', headers=headers)
    assert conn.getresponse().status == 202
    conn.close()

    def committed() -> int:
        table = Store(config.index_dir()).open("big")
        return table.count() if table is not None else 0

    wait_until(committed, "the first batch to be committed", timeout_s=180)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0
    rows = committed()
    assert 0 < rows < image_count, "the signal should land mid-run"
    assert rows % BATCH_SIZE == 0, "a stop commits or drops the batch in flight, never half of one"
    assert not config.state_path().exists() and lifecycle.InstanceLock().acquire()


def test_kill_9_leaves_stale_state_that_is_ignored_and_replaced(serve: Callable[..., subprocess.Popen[str]]) -> None:
    crashed = serve()
    wait_until(running, "serve to answer /status")
    crashed.kill()
    crashed.wait(timeout=10)
    stale = lifecycle.read_state()
    assert stale is not None and stale["pid"] == crashed.pid  # a kill -9 leaves state.json behind
    assert lifecycle.running_daemon() is None
    assert photomapd("status").returncode == 3

    replacement = serve()  # the kernel dropped the dead daemon's lock: no manual cleanup needed
    daemon = wait_until(running, "a new serve to answer /status")
    assert isinstance(daemon, lifecycle.DaemonStatus)
    assert daemon.pid == replacement.pid != crashed.pid


def test_status_and_stop_commands(serve: Callable[..., subprocess.Popen[str]]) -> None:
    proc = serve()
    daemon = wait_until(running, "serve to answer /status")
    assert isinstance(daemon, lifecycle.DaemonStatus)
    status = photomapd("status")
    assert status.returncode == 0
    assert f"running at http://127.0.0.1:{daemon.port} (pid {proc.pid})" in status.stdout

    stop = photomapd("stop")
    assert stop.returncode == 0 and f"pid {proc.pid}" in stop.stdout
    assert proc.wait(timeout=10) == 0  # stop waited for the exit: the process is already gone
    assert photomapd("status").returncode == 3
    again = photomapd("stop")
    assert again.returncode == 0 and "not running" in again.stdout


def test_recycled_pid_in_stale_state_is_never_signalled() -> None:
    # After a crash the OS may give the daemon's pid to another program: here, this very test process.
    config.write_json_atomic(config.state_path(), {"port": free_port(), "pid": os.getpid()})
    assert lifecycle.running_daemon() is None
    assert lifecycle.stop_daemon(timeout_s=1) is None  # and we are still alive to assert it


def test_instance_lock_is_exclusive_until_released() -> None:
    first, second = lifecycle.InstanceLock(), lifecycle.InstanceLock()
    assert first.acquire()
    assert lifecycle.lock_holder_pid() == os.getpid()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
