"""The instance lock of a data dir: one writer at a time, and who that writer is.

The lock is an OS file lock (flock, or msvcrt on Windows) that the kernel drops when its process dies, however it
dies (kill -9 included), so a crash never leaves a lock that blocks the next daemon. The daemon holds it for its whole
life; a CLI command that changes something holds it for its duration when no daemon runs (DESIGN §10), so the two
never write at once. The file names the holder: a daemon writes its pid, a CLI `cli <pid> <command line>`. A `serve`
that finds a CLI holding the lock waits for it; one that finds a daemon bows out.

Nobody takes the lock just to test it: a probe holding it for a moment could make a daemon that is starting at that
moment think it lost (lifecycle.py finds a daemon through state.json and its `/status` instead).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from photomapd import config

LOCK_POLL_S = 0.2  # a serve or CLI waiting for the lock retries this often: prompt once it is free, ~no CPU meanwhile
# A holder names itself right after taking the lock, so a nameless holder is normally gone within microseconds; one
# that stays nameless this long is no current photomapd process, and counts as a daemon (as before the lock had names)
UNNAMED_HOLDER_GRACE_S = 2.0
MAX_LOCK_COMMAND_CHARS = 200  # a CLI's command line in the lock file: enough to recognise it, one readable line
_CLI_HOLDER = "cli"
_WINDOWS_LOCK_OFFSET = 4096  # msvcrt locks bytes and blocks reading them; lock one well past the pid text


def lock_path() -> Path:
    return config.data_dir() / "daemon.lock"


# --- the lock -------------------------------------------------------------------------------------------------------


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

    def rewrite_name(self) -> bool:
        """Write our name into the lock file again if something changed it; True when it had to."""
        if self._fd is None:
            return False
        try:
            on_disk = os.stat(self.path)
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            return False  # a deleted lock file can't be named through our descriptor (it is another inode now)
        if text == self._holder_text() or not os.path.samestat(on_disk, os.fstat(self._fd)):
            return False
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)  # no os.pwrite on Windows
        os.write(self._fd, self._holder_text().encode("utf-8"))
        return True

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


# --- processes ------------------------------------------------------------------------------------------------------


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
