"""PageCache: hits, identical requests sharing one computation, a hung-up client not cancelling the others, errors
not cached, the size bound."""

from __future__ import annotations

import asyncio

import pytest
from photomapd.search.page_cache import PageCache, request_digest


def counting(pages: list[bytes], gate: asyncio.Event | None = None):  # type: ignore[no-untyped-def]
    async def compute() -> bytes:
        if gate is not None:
            await gate.wait()
        pages.append(b"page")
        return b"page %d" % len(pages)

    return compute


async def test_a_repeated_request_is_answered_from_the_cache() -> None:
    cache, made = PageCache(), []
    key = ((1, 0), request_digest('{"text": "a red fox"}'))
    assert await cache.get(key, counting(made)) == b"page 1"
    assert await cache.get(key, counting(made)) == b"page 1"
    assert (len(made), cache.computed) == (1, 1)
    assert await cache.get(((1, 1), key[1]), counting(made)) == b"page 2"  # a commit: new token, new page


async def test_identical_requests_in_flight_share_one_search_and_a_hang_up_cancels_nothing() -> None:
    cache, made, gate = PageCache(), [], asyncio.Event()
    waiters = [asyncio.create_task(cache.get("k", counting(made, gate))) for _ in range(20)]
    await asyncio.sleep(0)
    waiters[0].cancel()  # the first client hangs up while its search runs
    gate.set()
    results = await asyncio.gather(*waiters[1:])
    assert results == [b"page 1"] * 19 and len(made) == 1
    with pytest.raises(asyncio.CancelledError):
        await waiters[0]


async def test_a_failed_search_is_not_cached() -> None:
    cache, calls = PageCache(), []

    async def failing() -> bytes:
        calls.append(1)
        raise RuntimeError("table gone")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.get("k", failing)
    assert len(calls) == 2 and len(cache) == 0


async def test_the_cache_keeps_only_the_most_recent_pages() -> None:
    cache, made = PageCache(capacity=3), []
    for key in "abcd":
        await cache.get(key, counting(made))
    await cache.get("a", counting(made))  # evicted as the oldest: computed again
    assert len(cache) == 3 and cache.computed == 5
