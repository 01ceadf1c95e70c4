"""The whole URL surface on one screen. Every route is under /api/v1 and behind the guard middleware."""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web

from photomapd.api import albums, images, invokeai, mapview, search, selection, status
from photomapd.api.http import API_PREFIX
from photomapd.api.keys import CONFIG, EMBEDDER, INVOKEAI, JOBS, OPTIONS, SSE_TASKS, STORE, WATCHERS
from photomapd.index.watch import AlbumWatchers
from photomapd.jobs import AlbumJobs
from photomapd.model.runner import ModelRunner

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def _p(path: str) -> str:
    return API_PREFIX + path


ROUTES: list[web.RouteDef] = [
    web.get(_p("/status"), status.get_status),
    # InvokeAI: settings, boards, and the actions that send work back into it
    web.get(_p("/settings/invokeai"), invokeai.get_settings),
    web.put(_p("/settings/invokeai"), invokeai.put_settings),
    web.get(_p("/invokeai/probe"), invokeai.get_probe),
    web.get(_p("/invokeai/boards"), invokeai.get_boards),
    web.put(_p("/invokeai/board"), invokeai.put_board),
    web.post(_p("/images/{album}/{id}/recall"), invokeai.post_recall),
    web.post(_p("/images/{album}/{id}/remix"), invokeai.post_remix),
    web.post(_p("/images/{album}/{id}/ref"), invokeai.post_image_ref),
    web.post(_p("/images/{album}/{id}/append"), invokeai.post_image_append),
    web.post(_p("/ref-image"), invokeai.post_ref_image),
    web.get(_p("/albums/{key}/map"), mapview.get_map),
    web.post(_p("/albums/{key}/map/relayout"), mapview.post_relayout),
    web.get(_p("/albums/{key}/map/relayout"), mapview.get_relayout),
    web.get(_p("/albums"), albums.list_albums),
    web.post(_p("/albums"), albums.create_album),
    web.patch(_p("/albums/{key}"), albums.update_album),
    web.delete(_p("/albums/{key}"), albums.delete_album),
    web.post(_p("/albums/{key}/index"), albums.start_index),
    web.delete(_p("/albums/{key}/index"), albums.cancel_index),
    web.get(_p("/albums/{key}/progress"), albums.progress_stream),
    web.get(_p("/images/{album}/{id}"), images.get_image),
    web.get(_p("/images/{album}/{id}/thumb"), images.get_thumb),
    web.get(_p("/images/{album}/{id}/file"), images.get_file),
    web.post(_p("/albums/{key}/search"), search.post_search),
    # a selection (grid multi-select, map lasso): batch actions by row id
    web.post(_p("/albums/{key}/selection"), selection.post_apply),
    web.post(_p("/albums/{key}/selection/star"), selection.post_star),
    web.post(_p("/albums/{key}/selection/board"), selection.post_board),
    web.post(_p("/albums/{key}/selection/zip"), selection.post_zip),
    web.get(_p("/albums/{key}/duplicates"), search.get_duplicates),
    web.get(_p("/albums/{key}/facets"), search.get_facets),
]


async def open_model_runner(app: web.Application) -> AsyncIterator[None]:
    """The model loads lazily on first use, so the daemon starts in a second and only pays for torch when needed,
    and is dropped again after `model_idle_unload_s` without a call."""
    options, cfg = app[OPTIONS], app[CONFIG].current
    runner = ModelRunner(
        options.model or cfg.model, options.pretrained or cfg.pretrained, cfg.model_idle_unload_s, cfg.model_precision
    )
    app[EMBEDDER] = runner
    yield
    runner.close()


# Short reads (search, thumbnails, table lookups, small files) get the loop's default executor, so every
# `asyncio.to_thread` in a handler lands here and never queues behind an index run (those have the owner's own pool).
READ_WORKERS = 8


async def open_read_pool(app: web.Application) -> AsyncIterator[None]:
    pool = ThreadPoolExecutor(max_workers=READ_WORKERS, thread_name_prefix="photomap-read")
    asyncio.get_running_loop().set_default_executor(pool)
    yield
    pool.shutdown(wait=False, cancel_futures=True)


async def open_album_jobs(app: web.Application) -> AsyncIterator[None]:
    """The albums' owner and the folder watchers feeding it; runs a killed daemon left are resumed. On shutdown the
    batch in flight is committed before a run stops."""
    jobs = AlbumJobs(app[STORE], app[EMBEDDER], app[CONFIG], invokeai=app[INVOKEAI])
    app[EMBEDDER].on_rest.append(jobs.rest)
    watchers = AlbumWatchers(jobs.files_changed)
    app[JOBS], app[WATCHERS], app[SSE_TASKS] = jobs, watchers, weakref.WeakSet()
    jobs.resume_interrupted()
    if app[OPTIONS].watch:
        sync_watchers(app)
    yield
    await watchers.close()
    await jobs.close()


def sync_watchers(app: web.Application) -> None:
    """Folder albums get file watchers, board albums the server poller (each only with watching on)."""
    albums = app[CONFIG].current.albums
    app[WATCHERS].sync([album for album in albums if not album.is_board_album])
    app[JOBS].board_watchers.sync(albums)


def cleanup_contexts() -> list[CleanupContext]:
    """Long-lived objects, opened in this order and closed in reverse (aiohttp skips cleanups whose startup failed)."""
    # InvokeAI before the albums' owner: board albums sync through its connection, so it must outlive their work.
    return [open_read_pool, open_model_runner, invokeai.open_invokeai, open_album_jobs]


def shutdown_hooks() -> list[Callable[[web.Application], Awaitable[None]]]:
    """Run before cleanup: end open streams so stopping the daemon never waits on a listener."""
    return [albums.close_streams]
