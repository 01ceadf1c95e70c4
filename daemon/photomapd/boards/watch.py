"""Live board albums: poll the server's listing with backoff; a change queues the same incremental sync as Update Index.

Each poll asks one tiny question per board (`GET …/images/?limit=1`: how many images, which is newest), which changes
with every new, deleted or moved image; every 30 s (and after any change) the full listing (`…/images/names`: every
name and star) catches stars too. The delay starts short so an image InvokeAI just finished shows up within seconds,
and doubles while nothing changes, up to 4 s: an idle album costs a small request per board every 4 s.

A server that goes away pauses the album ("Could not reach backend" on its progress); polling goes on at the ceiling and the first answer after that resumes it with a sync.

InvokeAI 6.14 also has socket.io events (`invocation_complete` in the queue room after `subscribe_queue`), but they
only cover generations (not uploads, deletions, moves or stars) and need a socket.io client PhotoMap doesn't carry:
polling sees everything with the client we have. An event listener could later just call `nudge`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from photomapd.config import AlbumConfig
from photomapd.errors import PhotoMapError

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5  # after a change (or at start): a batch of generations lands over a few seconds
# An idle album still sees a new image within seconds: one tiny request per board (one in all for an "all" album) this
# often, a few hundred bytes each.
MAX_DELAY_S = 4.0
BACKOFF = 2.0
# Stars change nothing the cheap check sees (count, newest name): the full listing (names and stars) runs this often.
FULL_EVERY_S = 30.0

Signature = Callable[[list[str]], Awaitable[Any]]  # boards -> something equal between polls when nothing changed
OnChange = Callable[[str], None]  # album key: queue a sync
OnPause = Callable[[str, str], None]  # album key, message


async def follow_board_album(
    album: AlbumConfig, probe: Signature, signature: Signature, on_change: OnChange, on_pause: OnPause,
    stop: asyncio.Event, wake: asyncio.Event, *, retry: Callable[[str], bool] = lambda key: False,
    first_delay_s: float = FIRST_DELAY_S, max_delay_s: float = MAX_DELAY_S, full_every_s: float = FULL_EVERY_S,
) -> None:  # fmt: skip
    """Poll until `stop` is set: `probe` (count and newest image per board) with backoff, `signature` (every name and
    star) every `full_every_s`. The first answer always queues a sync (what changed while the daemon was off)."""
    last_probe: Any = None
    last_full: Any = None
    seen = False
    full_due = 0.0
    delay = first_delay_s
    while not stop.is_set():
        try:
            current = await probe(album.boards)
            retrying = retry(album.key)
            changed = not seen or current != last_probe
            last_probe = current
            if changed or time.monotonic() >= full_due:
                full = await signature(album.boards)
                changed = changed or full != last_full
                last_full, full_due = full, time.monotonic() + full_every_s
        except PhotoMapError as err:  # unreachable, a board gone, a login refused: paused until it answers again
            on_pause(album.key, err.message)
            seen = False  # resume with a sync once it answers again
            delay = max_delay_s
        except Exception:  # never let the poller die: log it and keep going slowly
            log.exception("polling board album %s failed", album.key)
            delay = max_delay_s
        else:
            if changed or retrying:
                on_change(album.key)
                delay = first_delay_s if changed else max_delay_s  # a sync that keeps failing is retried slowly
            else:
                delay = min(delay * BACKOFF, max_delay_s)
            seen = True
        wake.clear()
        stopping = asyncio.ensure_future(stop.wait())
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({stopping, woken}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            woken.cancel()
        if wake.is_set():
            delay = first_delay_s
            full_due = 0.0  # a nudge (settings saved, a user's action) re-reads names and stars too


class BoardWatchers:
    """One poll task per board album with watching on; `sync` restarts them after the album list changes."""

    def __init__(
        self, probe: Signature, signature: Signature, on_change: OnChange, on_pause: OnPause, **timing: float
    ) -> None:
        self.probe = probe
        self.signature = signature
        self.on_change = on_change
        self.on_pause = on_pause
        self.timing = timing  # tests shorten the delays
        self._following: dict[str, tuple[AlbumConfig, asyncio.Event, asyncio.Event, asyncio.Task[None]]] = {}
        self._dirty: set[str] = set()  # albums whose last sync failed: the next poll queues one whatever it sees

    def sync(self, albums: list[AlbumConfig]) -> None:
        wanted = {album.key: album for album in albums if album.is_board_album and album.watch}
        for key, (album, stop, _wake, _task) in list(self._following.items()):
            if wanted.get(key) != album:
                stop.set()
                del self._following[key]
        for key, album in wanted.items():
            if key not in self._following:
                stop, wake = asyncio.Event(), asyncio.Event()
                task = asyncio.get_running_loop().create_task(
                    follow_board_album(album, self.probe, self.signature, self.on_change, self.on_pause, stop, wake,
                                       retry=self._take_retry, **self.timing),
                    name=f"board-watch-{key}",
                )
                self._following[key] = (album, stop, wake, task)

    def retry(self, album_key: str) -> None:
        """The sync a change queued failed: queue another at the next poll (paced at the ceiling), even if the server
        shows nothing new by then."""
        if album_key in self._following:
            self._dirty.add(album_key)

    def nudge(self, album_key: str | None = None) -> None:
        """Poll now (after the settings changed, or a user action changed the server)."""
        for key, (_album, _stop, wake, _task) in self._following.items():
            if album_key is None or key == album_key:
                wake.set()

    def _take_retry(self, album_key: str) -> bool:
        if album_key in self._dirty:
            self._dirty.discard(album_key)
            return True
        return False

    @property
    def followed(self) -> list[str]:
        return sorted(self._following)

    async def close(self) -> None:
        tasks = []
        for _album, stop, _wake, task in self._following.values():
            stop.set()
            tasks.append(task)
        self._following.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
