"""What a real `photomapd serve` that rests light keeps out of its own process, after indexing, text and keyword
search, facets and the map: the libraries it only ever imported (pandas, ~50 MB), read from /proc/<pid>/maps."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.daemon.api.test_daemon_recovery import RUN_S, Daemon, daemon  # noqa: F401  # the fixture
from tests.daemon.images import make_album
from tests.daemon.processes import wait_until

needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps")


def mapped_libraries(pid: int) -> set[str]:
    return {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if line.endswith(".so")}


@needs_proc
def test_a_resting_daemon_never_loads_pandas(daemon: Daemon, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "images"
    make_album(folder, 4)
    daemon.start()
    daemon.call("POST", "/albums", {"key": "a", "display_name": "A", "folders": [str(folder)]}, expect=201)
    wait_until(lambda: daemon.call("GET", "/albums")[0]["progress"]["state"] == "done", "the first index", RUN_S)
    assert daemon.call("POST", "/albums/a/search", {"text": "a red fox", "limit": 4})["total"] >= 1
    daemon.call("POST", "/albums/a/search", {"keywords": "fox", "limit": 4})
    daemon.call("GET", "/albums/a/facets")
    libraries = mapped_libraries(daemon.daemons.started[-1].pid)
    assert any("lance" in name for name in libraries), "the check reads the right process"
    assert not [name for name in libraries if "/pandas/" in name]
