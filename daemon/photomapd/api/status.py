"""`GET /status`: is the daemon up, which version, which albums, what is running."""

from __future__ import annotations

import os

from aiohttp import web

from photomapd import __version__
from photomapd.api.keys import CONFIG, EMBEDDER


async def get_status(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG].current
    model, pretrained = request.app[EMBEDDER].embedding_names  # what this daemon embeds with (flags beat config.json)
    return web.json_response(
        {
            "version": __version__,
            "pid": os.getpid(),
            "model": model,
            "pretrained": pretrained,
            "albums": [album.key for album in cfg.albums],
        }
    )
