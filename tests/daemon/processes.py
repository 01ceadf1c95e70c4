"""Real `photomapd` processes for tests: `serve` daemons, CLI runs (to completion, in the background, or on a pty so
tqdm draws its bar), a helper process that holds the instance lock as a CLI command would, and API calls."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any, Callable

from photomapd import config
from photomapd.native import lifecycle

SERVE_START_S = 60.0  # a cold `serve` imports aiohttp + lancedb: ~3 s here, far more on a loaded CI box
CLI_S = 180.0  # a CLI run that loads the model and indexes a few images: seconds here, minutes on a loaded box
PHOTOMAPD = [sys.executable, "-m", "photomapd"]
TEST_MODEL = ("ViT-B-32", "none")  # the default architecture with random weights: real cost, no download

# Takes the instance lock as the CLI command argv[1] would, says so, and holds it until its stdin closes.
_LOCK_HOLDER = (
    "import sys\n"
    "from photomapd.native import lifecycle\n"
    "lock = lifecycle.InstanceLock(command=sys.argv[1])\n"
    "assert lock.acquire(), 'the lock is taken'\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


def use_test_model() -> None:
    """In config.json, so `serve` and every CLI run agree on the model without flags."""

    def change(cfg: config.Config) -> None:
        cfg.model, cfg.pretrained = TEST_MODEL

    config.ConfigStore().update(change)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = SERVE_START_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def photomapd(*args: str, timeout_s: float = CLI_S, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PHOTOMAPD, *args], capture_output=True, text=True, timeout=timeout_s, check=False, input=stdin
    )


def photomapd_in_background(log: Path, *args: str) -> subprocess.Popen[str]:
    """A CLI run whose stderr goes to `log` (read it while it runs); stdout is a pipe for the summary."""
    with open(log, "w") as err:
        return subprocess.Popen(
            [*PHOTOMAPD, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
            preexec_fn=_ctrl_c_as_on_a_terminal,
        )  # fmt: skip


def _ctrl_c_as_on_a_terminal() -> None:
    # A test run started in the background by a script (`cmd &`) ignores SIGINT, and a child inherits that; Python
    # then never turns Ctrl-C into KeyboardInterrupt. A user's terminal delivers it: give the CLI that default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def photomapd_on_a_tty(*args: str, timeout_s: float = CLI_S) -> tuple[int, str, str]:
    """(exit code, stdout, what it drew on its terminal): stderr is a pty, so tqdm draws its bar as for a user."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a fresh pty is 0 columns wide
    proc = subprocess.Popen([*PHOTOMAPD, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    drawn: list[bytes] = []

    def drain() -> None:  # concurrently, so a chatty bar never blocks on a full pty buffer
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child's side is closed
                return
            if not chunk:
                return
            drawn.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout, _ = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=10)
        os.close(master)
    return proc.returncode, stdout.decode("utf-8", "replace"), b"".join(drawn).decode("utf-8", "replace")


class LockHolder:
    """Another process holding the instance lock as the CLI command `command` would, until `release()`."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LOCK_HOLDER, command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "held"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


class Daemons:
    """The `photomapd serve` processes of one test, on one port, each logging to its own file; `close()` kills
    whatever is left, test passed or not, and any other process still holding the lock."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.started: list[subprocess.Popen[str]] = []
        self.logs: list[Path] = []

    def start(self, *extra: str) -> subprocess.Popen[str]:
        self.logs.append(self.tmp_path / f"serve-{len(self.started)}.log")
        command = [*PHOTOMAPD, "serve", "--port", str(self.port), "--no-watch", *extra]
        with open(self.logs[-1], "w") as log:
            self.started.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True))
        return self.started[-1]

    def log_of(self, proc: subprocess.Popen[str]) -> str:
        return self.logs[self.started.index(proc)].read_text()

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        holder = lifecycle.lock_holder_pid()
        if holder and lifecycle.pid_alive(holder) and holder != os.getpid():
            os.kill(holder, signal.SIGKILL)


def running() -> lifecycle.DaemonStatus | None:
    return lifecycle.running_daemon()


def api(port: int, method: str, path: str, body: object | None = None, timeout_s: float = 60.0) -> tuple[int, Any]:
    """One call to the daemon's API as the panel makes it: (status, decoded JSON or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    headers = {"Authorization": f"Bearer {config.load_or_create_token()}"}
    payload = None
    if body is not None:
        payload, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    try:
        conn.request(method, "/api/v1" + path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    return response.status, json.loads(raw) if raw else None


def albums_by_key(port: int) -> dict[str, dict[str, Any]]:
    status, albums = api(port, "GET", "/albums")
    assert status == 200, albums
    return {album["key"]: album for album in albums}
