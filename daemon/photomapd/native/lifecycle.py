"""One daemon per data dir: the instance lock, state.json, is-it-running checks, detached start, and stop.

The lock is an OS file lock (flock, or msvcrt on Windows) that the kernel drops when its process dies, however it
dies (kill -9 included), so a crash never leaves a lock that blocks the next daemon. The daemon holds it for its whole
life; a CLI command that changes something holds it for its duration when no daemon runs (DESIGN §10), so the two
never write at once. The file names the holder: a daemon writes its pid, a CLI `cli <pid> <command line>`. A `serve`
that finds a CLI holding the lock waits for it; one that finds a daemon bows out.

Nobody takes the lock just to test it: a probe holding it for a moment could make a daemon that is starting at that
moment think it lost. To find a daemon, read state.json and then ask that daemon's `/status` with the token. That
answer is the real test because it also catches a pid the OS has given to some other program since.

This module is imported by the native host, so it stays light: no aiohttp, no lancedb.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photomapd import config
from photomapd.errors import AlreadyRunning, DaemonStartFailed, DaemonStopFailed

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # a cold start imports aiohttp + lancedb (~3 s on a 2-core box); a slow disk needs more
STOP_TIMEOUT_S = 30.0  # shutdown lets an in-flight index batch commit first
STATUS_TIMEOUT_S = 2.0  # loopback /status answers in milliseconds; longer means a hung or foreign listener
POLL_INTERVAL_S = 0.1
LOCK_POLL_S = 0.2  # a serve or CLI waiting for the lock retries this often: prompt once it is free, ~no CPU meanwhile
# A holder names itself right after taking the lock, so a nameless holder is normally gone within microseconds; one
# that stays nameless this long is no current photomapd process, and counts as a daemon (as before the lock had names)
UNNAMED_HOLDER_GRACE_S = 2.0
MAX_LOCK_COMMAND_CHARS = 200  # a CLI's command line in the lock file: enough to recognise it, one readable line
_CLI_HOLDER = "cli"
LOG_KEEP_BYTES = 5 * 1024**2  # past this daemon.log becomes daemon.log.1: enough to debug a start, never a hoard
_WINDOWS_LOCK_OFFSET = 4096  # msvcrt locks bytes and blocks reading them; lock one well past the pid text


def lock_path() -> Path:
    return config.data_dir() / "daemon.lock"


def log_path() -> Path:
    return config.data_dir() / "daemon.log"


@dataclass(frozen=True)
class DaemonStatus:
    """A daemon that answered `/status` with our token."""

    port: int
    pid: int
    version: str

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


# --- instance lock --------------------------------------------------------------------------------------------------


class InstanceLock:
    """The one-writer lock of the data dir. A daemon holds it for its whole life (`command` None); a CLI command that
    changes something holds it while no daemon runs (`command` is its command line, shown to whoever waits)."""

    def __init__(self, path: Path | None = None, *, command: str | None = None) -> None:
        self.path = path if path is not None else lock_path()
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another live process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)  # the Windows lock moved the offset to its lock byte
        os.write(fd, self._holder_text().encode("utf-8"))
        self._fd = fd
        return True

    def _holder_text(self) -> str:
        if self.command is None:
            return str(os.getpid())  # a daemon: the bare pid, as every version wrote it
        command = " ".join(self.command.split())  # one line, whatever the arguments held
        if len(command) > MAX_LOCK_COMMAND_CHARS:
            command = command[: MAX_LOCK_COMMAND_CHARS - 1] + "…"
        return f"{_CLI_HOLDER} {os.getpid()} {command}"

    def release(self) -> None:
        # The file itself stays: unlinking a lock file lets two processes lock two different inodes at once.
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        _unlock(self._fd)
        os.close(self._fd)
        self._fd = None


@dataclass(frozen=True)
class LockHolder:
    """Who the lock file names: a daemon, or the CLI command that holds the lock while no daemon runs."""

    pid: int | None  # None: a holder that never named itself (see UNNAMED_HOLDER_GRACE_S)
    command: str | None = None  # the CLI's command line, e.g. "photomapd index invokeai"; None for a daemon

    @property
    def is_daemon(self) -> bool:
        return self.command is None

    def describe(self) -> str:
        pid = f"pid {self.pid}" if self.pid is not None else "pid unknown"
        return f"'{self.command}' ({pid})" if self.command is not None else f"the daemon ({pid})"


class LockWaiter:
    """Tries the instance lock for a process that may wait for it; the caller sleeps between tries (a CLI with
    time.sleep, `serve` with asyncio.sleep), so this never blocks."""

    def __init__(self, lock: InstanceLock) -> None:
        self.lock = lock
        self._nameless_since: float | None = None

    def try_once(self) -> tuple[bool, LockHolder | None]:
        """(True, None) when the lock is now ours; else (False, who holds it), the holder None while it has not
        named itself yet (it is between taking the lock and writing its name: try again in a moment)."""
        if self.lock.acquire():
            return True, None
        holder = read_lock_holder()
        if holder is not None and holder.pid is not None and pid_alive(holder.pid):
            self._nameless_since = None
            return False, holder
        now = time.monotonic()
        self._nameless_since = self._nameless_since if self._nameless_since is not None else now
        if now - self._nameless_since >= UNNAMED_HOLDER_GRACE_S:
            return False, LockHolder(pid=None)
        return False, None


if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read_lock_holder() -> LockHolder | None:
    """Who the current (or last) lock holder said it is; None when the file is empty, missing or unreadable."""
    try:
        text = lock_path().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text.isdigit():
        return LockHolder(pid=int(text))
    kind, _, rest = text.partition(" ")
    pid, _, command = rest.partition(" ")
    if kind == _CLI_HOLDER and pid.isdigit():
        return LockHolder(pid=int(pid), command=command or "photomapd")
    return None


def lock_holder_pid() -> int | None:
    """The pid the current (or last) lock holder wrote, daemon or CLI; None when the file names nobody."""
    holder = read_lock_holder()
    return holder.pid if holder is not None else None


def already_running_error() -> AlreadyRunning:
    """What a second `serve` tells the user: the winner's pid, and its port once it has published one."""
    pid = lock_holder_pid()
    state = read_state()
    port = state.get("port") if state and state.get("pid") == pid else None
    return AlreadyRunning(pid, port)


