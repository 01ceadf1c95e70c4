"""`/images/{album}/{id}` routes: an image's metadata record. Files are named only by row id, never by path."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from photomapd.api.keys import CONFIG, STORE
from photomapd.errors import AlbumNotFound, ImageNotFound, NotIndexed
from photomapd.store import AlbumTable


def album_table(request: web.Request, key: str | None = None) -> AlbumTable:
    """The table of the album named in the URL (`{album}` or `{key}`); 404 for an unknown album."""
    album_key = key or request.match_info.get("album") or request.match_info["key"]
    if not any(album.key == album_key for album in request.app[CONFIG].current.albums):
        raise AlbumNotFound(album_key)
    table = request.app[STORE].open(album_key)
    if table is None:
        raise NotIndexed()
    return table


def parse_image_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise ImageNotFound()
    return int(raw)


async def lookup_image(request: web.Request, columns: list[str] | None = None) -> dict[str, Any]:
    """The row for `{album}/{id}` (only `columns` when given); 404 when the album or the id is unknown."""
    table = album_table(request)
    row = await asyncio.to_thread(table.get, parse_image_id(request), columns)
    if row is None:
        raise ImageNotFound()
    return row
