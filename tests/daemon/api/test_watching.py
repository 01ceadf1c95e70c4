"""Live watching: files added to, rewritten in or deleted from an album folder reach the index with no index request.

Each scenario runs on two albums of one daemon that differ only in `watch`: the watched album has to take every change
in, the unwatched control, given the same changes, must not within the same time. The control is what makes the test
able to fail: without it, a check could pass on a state that already held before any watcher fired.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from photomapd.api.keys import STORE, WATCHERS, ServeOptions
from photomapd.index import watch

from tests.daemon.api.conftest import TEST_TOKEN
from tests.daemon.api.test_album_routes import read_sse
from tests.daemon.images import make_album, make_png

# A watched change lands in about 2 s (debounce + one small update run) or, polling, a poll interval later; the rest
# is slack for a slow CI machine. Only a failing test waits this long.
WATCH_DEADLINE_S = 60.0
CHECK_EVERY_S = 0.2
# The poll interval in poll mode: the product's 5 s would make each step wait ~6 s for nothing but the clock; what
# is under test is that the polling watcher sees the changes, not how often it looks.
TEST_POLL_DELAY_MS = 1_000

Row = tuple[int, int, tuple[float, ...]]  # (mtime_ns, size, vector) of one indexed path
Rows = dict[str, Row]


@pytest.fixture
def serve_options() -> ServeOptions:
    return ServeOptions(token=TEST_TOKEN, model="ViT-B-32", pretrained="none", watch=True)


async def indexed(api: Any, key: str) -> Rows:
    """What the album's table holds now, read straight from the store (no index request, no cache in between)."""

    def read() -> Rows:
        table = api.app[STORE].open(key)
        if table is None:
            return {}
        data = table.arrow(["path", "mtime_ns", "size", "vector"]).to_pydict()
        return {
            path: (mtime, size, tuple(vector))
            for path, mtime, size, vector in zip(data["path"], data["mtime_ns"], data["size"], data["vector"])
        }

    return await asyncio.to_thread(read)


async def wait_until(api: Any, key: str, holds: Callable[[Rows], bool], what: str) -> Rows:
    deadline = time.monotonic() + WATCH_DEADLINE_S
    while True:
        rows = await indexed(api, key)
        if holds(rows):
            return rows
        assert time.monotonic() < deadline, f"{key}: {what} not in the index after {WATCH_DEADLINE_S} s: {sorted(rows)}"
        await asyncio.sleep(CHECK_EVERY_S)


async def stays(api: Any, key: str, expected: Rows, seconds: float) -> None:
    """The album's rows stay exactly `expected` for `seconds` (checked throughout, so a change fails at once)."""
    end = time.monotonic() + seconds
    while True:
        assert await indexed(api, key) == expected, f"{key} changed although nothing watches it"
        if time.monotonic() >= end:
            return
        await asyncio.sleep(CHECK_EVERY_S)


def files_of(folder: Path) -> set[str]:
    return {str(path) for path in folder.rglob("*.png")}


def holds_files_of(folder: Path) -> Callable[[Rows], bool]:
    """A condition: the album holds exactly the images now in `folder`."""
    wanted = files_of(folder)
    return lambda rows: set(rows) == wanted


def matches_disk(row: Row, path: Path) -> bool:
    stat = path.stat()
    return (row[0], row[1]) == (stat.st_mtime_ns, stat.st_size)


async def add_albums(api: Any, albums: dict[str, tuple[Path, bool]], poll: bool) -> dict[str, Rows]:
    """New albums (key -> (folder, watch)), once the first index that adding each one requests is done. All are
    added before any is waited for, so their first runs overlap."""
    for key, (folder, watching) in albums.items():
        resp = await api.post(
            "/api/v1/albums",
            json={"key": key, "display_name": key, "folders": [str(folder)], "watch": watching, "poll": poll},
        )
        assert resp.status == 201, await resp.text()
    indexed_now: dict[str, Rows] = {}
    for key, (folder, _) in albums.items():
        await read_sse(api, key)
        indexed_now[key] = await wait_until(api, key, holds_files_of(folder), "the first index")
    return indexed_now


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "poll"])
async def test_the_watcher_brings_in_added_rewritten_and_deleted_files(
    api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, poll: bool
) -> None:
    monkeypatch.setattr(watch, "POLL_DELAY_MS", TEST_POLL_DELAY_MS)  # read when a watch starts: when its album is added
    live, still = tmp_path / "live", tmp_path / "still"
    make_album(live, 3)
    make_album(still, 3)
    first = await add_albums(api, {"live": (live, True), "still": (still, False)}, poll=poll)
    before, control = first["live"], first["still"]
    assert api.app[WATCHERS].watched == ["live"]
    latencies: list[float] = []

    # Step 1, files the watcher reports by path: one added, one rewritten with other pixels, one deleted.
    for folder in (live, still):
        make_png(folder / "fresh.png", seed=900)
        make_png(folder / "img_0001.png", seed=901)
        (folder / "img_0000.png").unlink()
    started = time.monotonic()
    rewritten, untouched = str(live / "img_0001.png"), str(live / "img_0002.png")

    def took_in_step_1(rows: Rows) -> bool:
        return (
            set(rows) == files_of(live)
            and matches_disk(rows[rewritten], live / "img_0001.png")
            and rows[rewritten][2] != before[rewritten][2]  # re-embedded, not only re-stamped
        )

    after = await wait_until(api, "live", took_in_step_1, "the added, rewritten and deleted files")
    latencies.append(time.monotonic() - started)
    assert str(live / "img_0000.png") not in after and str(live / "fresh.png") in after
    assert after[untouched] == before[untouched]
    assert await indexed(api, "still") == control

    # Step 2, a new subfolder: a change the watcher can only report as "something moved", so a full update runs.
    for folder in (live, still):
        make_png(folder / "nested" / "deep.png", seed=902)
    started = time.monotonic()
    await wait_until(api, "live", holds_files_of(live), "the image in the new subfolder")
    latencies.append(time.monotonic() - started)

    # The control had every change at least as long as the watcher needed for it, then as long again: still nothing.
    await stays(api, "still", control, seconds=max(latencies))


async def test_turning_watching_on_later_starts_a_watcher(api: Any, tmp_path: Path) -> None:
    folder = tmp_path / "later"
    make_album(folder, 2)
    await add_albums(api, {"later": (folder, False)}, poll=False)
    assert "later" not in api.app[WATCHERS].watched
    resp = await api.patch("/api/v1/albums/later", json={"watch": True})
    assert resp.status == 200
    assert "later" in api.app[WATCHERS].watched
    make_png(folder / "dropped.png", seed=903)
    await wait_until(api, "later", lambda rows: str(folder / "dropped.png") in rows, "the file dropped in")
