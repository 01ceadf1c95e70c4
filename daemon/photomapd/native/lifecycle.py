"""One daemon per data dir: state.json, is-it-running checks, detached start, and stop (the lock is in lock.py).

To find a daemon, read state.json and then ask that daemon's `/status` with the token. That answer is the real test
because it also catches a pid the OS has given to some other program since.

Damaged files heal themselves: a running daemon is the only writer of state.json, of the lock file's name and (while
it runs) of the token file, and it puts back what they should say every REPAIR_INTERVAL_S (api/server.py). A client
that finds them damaged while the lock names a live daemon waits a few seconds for that, then says exactly what is
wrong; it never writes a token of its own that the daemon would refuse.

This module is imported by the native host, so it stays light: no aiohttp, no lancedb.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from photomapd import config
from photomapd.errors import AlreadyRunning, ConfigInvalid, DaemonStartFailed, DaemonStopFailed

# The lock's names stay reachable as lifecycle.X, as callers have always used them.
from photomapd.native.lock import (  # noqa: F401
    LOCK_POLL_S,
    MAX_LOCK_COMMAND_CHARS,
    UNNAMED_HOLDER_GRACE_S,
    InstanceLock,
    LockHolder,
    LockWaiter,
    lock_holder_pid,
    lock_path,
    pid_alive,
    read_lock_holder,
)

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # a cold start imports aiohttp + lancedb (~3 s on a 2-core box); a slow disk needs more
STOP_TIMEOUT_S = 30.0  # shutdown lets an in-flight index batch commit first
STATUS_TIMEOUT_S = 2.0  # loopback /status answers in milliseconds; longer means a hung or foreign listener
POLL_INTERVAL_S = 0.1
# A running daemon re-checks state.json, the token file and the lock file's name this often: a stat and three tiny
# reads per second, invisible at rest, and a client that finds them damaged waits REPAIR_WAIT_S for the repair.
REPAIR_INTERVAL_S = 1.0
REPAIR_WAIT_S = 3 * REPAIR_INTERVAL_S  # room for a busy thread pool; the browser's hello must answer within seconds
LOG_KEEP_BYTES = 5 * 1024**2  # past this daemon.log becomes daemon.log.1: enough to debug a start, never a hoard
MAX_CAUSE_CHARS = 500  # the cause line quoted from daemon.log: a sentence for the panel, not a traceback
CLI_ERROR_PREFIX = "photomapd: "  # how the CLI prints a user error (cli/__init__.py): the line that names the cause
ENV_OVERRIDES = ("PHOTOMAP_CONFIG_DIR", "PHOTOMAP_DATA_DIR", "PHOTOMAP_CACHE_DIR")


def serve_command() -> list[str]:
    """`photomapd serve` of this install: its own interpreter, so neither PATH nor a README install's missing console
    script matters. absolute() but not resolve(): a venv's python is a symlink, and resolving it loses the venv."""
    return [str(Path(sys.executable).absolute()), "-m", "photomapd", "serve"]


def serve_command_line() -> str:
    """The command a user can paste to start this install's daemon by hand, with the PHOTOMAP_*_DIR it runs with."""
    command = serve_command()
    if sys.platform == "win32":
        return subprocess.list2cmdline(command)
    overrides = [f"{name}={shlex.quote(os.environ[name])}" for name in ENV_OVERRIDES if os.environ.get(name)]
    return " ".join([*overrides, shlex.join(command)])


def log_path() -> Path:
    return config.data_dir() / "daemon.log"


@dataclass(frozen=True)
class DaemonStatus:
    """A daemon that answered `/status` with our token."""

    port: int
    pid: int
    version: str
    token: str = field(repr=False)  # the token it accepted: what the native host hands the extension

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# --- state.json -----------------------------------------------------------------------------------------------------


def write_state(port: int) -> None:
    config.write_json_atomic(config.state_path(), {"port": port, "pid": os.getpid()})


