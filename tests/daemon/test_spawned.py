"""Spawned children: what a daemon at rest keeps of them (nothing, once they are done)."""

from __future__ import annotations

import os
from pathlib import Path

from photomapd.spawned import ChildProcess, stop_idle_tracker


def _trackers() -> list[int]:
    """This process's children running multiprocessing's resource tracker, read from /proc."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(fields.get("PPid", "0")) == os.getpid() and b"resource_tracker" in cmdline:
            found.append(int(status.parent.name))
    return found


def test_the_resource_tracker_goes_with_the_last_child_and_comes_back_with_the_next() -> None:
    child = ChildProcess()
    assert child(os.getpid) != os.getpid()
    assert _trackers(), "a spawned child starts multiprocessing's tracker"
    stop_idle_tracker()
    assert _trackers(), "a child is still running: its tracker stays"
    child.close()
    stop_idle_tracker()
    assert _trackers() == []
    again = ChildProcess()
    try:
        assert again(sum, [1, 2]) == 3, "the next child starts a tracker of its own"
        assert len(_trackers()) == 1
    finally:
        again.close()
