"""Single instance, stale-state recovery, graceful shutdown, `status` and `stop`, against real `serve` processes."""

from __future__ import annotations

import http.client
import os
import signal
import stat
import subprocess
import time
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


# --- damaged files while a daemon runs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_text('{"port": 87', encoding="utf-8"), id="cut-short"),
        pytest.param(lambda path: path.write_bytes(b"\x00\xff\xfe garbage"), id="garbage"),
        pytest.param(lambda path: path.write_text('{"port": 1, "pid": 1}', encoding="utf-8"), id="someone-else"),
        pytest.param(lambda path: path.unlink(), id="deleted"),
    ],
)
def test_damaged_state_json_is_rewritten_and_status_still_finds_the_daemon(
    daemons: Daemons, damage: Callable[[Path], object]
) -> None:
    proc = daemons.start()
    daemon = wait_until(running, "serve to answer /status")
    assert isinstance(daemon, lifecycle.DaemonStatus)
    damage(config.state_path())

    status = photomapd("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"running at http://127.0.0.1:{daemon.port} (pid {proc.pid})" in status.stdout
    assert lifecycle.read_state() == {"port": daemon.port, "pid": proc.pid}  # the daemon wrote it again
    wait_until(lambda: f"{config.state_path()} was damaged or gone" in daemons.log_of(proc), "the repair to be logged")

    stop = photomapd("stop")  # and `stop` finds it too: it only signals a daemon that answered with the token
    assert stop.returncode == 0 and f"pid {proc.pid}" in stop.stdout
    assert proc.wait(timeout=SERVE_START_S) == 0
    assert not config.state_path().exists(), "the repair must not write state.json back while the daemon leaves"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_text(""), id="empty"),
        pytest.param(lambda path: path.write_bytes(b"\x00\x00\x00\x00\xff" * 10), id="garbage"),
        pytest.param(lambda path: path.write_text("short\n"), id="truncated"),
        pytest.param(lambda path: path.unlink(), id="deleted"),
    ],
)
def test_damaged_token_file_gets_the_daemons_own_token_back(daemons: Daemons, damage: Callable[[Path], object]) -> None:
    proc = daemons.start()
    daemon = wait_until(running, "serve to answer /status")
    assert isinstance(daemon, lifecycle.DaemonStatus)
    token = config.read_token()
    assert token is not None and daemon.token == token
    damage(config.token_path())

    found = lifecycle.running_daemon()  # waits the few seconds the daemon takes to put its token back
    assert found == daemon and found is not None and found.token == token  # the extension's token still works
    assert config.read_token() == token
    assert stat.S_IMODE(config.token_path().stat().st_mode) == 0o600
    status = photomapd("status")
    assert status.returncode == 0 and f"(pid {proc.pid})" in status.stdout
    wait_until(lambda: f"{config.token_path()} was damaged or gone" in daemons.log_of(proc), "the repair to be logged")


def test_a_garbled_lock_file_names_the_daemon_again(daemons: Daemons) -> None:
    proc = daemons.start()
    wait_until(running, "serve to answer /status")
    lifecycle.lock_path().write_text("\x00garbage")  # the same inode the daemon holds locked
    assert wait_until(lifecycle.read_lock_holder, "the daemon to name itself again") == lifecycle.LockHolder(proc.pid)
    second = photomapd("serve", "--port", str(free_port()))  # so a second serve still names the first
    assert second.returncode == 0 and f"(pid {proc.pid})" in second.stderr


def test_serve_with_an_empty_token_file_makes_a_new_token_never_an_empty_one(daemons: Daemons) -> None:
    config.token_path().parent.mkdir(parents=True, exist_ok=True)
    config.token_path().write_text("\n")
    daemons.start()
    daemon = wait_until(running, "serve to answer /status")
    assert isinstance(daemon, lifecycle.DaemonStatus)
    assert len(daemon.token) >= 40 and config.read_token() == daemon.token
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        conn.request("GET", "/api/v1/status", headers={"Authorization": "Bearer "})  # what an empty token would allow
        assert conn.getresponse().status == 401
    finally:
        conn.close()


def test_start_says_what_is_wrong_when_the_daemon_does_not_repair_its_state(daemons: Daemons) -> None:
    # This test process plays a daemon that holds the lock but never repairs state.json (a version before repairs).
    old = lifecycle.InstanceLock()
    assert old.acquire()
    try:
        config.state_path().parent.mkdir(parents=True, exist_ok=True)
        config.state_path().write_text("{garbage")
        began = time.monotonic()
        with pytest.raises(DaemonStartFailed) as failed:
            lifecycle.start_daemon()
        took = time.monotonic() - began
    finally:
        old.release()  # start_daemon gave up only once the serve it spawned had bowed out: nobody takes the lock now
    message = failed.value.message
    assert f"photomapd (pid {os.getpid()}) is running, but {config.state_path()} is damaged" in message
    assert f"did not repair that within {lifecycle.REPAIR_WAIT_S:g} s" in message and f"kill {os.getpid()}" in message
    assert took < lifecycle.START_TIMEOUT_S, "it must say so at once, not wait out the whole start timeout"
    assert config.read_token() is not None  # the serve that bowed out made the token; nobody left it empty
