"""`/images/{album}/{id}` routes. Files are named only by row id, never by a path from the client.

    GET /images/{album}/{id}  → {id, path, width, height, folder, metadata: ImageMetadata (normalized + raw)}
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
from pathlib import Path
from typing import Any

from aiohttp import web

from photomapd import thumbs
from photomapd.api.keys import CONFIG, INVOKEAI, STORE
from photomapd.config import AlbumConfig
from photomapd.invokeai import images as board_images
from photomapd.errors import AlbumNotFound, FileMissing, FileOutsideAlbum, ImageNotFound, NotIndexed
from photomapd.store import AlbumTable


async def album_table(request: web.Request, key: str | None = None) -> AlbumTable:
    """The table of the album named in the URL (`{album}` or `{key}`); 404 for an unknown album. The store caches
    open tables, so after the first request this is a dict lookup; the first one opens files, off the loop."""
    album_key = key or request.match_info.get("album") or request.match_info["key"]
    if not any(album.key == album_key for album in request.app[CONFIG].current.albums):
        raise AlbumNotFound(album_key)
    table = await asyncio.to_thread(request.app[STORE].open, album_key)
    if table is None:
        raise NotIndexed()
    return table


def parse_image_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    # ASCII digits only: str.isdigit also accepts '²' and other digits int() refuses; 18 digits stay inside int64.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ImageNotFound()
    return int(raw)


async def lookup_image(request: web.Request, columns: list[str] | None = None) -> dict[str, Any]:
    """The row for `{album}/{id}` (only `columns` when given); 404 when the album or the id is unknown."""
    table = await album_table(request)
    row = await asyncio.to_thread(table.get, parse_image_id(request), columns)
    if row is None:
        raise ImageNotFound()
    return row


IMAGE_COLUMNS = ["id", "path", "folder", "width", "height", "mtime_ns", "size", "metadata_json"]
# Board albums (DESIGN §11): InvokeAI's name, board and star; a folder album's `starred` is a local favourite.
BOARD_COLUMNS = ["image_name", "board_id", "starred"]


def album_config(request: web.Request) -> AlbumConfig:
    album_key = request.match_info.get("album") or request.match_info["key"]
    for album in request.app[CONFIG].current.albums:
        if album.key == album_key:
            return album
    raise AlbumNotFound(album_key)


async def get_image(request: web.Request) -> web.Response:
    table = await album_table(request)
    columns = IMAGE_COLUMNS + [name for name in BOARD_COLUMNS if name in table.schema.names]
    row = await lookup_image(request, columns)
    metadata = json.loads(row.pop("metadata_json") or "{}")
    row["starred"] = bool(row.get("starred"))
    return web.json_response({"image_name": None, "board_id": None, **row, "metadata": metadata})


async def board_image_name(request: web.Request) -> str | None:
    """The InvokeAI image name of a board album's row (None for a folder album): its file is on the server."""
    if not album_config(request).is_board_album:
        return None
    row = await lookup_image(request, ["id", "image_name"])
    if not row.get("image_name"):
        raise FileMissing()
    return str(row["image_name"])


async def _board_file(request: web.Request, image_name: str, kind: str) -> web.Response:
    """A board album's thumbnail or file, fetched from InvokeAI (with this user's token): InvokeAI never changes an
    image after saving it, so its name is a perfect ETag."""
    etag = f'"{kind}-{image_name}"'
    headers = {"ETag": etag, "Cache-Control": IMAGE_CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    if _is_fresh(request, etag):
        return web.Response(status=304, headers=headers)
    fetch = board_images.thumbnail if kind == "thumb" else board_images.full_image
    async with request.app[INVOKEAI].client() as client:
        data, content_type = await fetch(client, image_name)
    if not content_type.startswith("image/"):
        content_type = "application/octet-stream"
    return web.Response(body=data, content_type=content_type.split(";")[0], headers=headers)


# --- thumbnail and file (search.md owner) ----------------------------------------------------------------------------
# Both read the row's path, which must still resolve (symlinks followed) to a regular file inside one of the album's
# configured folders: a folder swapped for a symlink after indexing can't make us serve /etc or another album.

# Thumbnails and files change only when the file does (and the ETag with it); the browser revalidates after this.
IMAGE_CACHE_CONTROL = "private, max-age=600"


def _confine(path: Path, folders: list[str]) -> Path:
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise FileMissing() from exc
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise FileOutsideAlbum() from exc
    for folder in folders:
        try:
            root = Path(folder).resolve(strict=True)
        except (OSError, RuntimeError):
            continue  # an unplugged drive: nothing can be inside it
        if resolved.is_relative_to(root) and resolved.is_file():
            return resolved
    if not resolved.is_file():
        raise FileMissing()
    raise FileOutsideAlbum()


async def album_file(request: web.Request) -> tuple[int, Path]:
    """(row id, resolved path) of the image in the URL, confined to its album's folders."""
    row = await lookup_image(request, ["id", "path"])
    album_key = request.match_info["album"]
    folders = next(album.folders for album in request.app[CONFIG].current.albums if album.key == album_key)
    return row["id"], await asyncio.to_thread(_confine, Path(row["path"]), folders)


def _is_fresh(request: web.Request, etag: str) -> bool:
    return etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}


async def get_thumb(request: web.Request) -> web.Response:
    image_name = await board_image_name(request)
    if image_name is not None:
        return await _board_file(request, image_name, "thumb")
    row_id, path = await album_file(request)
    album_key = request.match_info["album"]
    try:
        stamp = await asyncio.to_thread(thumbs.FileStamp.of, path)
    except FileNotFoundError as exc:
        raise FileMissing() from exc
    headers = {"ETag": stamp.etag, "Cache-Control": IMAGE_CACHE_CONTROL}
    if _is_fresh(request, stamp.etag):
        return web.Response(status=304, headers=headers)
    try:
        data, stamp = await asyncio.to_thread(thumbs.thumbnail, album_key, row_id, path)
    except FileNotFoundError as exc:  # deleted between the stat and the render
        raise FileMissing() from exc
    headers["ETag"] = stamp.etag
    return web.Response(body=data, content_type=thumbs.THUMB_CONTENT_TYPE, headers=headers)


async def get_file(request: web.Request) -> web.StreamResponse:
    image_name = await board_image_name(request)
    if image_name is not None:
        return await _board_file(request, image_name, "file")
    _, path = await album_file(request)
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # FileResponse sets ETag/Last-Modified from the file and answers If-None-Match with 304 (and Range requests).
    return web.FileResponse(
        path,
        headers={
            "Cache-Control": IMAGE_CACHE_CONTROL,
            "Content-Type": content_type,
            "X-Content-Type-Options": "nosniff",
        },
    )
