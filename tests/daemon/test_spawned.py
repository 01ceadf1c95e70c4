"""Spawned children: what a daemon at rest keeps of them (nothing, once they are done). Run in a fresh interpreter:
the test process may hold other tests' children, and with a child alive the tracker rightly stays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import os
from pathlib import Path

from photomapd.spawned import ChildProcess, stop_idle_tracker


def trackers():
    # this process's children running multiprocessing's resource tracker, read from /proc
    found = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\\t", 1) for line in status.read_text().splitlines() if ":\\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # gone meanwhile
        found += int(fields.get("PPid", "0")) == os.getpid() and b"resource_tracker" in cmdline
    return found


if __name__ == "__main__":
    child = ChildProcess()
    assert child(os.getpid) != os.getpid()
    print(trackers())  # a spawned child starts the tracker
    stop_idle_tracker()
    print(trackers())  # a child is still running: its tracker stays
    child.close()
    stop_idle_tracker()
    print(trackers())  # the last child is gone: so is the tracker
    again = ChildProcess()
    print(again(sum, [1, 2]), trackers())  # the next child starts a tracker of its own
    again.close()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_resource_tracker_goes_with_the_last_child_and_comes_back_with_the_next(tmp_path: Path) -> None:
    script = tmp_path / "rest.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1", "0", "3", "1"]
