"""`photomapd native-host` as the browser drives it: a real subprocess, real frames on its stdin and stdout, and a
real daemon that `hello` starts on a free port in private HOME/XDG/PHOTOMAP dirs."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from photomapd import config
from photomapd.native import lifecycle
from photomapd.native import host as native_host
from photomapd.errors import DaemonStartFailed

HOST_EXIT_S = 90.0  # hello may start a daemon: a cold `serve` import takes seconds on a loaded box


def frame(message: object) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode("utf-8")
    return struct.pack("=I", len(body)) + body


def parse_frames(stdout: bytes) -> list[dict[str, Any]]:
    """Every byte of stdout must belong to a frame: anything else would break the browser's side of the pipe."""
    replies, offset = [], 0
    while offset < len(stdout):
        (length,) = struct.unpack_from("=I", stdout, offset)
        assert length <= native_host.MAX_TO_BROWSER_BYTES
        body = stdout[offset + 4 : offset + 4 + length]
        assert len(body) == length, f"stdout ends inside a frame: {stdout[offset:offset + 80]!r}"
        replies.append(json.loads(body.decode("utf-8")))
        offset += 4 + length
    return replies


def talk(stdin: bytes) -> tuple[list[dict[str, Any]], int]:
    """One browser session: write `stdin`, close it, collect every reply and the host's exit code."""
    host = subprocess.run(
        [sys.executable, "-m", "photomapd", "native-host", "--", "chrome-extension://test/"],
        input=stdin,
        capture_output=True,
        timeout=HOST_EXIT_S,
        check=False,
    )
    assert b"Traceback" not in host.stderr, host.stderr.decode(errors="replace")
    return parse_frames(host.stdout), host.returncode


