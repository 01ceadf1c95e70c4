"""`/albums/{key}/map` routes: the binary map payload (ETag-aware, filterable) and the on-demand "Re-layout" job."""

from __future__ import annotations

import asyncio
from aiohttp import web

from photomapd.api.images import album_table
from photomapd.api.keys import JOBS
from photomapd.map.payload import encode_map, map_etag
from photomapd.search import SearchFilters, filters_to_where


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return etag in candidates or "*" in candidates


async def get_map(request: web.Request) -> web.StreamResponse:
    """The placed rows as `mapview.encode_map` lays them out; query parameters are `SearchFilters` fields."""
    table = await album_table(request)
    key = request.match_info["key"]
    condition = filters_to_where(SearchFilters.model_validate(dict(request.query))) if request.query else None
    etag = await asyncio.to_thread(map_etag, table, key, condition)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    body = await asyncio.to_thread(encode_map, table, key, condition)
    return web.Response(body=body, content_type="application/octet-stream", headers=headers)


async def post_relayout(request: web.Request) -> web.Response:
    """Queue (or join) a full refit of the album's map, after any index run ahead of it; 202 with the job, whose
    progress GET returns."""
    await album_table(request)
    job = request.app[JOBS].request_relayout(request.match_info["key"])
    return web.json_response(job.model_dump(mode="json"), status=202)


async def get_relayout(request: web.Request) -> web.Response:
    """The album's latest re-layout job with its progress; `null` when none ran since the daemon started."""
    await album_table(request)
    job = request.app[JOBS].relayout_job(request.match_info["key"])
    return web.json_response(job.model_dump(mode="json") if job else None)