def read_state() -> dict[str, int] | None:
    try:
        state = json.loads(config.state_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def clear_state() -> None:
    """Remove state.json if it is this process's: a newer daemon's file must survive an older one's exit."""
    state = read_state()
    if state and state.get("pid") == os.getpid():
        config.state_path().unlink(missing_ok=True)


def clear_stale_state() -> None:
    """Only the lock holder calls this: whatever state.json says then is a dead daemon's."""
    config.state_path().unlink(missing_ok=True)


def repair_published_files(lock: InstanceLock, port: int, token: str) -> list[str]:
    """The running daemon's side of recovery: rewrite state.json, the token file and the lock file's name when they no
    longer say what this daemon is (damaged, emptied, deleted); returns what it rewrote. Blocking file I/O."""
    repaired: list[str] = []
    if read_state() != {"port": port, "pid": os.getpid()}:
        write_state(port)
        repaired.append(str(config.state_path()))
    if config.read_token() != token:  # the daemon's token is the one that works: put it back, never take another
        config.write_token(token)
        repaired.append(str(config.token_path()))
    if lock.rewrite_name():
        repaired.append(str(lock.path))
    return repaired


def already_running_error() -> AlreadyRunning:
    """What a second `serve` tells the user: the winner's pid, and its port once it has published one."""
    pid = lock_holder_pid()
    state = read_state()
    port = state.get("port") if state and state.get("pid") == pid else None
    return AlreadyRunning(pid, port)


# --- is it running? -------------------------------------------------------------------------------------------------


def _get_status(port: int, token: str) -> tuple[int | None, dict[str, object] | None]:
    """(HTTP status, JSON object or None) of GET /api/v1/status on loopback; (None, None) when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=STATUS_TIMEOUT_S)  # no proxy, unlike urllib
    try:
        conn.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        return None, None
    finally:
        conn.close()
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    return response.status, answer if isinstance(answer, dict) else None


def fetch_status(port: int, token: str) -> dict[str, object] | None:
    """GET /api/v1/status on loopback; None for anything but a 200 JSON object (refused, hung, 401, not us)."""
    status, answer = _get_status(port, token)
    return answer if status == 200 else None


@dataclass(frozen=True)
class Unreachable:
    """A live daemon holds the lock, but state.json and the token file don't lead to it (yet)."""

    pid: int
    problems: tuple[str, ...]  # each a clause naming a file or what the daemon did: "/…/token is empty"
    # damaged: files it rewrites within REPAIR_INTERVAL_S; starting: no state.json yet (a daemon writes it once it
    # listens); silent: the files are right but /status gives no answer (hung, or the pid is another program's now)
    kind: Literal["damaged", "starting", "silent"]

    @property
    def reason(self) -> str:
        return f"photomapd (pid {self.pid}) is running, but {' and '.join(self.problems)}"


def _state_problem(daemon_pid: int) -> str | None:
    path = config.state_path()
    if not path.exists():
        return f"{path} is missing"
    state = read_state()
    if state is None or not isinstance(state.get("port"), int) or not isinstance(state.get("pid"), int):
        return f"{path} is damaged"
    if state["pid"] != daemon_pid:
        return f"{path} names pid {state['pid']}, not the daemon's"
    return None


def _probe() -> DaemonStatus | Unreachable | None:
    """One look, never waiting: the daemon state.json names if it answers /status with our token and its own pid;
    else, when the lock names a live daemon, what keeps us from it; else None (no daemon runs)."""
    state, token = read_state() or {}, config.read_token()
    port, pid = state.get("port"), state.get("pid")
    status: int | None = None
    if isinstance(port, int) and isinstance(pid, int) and token is not None and pid_alive(pid):
        status, answer = _get_status(port, token)
        if status == 200 and answer is not None and answer.get("pid") == pid:
            return DaemonStatus(port=port, pid=pid, version=str(answer.get("version", "")), token=token)
    holder = read_lock_holder()
    if holder is None or holder.pid is None or not holder.is_daemon or not pid_alive(holder.pid):
        return None
    state_problem, token_problem = _state_problem(holder.pid), config.token_file_problem()
    problems = tuple(problem for problem in (state_problem, token_problem) if problem)
    if not problems and status == 401:
        return Unreachable(holder.pid, (f"it refuses the token in {config.token_path()}",), "damaged")
    if not problems:
        return Unreachable(holder.pid, (f"it gives no answer on /status at port {port}",), "silent")
    starting = token_problem is None and not config.state_path().exists()
    return Unreachable(holder.pid, problems, "starting" if starting else "damaged")


def running_daemon(wait_s: float = REPAIR_WAIT_S) -> DaemonStatus | None:
    """The daemon state.json names, if it is alive and answers /status with our token and its own pid.

    When the lock names a live daemon that state.json or the token file doesn't lead to, wait up to `wait_s` for it
    to repair them (or to finish starting); one whose files are right but gives no answer is not waited for.
    """
    deadline = time.monotonic() + wait_s
    while True:
        found = _probe()
        if isinstance(found, DaemonStatus):
            return found
        if found is None or found.kind == "silent" or time.monotonic() >= deadline:
            return None
        time.sleep(POLL_INTERVAL_S)


def unreachable_daemon() -> Unreachable | None:
    """Why a live daemon can't be reached, for a client to say after running_daemon() gave None."""
    found = _probe()
    return found if isinstance(found, Unreachable) else None


# --- start and stop -------------------------------------------------------------------------------------------------


def start_daemon(timeout_s: float = START_TIMEOUT_S) -> DaemonStatus:
    """Return the running daemon, starting a detached `photomapd serve` first when none answers.

    A live daemon that damaged files keep us from gets REPAIR_WAIT_S to put them right; after that the error says
    what is wrong, rather than waiting out `timeout_s` for an answer that can't come.
    """
    started = time.monotonic()
    found = _probe()
    if isinstance(found, DaemonStatus):
        return found
    if found is None:
        # A config.json serve would refuse: say so now, not after serve's imports (seconds) and its exit.
        try:
            config.load_config()
        except ConfigInvalid as err:
            raise DaemonStartFailed(err.message, None) from err
        # No daemon runs to put its own token back: create it (or replace a damaged one) before the daemon reads it,
        # so both sides read one file. With a live daemon the token file is its to repair.
        config.load_or_create_token()
    deadline = started + timeout_s
    log_start = _log_size()
    child = _spawn_serve()  # it becomes the daemon, or bows out (exit 0) to the one that really holds the lock
    while True:
        found = _probe()
        if isinstance(found, DaemonStatus):
            return found
        code = child.poll()
        if code not in (None, 0):
            cause = _exit_cause(log_start)
            reason = f"`photomapd serve` exited with code {code}" + (f": {cause}" if cause else "")
            raise DaemonStartFailed(reason, str(log_path()))
        if code == 0 and not _daemon_holds_lock():
            # It exited 0 because another daemon held the lock, and that one has quit since (a stop racing a
            # start), or a CLI command has taken the lock after it: try again, so a serve waits for that CLI rather
            # than us waiting for a daemon that is gone.
            child = _spawn_serve()
        now = time.monotonic()
        if code == 0 and isinstance(found, Unreachable) and found.kind == "damaged" and now >= started + REPAIR_WAIT_S:
            # Our serve bowed out, so that daemon really holds the lock, and it has had its chance to repair.
            advice = f"stop it (`kill {found.pid}`) and start it again"
            reason = f"{found.reason}, and it did not repair that within {REPAIR_WAIT_S:g} s; {advice}"
            raise DaemonStartFailed(reason, str(log_path()))
        if now >= deadline:
            holder = read_lock_holder()
            if code is None and holder is not None and not holder.is_daemon and _alive(holder):
                # Our serve waits for that command (an `index` can take hours) and starts by itself once it ends.
                reason = f"it is waiting for {holder.describe()} to finish, and starts once that command ends"
                raise DaemonStartFailed(reason, str(log_path()))
            silence = f"no answer on /status within {timeout_s:g} s"
            reason = f"{found.reason}; {silence}" if isinstance(found, Unreachable) else silence
            raise DaemonStartFailed(reason, str(log_path()))
        time.sleep(POLL_INTERVAL_S)


def _alive(holder: LockHolder) -> bool:
    return holder.pid is not None and pid_alive(holder.pid)


def _daemon_holds_lock() -> bool:
    holder = read_lock_holder()
    return holder is not None and holder.is_daemon and _alive(holder)


def _log_size() -> int:
    try:
        return log_path().stat().st_size
    except OSError:
        return 0


def _exit_cause(offset: int) -> str | None:
    """Why a serve we started exited: its own error line in daemon.log (what it wrote past `offset`), else the last
    line it wrote (a traceback's last line names the exception)."""
    try:
        with open(log_path(), "rb") as log_file:
            if log_file.seek(0, os.SEEK_END) < offset:
                offset = 0  # rotated meanwhile: the child wrote into a new file
            log_file.seek(offset)
            written = log_file.read(LOG_KEEP_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in written.splitlines() if line.strip()]
    errors = [line[len(CLI_ERROR_PREFIX) :] for line in lines if line.startswith(CLI_ERROR_PREFIX)]
    cause = errors[-1] if errors else lines[-1] if lines else None
    if cause is None:
        return None
    return cause if len(cause) <= MAX_CAUSE_CHARS else cause[: MAX_CAUSE_CHARS - 1] + "…"


def _spawn_serve() -> subprocess.Popen[bytes]:
    """`photomapd serve` in its own session, so it outlives the native host and the browser's process group."""
    data = config.data_dir()
    data.mkdir(parents=True, exist_ok=True)
    command = serve_command()
    log.info("starting %s", " ".join(command))
    with _open_daemon_log() as log_file:

        def popen(**platform_args: Any) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=data,
                close_fds=True,
                **platform_args,
            )

        if sys.platform != "win32":
            return popen(start_new_session=True)
        detached = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
        try:
            # Chrome runs a host in a job object that dies with it; breaking away keeps the daemon alive.
            return popen(creationflags=detached | subprocess.CREATE_BREAKAWAY_FROM_JOB)
        except OSError:
            return popen(creationflags=detached)


def _open_daemon_log() -> io.BufferedWriter:
    path = log_path()
    try:
        if path.stat().st_size > LOG_KEEP_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    return open(path, "ab")


def stop_daemon(timeout_s: float = STOP_TIMEOUT_S) -> DaemonStatus | None:
    """SIGTERM the running daemon and wait for it to exit; None when none was running."""
    running = running_daemon()  # only a daemon that answered with our token gets a signal: never a recycled pid
    if running is None:
        return None
    os.kill(running.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(running.pid):
        if time.monotonic() >= deadline:
            raise DaemonStopFailed(running.pid, timeout_s)
        time.sleep(POLL_INTERVAL_S)
    return running
