"""Live folder watching (watchfiles): debounced change sets feed the same incremental update as Update Index."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from watchfiles import Change, awatch

from photomapd.config import AlbumConfig
from photomapd.index.scan import is_image_name, is_in_album

log = logging.getLogger(__name__)

DEBOUNCE_MS = 1_600  # InvokeAI writes a batch of images over a second or two; one update for the lot
POLL_DELAY_MS = 5_000  # network mounts: a stat walk every 5 s is cheap enough and feels live

OnChange = Callable[[str, "set[str] | None"], None]


def changed_paths(changes: set[tuple[Change, str]], album: AlbumConfig) -> set[str] | None:
    """Image paths of a change set, or None when something else changed (a folder renamed or deleted) and only a
    full scan can tell what happened."""
    paths: set[str] = set()
    for _, path in changes:
        if not is_image_name(path):
            if "/." in path or path.rsplit("/", 1)[-1].startswith("."):
                continue  # editors' temp files, hidden folders
            return None
        if is_in_album(path, album.folders):
            paths.add(path)
    return paths


async def watch_album(album: AlbumConfig, on_change: OnChange, stop: asyncio.Event) -> None:
    """Watch until `stop` is set; errors (a folder unmounted) are logged and the watch restarts after a pause."""
    while not stop.is_set():
        try:
            async for changes in awatch(
                *album.folders,
                debounce=DEBOUNCE_MS,
                force_polling=album.poll,
                poll_delay_ms=POLL_DELAY_MS,
                stop_event=stop,
                recursive=True,
            ):
                paths = changed_paths(changes, album)
                if paths is None or paths:
                    on_change(album.key, paths)
        except (OSError, RuntimeError) as exc:
            log.warning("watching %s failed (%s); retrying in 10 s", album.key, exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=10)
            except asyncio.TimeoutError:
                pass


class AlbumWatchers:
    """One watch task per album that has watching on; `sync` restarts them after the album list changes."""

    def __init__(self, on_change: OnChange) -> None:
        self.on_change = on_change
        self._watching: dict[str, tuple[AlbumConfig, asyncio.Event, asyncio.Task[None]]] = {}

    def sync(self, albums: list[AlbumConfig]) -> None:
        wanted = {album.key: album for album in albums if album.watch}
        for key, (album, stop, _task) in list(self._watching.items()):
            if wanted.get(key) != album:
                stop.set()
                del self._watching[key]
        for key, album in wanted.items():
            if key not in self._watching:
                stop = asyncio.Event()
                task = asyncio.get_running_loop().create_task(watch_album(album, self.on_change, stop), name=f"watch-{key}")
                self._watching[key] = (album, stop, task)

    @property
    def watched(self) -> list[str]:
        return sorted(self._watching)

    async def close(self) -> None:
        tasks = []
        for _album, stop, task in self._watching.values():
            stop.set()
            tasks.append(task)
        self._watching.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