# --- is it running? -------------------------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A killed process whose parent has not reaped it yet still answers kill(pid, 0); on Linux /proc says it is dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _windows_pid_alive(pid: int) -> bool:
    # os.kill(pid, 0) would *terminate* the process on Windows, so ask the kernel for its exit code instead.
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
    query_limited_information, still_active = 0x1000, 259
    handle = kernel32.OpenProcess(query_limited_information, False, pid)
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def fetch_status(port: int, token: str) -> dict[str, object] | None:
    """GET /api/v1/status on loopback; None for anything but a 200 JSON object (refused, hung, 401, not us)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=STATUS_TIMEOUT_S)  # no proxy, unlike urllib
    try:
        conn.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    if response.status != 200:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def running_daemon() -> DaemonStatus | None:
    """The daemon state.json names, if it is alive and answers /status with our token and its own pid."""
    state = read_state()
    if not state:
        return None
    port, pid = state.get("port"), state.get("pid")
    if not isinstance(port, int) or not isinstance(pid, int) or not pid_alive(pid):
        return None
    answer = fetch_status(port, config.load_or_create_token())
    if answer is None or answer.get("pid") != pid:
        return None
    return DaemonStatus(port=port, pid=pid, version=str(answer.get("version", "")))


# --- start and stop -------------------------------------------------------------------------------------------------


def start_daemon(timeout_s: float = START_TIMEOUT_S) -> DaemonStatus:
    """Return the running daemon, starting a detached `photomapd serve` first when none answers."""
    running = running_daemon()
    if running is not None:
        return running
    config.load_or_create_token()  # create it before the daemon reads it, so both sides read one file
    deadline = time.monotonic() + timeout_s
    child = _spawn_serve()
    while True:
        running = running_daemon()
        if running is not None:
            return running
        code = child.poll()
        if code not in (None, 0):
            raise DaemonStartFailed(f"`photomapd serve` exited with code {code}", str(log_path()))
        if code == 0 and not _daemon_holds_lock():
            # It exited 0 because another daemon held the lock, and that one has quit since (a stop racing a
            # start), or a CLI command has taken the lock after it: try again, so a serve waits for that CLI rather
            # than us waiting for a daemon that is gone.
            child = _spawn_serve()
        if time.monotonic() >= deadline:
            holder = read_lock_holder()
            if code is None and holder is not None and not holder.is_daemon and _alive(holder):
                # Our serve waits for that command (an `index` can take hours) and starts by itself once it ends.
                reason = f"it is waiting for {holder.describe()} to finish, and starts once that command ends"
                raise DaemonStartFailed(reason, str(log_path()))
            raise DaemonStartFailed(f"no answer on /status within {timeout_s:g} s", str(log_path()))
        time.sleep(POLL_INTERVAL_S)


def _alive(holder: LockHolder) -> bool:
    return holder.pid is not None and pid_alive(holder.pid)


def _daemon_holds_lock() -> bool:
    holder = read_lock_holder()
    return holder is not None and holder.is_daemon and _alive(holder)


def _spawn_serve() -> subprocess.Popen[bytes]:
    """`photomapd serve` in its own session, so it outlives the native host and the browser's process group."""
    data = config.data_dir()
    data.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "photomapd", "serve"]
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
