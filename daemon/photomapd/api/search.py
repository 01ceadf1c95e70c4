"""Search routes. Shapes, for the extension:

    POST /albums/{key}/search   body: SearchRequest (photomapd.search), e.g.
        {"text": "a red fox", "negative_text": "blurry", "image_id": 12, "image_weight": 0.5,
         "filters": {"folder", "date_from", "date_to", "model", "lora", "seed", "generator", "prompt"},
         "min_score": 0.2, "sort": "score" | "date", "offset": 0, "limit": 100}
        `image_base64` (uploaded bytes) instead of `image_id`; no text and no image = browse, newest first.
      → {"results": [{"id", "score", "width", "height", "created_at", "generator", "model",
                      "positive_prompt" (first 200 chars)}], "total", "offset", "limit"}
        `score` is the cosine similarity (null in a browse); `total` counts matches before paging.

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
from photomapd.api.keys import EMBEDDER, JOBS
from photomapd.search.duplicates import DEFAULT_THRESHOLD
from photomapd.search import SearchRequest, query_vector, search_table


async def post_search(request: web.Request) -> web.Response:
    body = await read_model(request, SearchRequest)
    table = await album_table(request)
    query = await query_vector(body, table, request.app[EMBEDDER])
    page = await asyncio.to_thread(search_table, table, request.app[JOBS].vectors, query, body)
    return web.json_response(page.model_dump(mode="json"))


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
