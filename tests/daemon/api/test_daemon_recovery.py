"""A real `photomapd serve` killed with -9 mid-run: the index it leaves is intact and searchable, and the next daemon
resumes the run by itself (an update, or a rebuild into its staging table) without any request."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from photomapd import config
from photomapd.index.run import BATCH_SIZE
from photomapd.store import Store

from tests.daemon.images import make_album
from tests.daemon.processes import Daemons, api, use_test_model, wait_until

START_S = 120.0  # a cold serve imports aiohttp + lancedb, the first run loads torch and the model: slow on loaded CI
RUN_S = 300.0


class Daemon:
    """One daemon at a time on the test's port: started until it answers, killed with -9 (no cleanup at all)."""

    def __init__(self, tmp_path: Path) -> None:
        self.daemons = Daemons(tmp_path)
        use_test_model()

    def start(self) -> None:
        self.daemons.start()
        wait_until(lambda: self._answers(), "the daemon to answer", START_S)

    def _answers(self) -> bool:
        try:
            return self.call("GET", "/status") is not None
        except (OSError, AssertionError):
            return False

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, answer = api(self.daemons.port, method, path, body)
        assert status == expect, answer
        return answer

    def kill(self) -> None:
        proc = self.daemons.started[-1]
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(tmp_path)
    yield running
    running.daemons.close()


def reader() -> Store:
    return Store(config.index_dir(), read_only=True)  # another process's view, following the daemon's commits


def live_rows(store: Store, key: str) -> int:
    table = store.open(key)
    return table.count() if table is not None else 0


def assert_unique(key: str, expected: int) -> None:
    table = reader().open(key)
    assert table is not None
    rows = table.where(None, ["id", "path"])
    assert len(rows) == expected
    assert len({r["id"] for r in rows}) == expected and len({r["path"] for r in rows}) == expected


def test_a_daemon_killed_mid_index_resumes_the_run_when_it_starts_again(daemon: Daemon, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    count = BATCH_SIZE * 5
    make_album(folder, count)
    daemon.start()
    daemon.call("POST", "/albums", {"key": "big", "display_name": "Big", "folders": [str(folder)]}, expect=201)
    wait_until(lambda: live_rows(reader(), "big") >= BATCH_SIZE, "a first committed batch", RUN_S)
    daemon.kill()
    committed = live_rows(reader(), "big")
    assert 0 < committed < count, "the kill should land mid-run"

    daemon.start()  # nobody asks for an index: the daemon resumes by itself
    wait_until(lambda: live_rows(reader(), "big") == count, "the run to resume and finish", RUN_S)
    wait_until(lambda: daemon.call("GET", "/albums")[0]["progress"]["state"] == "done", "the run to end", RUN_S)
    assert_unique("big", count)
    assert reader().interrupted_runs() == {}


def test_a_rebuild_killed_mid_way_leaves_the_old_index_searchable_and_resumes(daemon: Daemon, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    count = BATCH_SIZE * 4
    make_album(folder, count)
    daemon.start()
    daemon.call("POST", "/albums", {"key": "pics", "display_name": "Pics", "folders": [str(folder)]}, expect=201)
    wait_until(lambda: daemon.call("GET", "/albums")[0]["progress"]["state"] == "done", "the first index", RUN_S)
    old_name = reader().open("pics").name  # type: ignore[union-attr]

    daemon.call("POST", "/albums/pics/index", {"mode": "rebuild"}, expect=202)

    def staged() -> int:
        staging = reader().open_staging("pics")
        return staging.count() if staging is not None else 0

    wait_until(lambda: staged() >= BATCH_SIZE, "a committed staging batch", RUN_S)
    daemon.kill()
    assert staged() < count, "the kill should land mid-rebuild"

    # The old index is intact, and a restarted daemon serves it: searching works before the rebuild is done.
    assert reader().open("pics").name == old_name and live_rows(reader(), "pics") == count  # type: ignore[union-attr]
    daemon.start()
    page = daemon.call("POST", "/albums/pics/search", {"limit": 5})
    assert page["total"] == count
    wait_until(lambda: reader().open("pics").name != old_name, "the resumed rebuild to swap in", RUN_S)  # type: ignore[union-attr]
    assert_unique("pics", count)
    wait_until(lambda: daemon.call("GET", "/albums")[0]["progress"]["state"] == "done", "the rebuild to end", RUN_S)
    assert daemon.call("POST", "/albums/pics/search", {"limit": 5})["total"] == count
