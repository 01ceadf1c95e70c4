"""Single instance, stale-state recovery, graceful shutdown, `status` and `stop`, against real `serve` processes."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

from photomapd import config
from photomapd.errors import DaemonStartFailed
from photomapd.native import lifecycle

from tests.daemon.processes import SERVE_START_S, Daemons, LockHolder, free_port, photomapd, running, wait_until


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    started = Daemons(tmp_path)
    yield started
    started.close()


@pytest.fixture
def serve(daemons: Daemons) -> Callable[..., subprocess.Popen[str]]:
    """Start `photomapd serve` processes on a free port; every daemon left at the end is killed, test passed or not."""
    return daemons.start


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
    from photomapd.index.run import BATCH_SIZE
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


def test_the_lock_file_names_a_daemon_by_pid_and_a_cli_by_its_command() -> None:
    daemon = lifecycle.InstanceLock()
    assert daemon.acquire()
    assert lifecycle.lock_path().read_text() == str(os.getpid())  # what every version of the daemon wrote
    assert lifecycle.read_lock_holder() == lifecycle.LockHolder(pid=os.getpid())
    daemon.release()

    cli = lifecycle.InstanceLock(command="photomapd album add 'my\nphotos' /srv/p")
    assert cli.acquire()
    holder = lifecycle.read_lock_holder()
    assert holder == lifecycle.LockHolder(pid=os.getpid(), command="photomapd album add 'my photos' /srv/p")
    assert not holder.is_daemon and lifecycle.lock_holder_pid() == os.getpid()
    assert holder.describe() == f"'photomapd album add 'my photos' /srv/p' (pid {os.getpid()})"
    cli.release()

    long = lifecycle.InstanceLock(command="photomapd album add k " + "/very/long/folder " * 50)
    assert long.acquire()
    named = lifecycle.read_lock_holder()
    assert named is not None and named.command is not None
    assert len(named.command) == lifecycle.MAX_LOCK_COMMAND_CHARS and named.command.endswith("…")
    long.release()


def test_serve_waits_for_a_cli_command_holding_the_lock_then_starts(daemons: Daemons) -> None:
    cli = LockHolder("photomapd index demo")
    try:
        proc = daemons.start()
        waiting = f"waiting for 'photomapd index demo' (pid {cli.pid}) to finish before starting"
        wait_until(lambda: waiting in daemons.log_of(proc), "serve to say what it waits for")
        assert proc.poll() is None and running() is None  # waiting, neither gone nor serving
        assert daemons.log_of(proc).count(waiting) == 1, "said once, not at every retry"
    finally:
        cli.release()
    daemon = wait_until(running, "serve to start once the CLI command ended")
    assert daemon.pid == proc.pid

    second = photomapd("serve", "--port", str(free_port()))  # a daemon holds it now: bow out as before
    assert second.returncode == 0 and f"(pid {proc.pid})" in second.stderr


def test_start_daemon_says_which_cli_command_the_daemon_waits_for(daemons: Daemons) -> None:
    cli = LockHolder("photomapd index big")
    try:
        with pytest.raises(DaemonStartFailed) as failed:
            lifecycle.start_daemon(timeout_s=3.0)
        assert f"it is waiting for 'photomapd index big' (pid {cli.pid}) to finish" in failed.value.message
        assert str(lifecycle.log_path()) in failed.value.message
    finally:
        cli.release()
    # The serve it spawned kept waiting, and starts by itself once the command has ended.
    daemon = wait_until(running, "the waiting serve to start")
    assert lifecycle.stop_daemon() == daemon
