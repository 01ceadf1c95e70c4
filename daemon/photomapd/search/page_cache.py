"""Finished search pages, so a crowd asking the same thing costs one search.

A page is keyed by the album table's write token (`AlbumTable.version`: unique per opened table, bumped by every
commit) and a digest of the whole request, so a cached page can never outlive the rows it was made from, and
nothing needs invalidating: a stale key is simply never asked for again and ages out. Identical
requests arriving together share one computation (the first one's), and a client hanging up never cancels it for
the others. Pages are kept as the JSON bytes sent, so a hit costs neither ranking nor serialization.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

# A page of 100 results is ~30 KB of JSON: 256 pages bound the cache near 8 MB, far more distinct recent queries
# than a panel sends between two commits.
PAGE_CACHE_ENTRIES = 256


def request_digest(body_json: str) -> str:
    """A fixed-size key for a request of any size (an uploaded image's base64 can be megabytes)."""
    return hashlib.sha256(body_json.encode("utf-8")).hexdigest()


class PageCache:
    """Loop-bound: used from the event loop only (no locks needed)."""

    def __init__(self, capacity: int = PAGE_CACHE_ENTRIES) -> None:
        self._capacity = capacity
        self._pages: OrderedDict[Hashable, bytes] = OrderedDict()
        self._in_flight: dict[Hashable, asyncio.Future[bytes]] = {}
        self.computed = 0  # pages actually computed (tests, benches)

    def __len__(self) -> int:
        return len(self._pages)

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
            return page
        flight = self._in_flight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._compute(key, compute))
            self._in_flight[key] = flight
        # Shielded: this caller's cancellation (its client hung up) must not cancel the others' shared search.
        return await asyncio.shield(flight)

    async def _compute(self, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            page = await compute()
        finally:
            del self._in_flight[key]  # an error is not cached: the next identical request tries again
        self.computed += 1
        self._pages[key] = page
        while len(self._pages) > self._capacity:
            self._pages.popitem(last=False)
        return page
