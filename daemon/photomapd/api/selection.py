"""Batch actions on a selection of images (grid multi-select, map lasso): star/unstar, add to a board, zip.

    POST /albums/{key}/selection/star   {ids: [int], starred: bool}
         → {ok, message, changed, ids}: board albums star on InvokeAI first, then mirror what it changed; folder
           albums keep a local favourite (the same `starred` column)
    POST /albums/{key}/selection/board  {ids: [int], board_id: str}
         → {ok, message, added, image_names}: board albums move the images into that board (InvokeAI's board
           membership, nothing uploaded); folder albums upload each file to it
    POST /albums/{key}/selection        {ids: [int], starred?: bool, board_id?: str} → both in one request: the
           answer merges the two above, `message` joins theirs
    POST /albums/{key}/selection/zip    {ids: [int]} → application/zip (files from disk, or fetched from InvokeAI)

Ids are the album's row ids (never paths); unknown ids are ignored, and the answer's counts say what was done.
Nothing on the server is deleted or changed except by these explicit actions (DESIGN §11, issue 13 item 6).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from photomapd.api.http import read_model
from photomapd.api.images import _confine, album_config, album_table
from photomapd.api.keys import INVOKEAI, JOBS
from photomapd.config import AlbumConfig
from photomapd.errors import FileMissing, PhotoMapError, SelectionInvalid
from photomapd.invokeai import images as board_images
from photomapd.invokeai.fetch import REF_MAX_BYTES
from photomapd.invokeai.recall import counted
from photomapd.invokeai.refimage import prepare_upload
from photomapd.store import id_list

MAX_SELECTION = 10_000  # ids per request: a lasso over a whole 100k map is refused with a message, not a timeout
_INT64_MAX = 2**63 - 1
ZIP_CHUNK_BYTES = 1 << 20
ROW_COLUMNS = ["id", "path", "folder", "image_name", "board_id"]


class Selection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(max_length=MAX_SELECTION)


class StarSelection(Selection):
    starred: bool = True


class BoardSelection(Selection):
    board_id: str = Field(min_length=1, max_length=255)


class ApplySelection(Selection):
    starred: bool | None = None
    board_id: str | None = Field(default=None, min_length=1, max_length=255)


async def _rows(request: web.Request, selection: Selection) -> list[dict[str, Any]]:
    ids = sorted({i for i in selection.ids if 0 <= i <= _INT64_MAX})
    if not ids:
        raise SelectionInvalid()
    table = await album_table(request)
    columns = [c for c in ROW_COLUMNS if c in table.schema.names]
    return await asyncio.to_thread(table.where, f"id IN ({id_list(ids)})", columns)


def _result(message: str, **fields: Any) -> web.Response:
    return web.json_response({"ok": True, "message": message, **fields})


async def _star(request: web.Request, album: AlbumConfig, rows: list[dict[str, Any]], starred: bool) -> dict[str, Any]:
    if album.is_board_album:
        by_name = {row["image_name"]: row["id"] for row in rows if row.get("image_name")}
        async with request.app[INVOKEAI].client() as client:
            changed = await board_images.set_starred(client, list(by_name), starred)
        ids = [by_name[name] for name in changed if name in by_name]
    else:
        ids = [row["id"] for row in rows]
    if ids:
        await request.app[JOBS].set_starred(album.key, ids, starred)
    verb = "Starred" if starred else "Unstarred"
    where = " in InvokeAI" if album.is_board_album else ""
    skipped = len(rows) - len(ids)
    note = f" ({counted(skipped, 'image')} InvokeAI did not let this user change)" if skipped else ""
    return {"message": f"{verb} {counted(len(ids), 'image')}{where}{note}", "changed": len(ids), "ids": ids}


async def _board(request: web.Request, album: AlbumConfig, rows: list[dict[str, Any]], board_id: str) -> dict[str, Any]:
    async with request.app[INVOKEAI].client() as client:
        board_name = await client.board_name(board_id)
        if album.is_board_album:
            by_name = {row["image_name"]: row["id"] for row in rows if row.get("image_name")}
            names = await board_images.add_to_board(client, board_id, list(by_name))
            moved = [by_name[name] for name in names if name in by_name]
        else:
            names = [await client.upload(await _upload_of(album.folders, row), board_id) for row in rows]
            moved = []
    if moved:
        await request.app[JOBS].set_board(album.key, moved, board_id)
        request.app[JOBS].board_watchers.nudge(album.key)  # images moved out of the album's boards leave it
    verb = "Moved" if album.is_board_album else "Uploaded"
    return {"message": f"{verb} {counted(len(names), 'image')} to InvokeAI board “{board_name}”",
            "added": len(names), "image_names": names}


async def post_star(request: web.Request) -> web.Response:
    selection = await read_model(request, StarSelection)
    album = album_config(request)
    return _result(**await _star(request, album, await _rows(request, selection), selection.starred))


async def post_board(request: web.Request) -> web.Response:
    selection = await read_model(request, BoardSelection)
    album = album_config(request)
    return _result(**await _board(request, album, await _rows(request, selection), selection.board_id))


async def post_apply(request: web.Request) -> web.Response:
    """Several actions on one selection in one request (the batch bar's "star and add to board"): star first, so a
    board album's images are starred where they are, then moved."""
    selection = await read_model(request, ApplySelection)
    if selection.starred is None and selection.board_id is None:
        raise SelectionInvalid("Choose what to do with the selection: starred and/or board_id")
    album = album_config(request)
    rows = await _rows(request, selection)
    answer: dict[str, Any] = {}
    messages = []
    if selection.starred is not None:
        star = await _star(request, album, rows, selection.starred)
        messages.append(star.pop("message"))
        answer.update(star)
    if selection.board_id is not None:
        board = await _board(request, album, rows, selection.board_id)
        messages.append(board.pop("message"))
        answer.update(board)
    return _result("; ".join(messages), **answer)


async def _upload_of(folders: list[str], row: dict[str, Any]) -> Any:
    def read() -> Any:
        path = _confine(Path(row["path"]), folders)
        if path.stat().st_size > REF_MAX_BYTES:
            too_big = f"{path.name} is larger than {REF_MAX_BYTES // 1_000_000} MB: InvokeAI can't take it"
            raise SelectionInvalid(too_big)
        return prepare_upload(path.read_bytes(), path.name)

    return await asyncio.to_thread(read)


async def post_zip(request: web.Request) -> web.StreamResponse:
    selection = await read_model(request, Selection)
    album = album_config(request)
    rows = await _rows(request, selection)
    spool = await asyncio.to_thread(tempfile.TemporaryFile)  # on disk: a selection can be gigabytes
    try:
        archive = await asyncio.to_thread(zipfile.ZipFile, spool, "w", zipfile.ZIP_STORED)  # PNG/JPEG: no gain
        used: set[str] = set()
        for row in rows:
            if album.is_board_album:
                async with request.app[INVOKEAI].client() as client:
                    try:
                        data, _ = await board_images.full_image(client, row["image_name"] or "")
                    except PhotoMapError as err:
                        if err.status == 502:
                            raise
                        continue  # gone since it was indexed: the zip holds the rest
                name = row["image_name"]
                await asyncio.to_thread(archive.writestr, _unique(name, used), data)
            else:
                try:
                    path = await asyncio.to_thread(_confine, Path(row["path"]), album.folders)
                except FileMissing:
                    continue
                await asyncio.to_thread(archive.write, path, _unique(path.name, used))
        await asyncio.to_thread(archive.close)
        size = await asyncio.to_thread(spool.seek, 0, os.SEEK_END)
        await asyncio.to_thread(spool.seek, 0)
        response = web.StreamResponse(headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{album.key}-selection.zip"',
            "Content-Length": str(size),
        })  # fmt: skip
        await response.prepare(request)
        while chunk := await asyncio.to_thread(spool.read, ZIP_CHUNK_BYTES):
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        spool.close()


def _unique(name: str, used: set[str]) -> str:
    """Two folders can hold `img.png`: the second becomes `img (2).png` in the zip."""
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    used.add(candidate)
    return candidate