def get_status(port: int, token: str | None) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def browser_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private HOME and XDG dirs, a free port in config.json, and no daemon left running afterwards."""
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        config.save_config(config.Config(port=sock.getsockname()[1]))
    yield
    pids = {lifecycle.lock_holder_pid(), (lifecycle.read_state() or {}).get("pid")} | daemons_with_home(tmp_path)
    for pid in pids:
        if pid and pid != os.getpid() and lifecycle.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def daemons_with_home(tmp_path: Path) -> set[int]:
    """Every process started with this test's HOME: a test that damaged the lock or state.json may leave a daemon
    that neither names, and a detached daemon outlives the test run."""
    marker = f"HOME={tmp_path / 'home'}".encode()
    found = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.add(int(environ.parent.name))
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found


def test_hello_starts_a_detached_daemon_that_answers_with_the_token() -> None:
    assert lifecycle.running_daemon() is None
    replies, code = talk(frame({"type": "hello", "id": 7}))
    assert code == 0
    [hello] = replies
    assert hello["type"] == "hello" and hello["id"] == 7
    assert hello["token"] == config.load_or_create_token()
    assert hello["port"] == config.load_config().port
    assert hello["version"]

    # The host has exited; the daemon it started lives on and is the one state.json names.
    status, body = get_status(int(hello["port"]), str(hello["token"]))
    assert status == 200
    assert body["pid"] == lifecycle.read_state()["pid"] and body["version"] == hello["version"]  # type: ignore[index]
    assert get_status(int(hello["port"]), None)[0] == 401

    again, _ = talk(frame({"type": "hello"}) + frame({"type": "status"}))
    assert again[0]["port"] == hello["port"] and again[0]["token"] == hello["token"]
    assert again[1] == {**again[1], "type": "status", "running": True, "pid": body["pid"]}


def test_status_reports_not_running_and_starts_nothing() -> None:
    replies, code = talk(frame({"type": "status", "id": "s1"}))
    assert code == 0
    assert replies == [{"type": "status", "running": False, "port": None, "pid": None, "version": None, "id": "s1"}]
    assert lifecycle.read_state() is None


def test_start_then_hello_share_one_daemon() -> None:
    replies, _ = talk(frame({"type": "start"}) + frame({"type": "hello"}))
    start, hello = replies
    assert start["type"] == "start" and start["running"] is True
    assert start["port"] == hello["port"]
    assert start["pid"] == lifecycle.running_daemon().pid  # type: ignore[union-attr]


def test_hello_after_kill_9_starts_a_new_daemon() -> None:
    [first], _ = talk(frame({"type": "hello"}))
    assert first["type"] == "hello", first
    old_pid = lifecycle.read_state()["pid"]  # type: ignore[index]
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while lifecycle.pid_alive(old_pid):
        assert time.monotonic() < deadline, "the killed daemon is still alive"
        time.sleep(0.05)

    [second], code = talk(frame({"type": "hello"}))
    assert code == 0 and second["type"] == "hello"
    status, body = get_status(int(second["port"]), str(second["token"]))
    assert status == 200 and body["pid"] != old_pid


def test_large_frame_is_read_whole_and_the_stream_stays_in_step() -> None:
    big = {"type": "status", "id": "x" * (5 * 1024**2)}  # 5 MB: far over one pipe buffer, under the 64 MB cap
    replies, code = talk(frame(big) + frame({"type": "status", "id": "after"}))
    assert code == 0
    assert [reply["type"] for reply in replies] == ["error", "status"]
    assert replies[0]["code"] == "bad_message" and "at most" in str(replies[0]["message"])
    assert replies[1]["id"] == "after"


def test_bad_messages_get_error_replies_and_the_session_goes_on() -> None:
    bad = [
        frame(b"not json"),
        frame(b"\xff\xfe\x00"),  # not UTF-8
        frame([1, 2]),
        frame({"id": 3}),  # no type
        frame({"type": 5}),
        frame({"type": "status", "extra": True}),
        frame({"type": "launch-missiles", "id": 9}),
        frame(b""),
    ]
    replies, code = talk(b"".join(bad) + frame({"type": "status", "id": "last"}))
    assert code == 0
    codes = [reply.get("code") for reply in replies[:-1]]
    assert codes == ["bad_message"] * 6 + ["unknown_type", "bad_message"]
    assert replies[6]["message"] == "Unknown native message type 'launch-missiles': expected hello, status or start"
    assert replies[-1]["type"] == "status" and replies[-1]["id"] == "last"


@pytest.mark.parametrize(
    "stdin",
    [
        pytest.param(b"\x05\x00", id="cut-inside-length"),
        pytest.param(struct.pack("=I", 100) + b'{"type":', id="cut-inside-body"),
        pytest.param(struct.pack("=I", 64 * 1024**2 + 1), id="over-64MB"),
        pytest.param(struct.pack("=I", 0xFFFFFFFF) + b"x" * 10, id="absurd-length"),
    ],
)
def test_broken_framing_gets_one_error_and_a_clean_exit(stdin: bytes) -> None:
    replies, code = talk(stdin)
    assert code == 1
    assert [reply["code"] for reply in replies] == ["bad_frame"]


def test_closed_stdin_is_a_clean_exit_with_no_output() -> None:
    assert talk(b"") == ([], 0)


def test_reply_over_the_browser_limit_becomes_an_error_reply() -> None:
    encoded = native_host.encode_frame(native_host.ErrorReply(code="x", message="y" * (2 * 1024**2)))
    [reply] = parse_frames(encoded)
    assert reply["code"] == "reply_too_large"


def test_frames_carry_the_byte_length_in_native_order() -> None:
    out = io.BytesIO()
    native_host.write_frame(out, native_host.ErrorReply(code="c", message="é"))  # 2 bytes, 1 character
    body = out.getvalue()[4:]
    assert struct.unpack("=I", out.getvalue()[:4]) == (len(body),)
    assert json.loads(body)["message"] == "é"


@pytest.mark.parametrize("broken", ['{"port": "not a port"}', '{"albums": [1, 2'])
def test_hello_with_an_invalid_config_says_why_at_once_and_how_to_start(broken: str) -> None:
    config.config_path().write_text(broken)  # serve would refuse it and exit 1, after seconds of imports
    [reply], code = talk(frame({"type": "hello", "id": "h"}))
    assert code == 0
    assert reply["type"] == "error" and reply["code"] == "daemon_start_failed" and reply["id"] == "h"
    message = str(reply["message"])
    assert message.startswith(f"The PhotoMap daemon did not start: {config.config_path()} is invalid: "), message
    assert ("port" in message) if "port" in broken else ("Invalid JSON" in message)
    assert not lifecycle.log_path().exists(), "no serve was started just to fail"
    # the command of this install (the test's interpreter), not a bare `photomapd serve` that may not be on PATH
    assert str(Path(sys.executable).absolute()) in str(reply["command"])
    assert str(reply["command"]).endswith("-m photomapd serve")


def test_a_serve_that_exits_early_is_reported_with_its_own_error_line() -> None:
    """The cause a failed serve wrote to daemon.log, read back by the host's start: here a config.json broken after
    the host's own check (a real serve, started the way the host starts one)."""
    config.config_path().write_text('{"port": "not a port"}')
    offset = lifecycle._log_size()
    child = lifecycle._spawn_serve()
    assert child.wait(timeout=HOST_EXIT_S) == 1
    cause = lifecycle._exit_cause(offset)
    assert cause is not None and cause.startswith(f"{config.config_path()} is invalid: port: "), cause


