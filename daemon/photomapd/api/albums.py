"""Album routes: list/add/edit/delete, Update Index / Rebuild, and live progress over Server-Sent Events.

    GET    /albums                 → [{key, display_name, folders, watch, poll, indexed_count, progress}]
    POST   /albums                 {key, display_name, folders[, watch, poll]} → 201 album (first index starts)
    PATCH  /albums/{key}           {display_name?, folders?, watch?, poll?} → album
    DELETE /albums/{key}           → 204 (index, map and thumbnails of the album dropped; image files untouched)
    POST   /albums/{key}/index     {mode: "update"|"rebuild"[, engine: "local"|"ray", address]} → 202 progress of
                                     the run (its `run_id`; queued behind, or joined with, a run already under way)
    DELETE /albums/{key}/index     → 200 progress of the stopped run (`state: "cancelled"`; the batch in flight is
                                     committed first), or the latest state when nothing was queued or running
    GET    /albums/{key}/progress  → text/event-stream of `progress` events (IndexProgress JSON); the current state
                                     first, then every change; ends after a finished run unless `?follow=1` (then
                                     every later run too, watcher runs included)
Every progress answer (stream events, POST and DELETE index) carries `indexed_count`: the images in the album's
searchable index at that moment, so "N images" stays live while a run (or a watcher) commits batches.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from photomapd import albums as album_rules
from photomapd.api.http import read_model
from photomapd.api.keys import CONFIG, INVOKEAI, JOBS, OPTIONS, SSE_TASKS, STORE, WATCHERS
from photomapd.config import AlbumConfig
from photomapd.errors import BoardNotVisible
from photomapd.index.progress import IndexProgress
from photomapd.scale.engine import RayOptions, require_ray

SSE_HEARTBEAT_S = 15  # a comment line this often keeps proxies and the panel's reader from timing out


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["update", "rebuild"] = "update"
    engine: Literal["local", "ray"] = "local"  # "ray": embed on a Ray cluster (scale/engine.py, DESIGN §12)
    address: str | None = Field(default=None, max_length=1024)  # the cluster to join; None = a local one


def _album_views(request: web.Request, albums: list[AlbumConfig]) -> list[dict[str, Any]]:
    """Blocking: counts come from each table's fragment metadata (no scan), tables from the store's cache."""
    store, jobs = request.app[STORE], request.app[JOBS]
    views = []
    for album in albums:
        table = store.open(album.key)
        views.append({
            **album.model_dump(mode="json"),
            "indexed_count": table.count() if table is not None else 0,
            "progress": jobs.progress(album.key).model_dump(mode="json"),
        })  # fmt: skip
    return views


async def _album_view(request: web.Request, album: AlbumConfig) -> dict[str, Any]:
    return (await asyncio.to_thread(_album_views, request, [album]))[0]


def _resync_watchers(request: web.Request) -> None:
    if request.app[OPTIONS].watch:
        albums = request.app[CONFIG].current.albums
        request.app[WATCHERS].sync([album for album in albums if not album.is_board_album])
        request.app[JOBS].board_watchers.sync(albums)  # board albums follow their server instead


async def list_albums(request: web.Request) -> web.Response:
    views = await asyncio.to_thread(_album_views, request, request.app[CONFIG].current.albums)
    return web.json_response(views)


async def _check_boards(request: web.Request, boards: list[str]) -> None:
    """Every board a board album names must be one this InvokeAI user sees (user A can't name B's private board)."""
    wanted = [board for board in boards if board not in (album_rules.ALL_BOARDS, album_rules.UNCATEGORIZED_BOARD)]
    if not wanted:
        return
    async with request.app[INVOKEAI].client() as client:
        visible = {board.board_id for board in await client.boards()}
    for board in wanted:
        if board not in visible:
            raise BoardNotVisible(board)


async def create_album(request: web.Request) -> web.Response:
    payload = await read_model(request, album_rules.AlbumCreate)
    if payload.source == "invokeai":
        await _check_boards(request, album_rules.validate_boards(payload.boards))
    album = await asyncio.to_thread(album_rules.add_album, request.app[CONFIG], payload)
    _resync_watchers(request)
    request.app[JOBS].request_index(album.key)
    return web.json_response(await _album_view(request, album), status=201)


async def update_album(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    payload = await read_model(request, album_rules.AlbumUpdate)
    if payload.boards is not None:
        await _check_boards(request, album_rules.validate_boards(payload.boards))
    album = await asyncio.to_thread(album_rules.update_album, request.app[CONFIG], key, payload)
    _resync_watchers(request)
    if payload.folders is not None or payload.boards is not None:
        request.app[JOBS].request_index(key)  # files of dropped folders leave the index, new folders get indexed
    return web.json_response(await _album_view(request, album))


async def delete_album(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    await request.app[JOBS].delete_album(key)  # stops its work first; the image files are never touched
    _resync_watchers(request)
    return web.Response(status=204)


async def _progress_view(request: web.Request, progress: IndexProgress) -> dict[str, Any]:
    """The progress event plus the album's current image count (cached per table write: a dict lookup mostly)."""

    def count() -> int:
        table = request.app[STORE].open(progress.album)
        return table.count() if table is not None else 0

    return {**progress.model_dump(mode="json"), "indexed_count": await asyncio.to_thread(count)}


async def start_index(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    payload = await read_model(request, IndexRequest, empty_means_defaults=True)
    ray = None
    if payload.engine == "ray":
        await asyncio.to_thread(require_ray)  # RayMissing (501, naming the install) before anything is queued
        ray = RayOptions(address=payload.address)
    progress = request.app[JOBS].request_index(key, payload.mode, ray=ray)  # queued behind (or joined with) one
    return web.json_response(await _progress_view(request, progress), status=202)


async def cancel_index(request: web.Request) -> web.Response:
    """The panel's Cancel: answers once the run has stopped at a batch boundary (seconds at most)."""
    progress = await request.app[JOBS].cancel_index(request.match_info["key"])
    return web.json_response(await _progress_view(request, progress))


def _sse_event(view: dict[str, Any]) -> bytes:
    return f"event: progress\ndata: {json.dumps(view)}\n\n".encode()


def _is_final(progress: IndexProgress) -> bool:
    return progress.state in ("done", "failed", "cancelled", "idle")


async def progress_stream(request: web.Request) -> web.StreamResponse:
    key = request.match_info["key"]
    album_rules.find_album(request.app[CONFIG].current, key)
    follow = request.query.get("follow") == "1"
    jobs = request.app[JOBS]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    queue = jobs.subscribe(key)  # before the first write, so no event falls between snapshot and stream
    task = asyncio.current_task()
    if task is not None:
        request.app[SSE_TASKS].add(task)  # cancelled on shutdown, so stopping the daemon never waits on a listener
    try:
        await response.prepare(request)
        current = jobs.progress(key)
        await response.write(_sse_event(await _progress_view(request, current)))
        if _is_final(current) and not follow and not jobs.is_running(key):
            return response
        while True:
            try:
                progress = await asyncio.wait_for(queue.get(), timeout=SSE_HEARTBEAT_S)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(_sse_event(await _progress_view(request, progress)))
            if _is_final(progress) and not follow:
                return response
    except ConnectionResetError:  # the panel went away
        return response
    finally:
        jobs.unsubscribe(key, queue)


async def close_streams(app: web.Application) -> None:
    for task in list(app[SSE_TASKS]):
        task.cancel()
