"""`GET /status`: is the daemon up, which version, which albums, what is running."""

from __future__ import annotations

import os

from aiohttp import web

from photomapd import __version__
from photomapd.api.keys import CONFIG


async def get_status(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG].current
    return web.json_response(
        {
            "version": __version__,
            "pid": os.getpid(),
            "model": cfg.model,
            "pretrained": cfg.pretrained,
            "albums": [album.key for album in cfg.albums],
        }
    )