def test_start_gives_up_at_its_deadline_when_a_daemon_holds_the_lock_but_never_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spawned: list[subprocess.Popen[bytes]] = []
    spawn = lifecycle._spawn_serve

    def spawn_and_keep() -> subprocess.Popen[bytes]:
        spawned.append(spawn())
        return spawned[-1]

    monkeypatch.setattr(lifecycle, "_spawn_serve", spawn_and_keep)  # observe only: the real spawn still runs
    hung = lifecycle.InstanceLock()  # this test process plays a daemon that hangs before publishing its port
    assert hung.acquire()
    try:
        with pytest.raises(DaemonStartFailed, match=r"no answer on /status within 1 s"):
            lifecycle.start_daemon(timeout_s=1.0)
        # The serve it started finds the lock taken and bows out; hold the lock until it has, or it would win it.
        assert spawned and all(child.wait(timeout=HOST_EXIT_S) == 0 for child in spawned)
    finally:
        hung.release()


def _timed_hello() -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    [reply], code = talk(frame({"type": "hello", "id": "again"}))
    assert code == 0
    return reply, time.monotonic() - began


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda: config.state_path().write_text("{\x00 not json"), id="state-garbage"),
        pytest.param(lambda: config.state_path().unlink(), id="state-deleted"),
        pytest.param(lambda: config.token_path().write_text(""), id="token-empty"),
        pytest.param(lambda: config.token_path().write_bytes(b"\xff" * 43), id="token-garbage"),
        pytest.param(
            lambda: (config.state_path().write_text("[]"), config.token_path().write_text(" ")), id="both-damaged"
        ),
    ],
)
def test_hello_finds_the_running_daemon_when_its_files_are_damaged(damage: Any) -> None:
    [first], _ = talk(frame({"type": "hello"}))
    assert first["type"] == "hello", first
    pid = lifecycle.read_state()["pid"]  # type: ignore[index]
    damage()

    hello, took = _timed_hello()
    assert hello["type"] == "hello", hello
    assert (hello["port"], hello["token"], hello["id"]) == (first["port"], first["token"], "again")  # same daemon
    status, body = get_status(int(hello["port"]), str(hello["token"]))
    assert status == 200 and body["pid"] == pid  # the token works: the extension's stored token still works too
    assert took < lifecycle.START_TIMEOUT_S, "found after the daemon's repair, not after the whole start timeout"
    assert lifecycle.read_state() == {"port": first["port"], "pid": pid} and config.read_token() == first["token"]


def test_hello_says_what_is_wrong_when_the_daemon_cannot_be_reached() -> None:
    # This test process plays a running daemon that never repairs its state.json (a version before repairs).
    old = lifecycle.InstanceLock()
    assert old.acquire()
    try:
        config.state_path().parent.mkdir(parents=True, exist_ok=True)
        config.state_path().write_text("{garbage")
        reply, took = _timed_hello()
    finally:
        old.release()  # the host answered only once the serve it spawned had bowed out: nobody takes the lock now
    assert reply["type"] == "error" and reply["code"] == "daemon_start_failed" and reply["id"] == "again"
    message = str(reply["message"])
    assert f"photomapd (pid {os.getpid()}) is running, but {config.state_path()} is damaged" in message
    assert f"did not repair that within {lifecycle.REPAIR_WAIT_S:g} s" in message
    assert took < lifecycle.START_TIMEOUT_S, "a clear error within seconds, never the whole start timeout"
