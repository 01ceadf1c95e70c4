"""A board album's server as a synchronous `BoardSource` (boards/run.py) for the owner's job threads.

The InvokeAI client is async and lives on the event loop; a run happens on a job thread. Each call is scheduled on
the loop and the thread waits for its answer, so the run shares the daemon's one pooled client (and its login).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Mapping, Sequence, TypeVar

from photomapd.invokeai import images
from photomapd.invokeai.client import InvokeAIClient
from photomapd.invokeai.connection import InvokeAIConnection

T = TypeVar("T")
# A job thread never waits forever on the loop: past this the call fails like a server that went away. Above the
# client's own timeouts (30 s for a full image), so it only ever catches a loop that is shutting down.
CALL_DEADLINE_S = 60.0


class ServerBoardSource:
    def __init__(self, connection: InvokeAIConnection, boards: list[str], loop: asyncio.AbstractEventLoop) -> None:
        self.connection = connection
        self.boards = boards
        self.loop = loop

    def _call(self, fn: Callable[[InvokeAIClient], Awaitable[T]]) -> T:
        async def go() -> T:
            async with self.connection.client() as client:
                return await fn(client)

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout=CALL_DEADLINE_S)

    def list(self) -> Mapping[str, images.BoardImage]:
        return self._call(lambda client: images.list_album(client, self.boards))

    def infos(self, names: Sequence[str]) -> Mapping[str, images.ImageInfo]:
        return self._call(lambda client: images.image_infos(client, names))

    def fetch(self, image_name: str) -> bytes:
        data, _content_type = self._call(lambda client: images.full_image(client, image_name))
        return data


async def newest_signature(connection: InvokeAIConnection, boards: list[str]) -> Any:
    """The live poller's cheap check, one tiny request per board: (board, count, newest name). It changes with every
    new, deleted or moved image; stars need `listing_signature`."""
    async with connection.client() as client:
        if boards == [images.ALL_BOARDS]:  # one request for the whole gallery; moves show at the full listing
            return (images.ALL_BOARDS, *await images.newest(client, None))
        return tuple([(board, *await images.newest(client, board)) for board in boards])


async def listing_signature(connection: InvokeAIConnection, boards: list[str]) -> Any:
    """What the live poller compares between polls: every image's (name, board, star). Equal = nothing to sync."""
    async with connection.client() as client:
        listed = await images.list_album(client, boards)
    return frozenset((image.image_name, image.board_id, image.starred) for image in listed.values())
