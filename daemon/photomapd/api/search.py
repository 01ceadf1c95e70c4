"""Search routes. Shapes, for the extension:

    POST /albums/{key}/search   body: SearchRequest (photomapd.search), e.g.
        {"text": "a red fox", "negative_text": "blurry", "image_id": 12, "image_weight": 0.5,
         "keywords": "castle \"red fox\"",
         "filters": {"folder", "date_from", "date_to", "model", "lora", "seed", "generator", "prompt"},
         "min_score": 0.2, "auto_cut": true, "sort": "best" | "newest" | "oldest", "offset": 0, "limit": 100}
        `image_base64` (uploaded bytes) instead of `image_id`; no text and no image = browse, newest first.
        `keywords`: words (and "quoted phrases") the prompt must hold, by the prompt's full-text index.
        `sort` "score"/"date" are old names of best/newest; "best" needs a text or an image (else 400).
        model/lora filters are case-insensitive substrings; generator "unknown" includes images with no metadata;
        seed may be a string of digits (anything else: 400).
      → {"results": [{"id", "score", "width", "height", "created_at", "generator", "model",
                      "positive_prompt" (first 200 chars)}], "total", "offset", "limit", "ranked",
         "cut": {"mode": "auto" | "min_score" | "none", "min_score", "best_score"}}
        `score` is the cosine similarity (null in a browse); `total` counts the matches that pass the cut (text
        queries: within rank.AUTO_CUT_BELOW_BEST of the best, unless `auto_cut` is false or `min_score` is given);
        `ranked` counts them before the cut.

    GET /albums/{key}/facets
      → {"total", "models": [{"value", "count"}], "loras": [...], "generators": [...]}  (most common first)

    GET /albums/{key}/duplicates?threshold=0.95&offset=0&limit=50
      → {"groups": [{"ids": [...], "score"}], "total", "threshold", "offset", "limit"}  (largest groups first)

Errors: 404 album_not_found / image_not_found, 409 not_indexed / model_mismatch, 422 invalid_request /
image_unreadable, 400 bad_request.
"""

from __future__ import annotations

import asyncio
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from photomapd.api.http import read_model
from photomapd.api.images import album_table
from photomapd.api.keys import CONFIG, EMBEDDER, JOBS, SEARCH_PAGES, STORE
from photomapd.errors import AlbumNotFound
from photomapd.search.duplicates import DEFAULT_THRESHOLD
from photomapd.search import SearchRequest, query_vector, search_table
from photomapd.search.facets import album_facets
from photomapd.search.page_cache import request_digest


async def post_search(request: web.Request) -> web.Response:
    body = await read_model(request, SearchRequest)
    table = await album_table(request)

    async def search() -> bytes:
        query = await query_vector(body, table, request.app[EMBEDDER])
        page = await asyncio.to_thread(search_table, table, request.app[JOBS].vectors, query, body)
        return page.model_dump_json().encode("utf-8")

    # The table's write token is read before the search: a commit landing meanwhile makes a new key for the next
    # request, so a page is never served for rows older than it shows.
    key = (table.version, request_digest(body.model_dump_json()))
    page = await request.app[SEARCH_PAGES].get(key, search)
    return web.Response(body=page, content_type="application/json")


async def get_facets(request: web.Request) -> web.Response:
    """The album's models, LoRAs and generators with counts; empty lists before its first index."""
    key = request.match_info["key"]
    if not any(album.key == key for album in request.app[CONFIG].current.albums):
        raise AlbumNotFound(key)

    def facets() -> dict[str, object]:
        return album_facets(request.app[STORE].open(key)).model_dump(mode="json")

    return web.json_response(await asyncio.to_thread(facets))


class DuplicatesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.5, le=1.0)  # below 0.5 is "related", not "duplicate"
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=500)


async def get_duplicates(request: web.Request) -> web.Response:
    query = DuplicatesQuery.model_validate(dict(request.query))
    table = await album_table(request)
    groups = await asyncio.to_thread(request.app[JOBS].vectors.duplicates, table, query.threshold)
    page = groups[query.offset : query.offset + query.limit]
    return web.json_response(
        {
            "groups": [group.model_dump(mode="json") for group in page],
            "total": len(groups),
            "threshold": query.threshold,
            "offset": query.offset,
            "limit": query.limit,
        }
    )
