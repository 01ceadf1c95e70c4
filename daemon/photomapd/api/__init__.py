"""The localhost HTTP API the extension talks to (DESIGN §5).

Split by concern so each handler module stays small: `app.py` builds the application (middlewares, long-lived
objects under typed AppKeys), `routes.py` is the one route table, and `albums.py`, `search.py`, `images.py`,
`invokeai.py`, `mapview.py` hold thin handlers that parse, call a domain function and serialize. Only this package
imports aiohttp.web.
"""

from __future__ import annotations

from photomapd.api.app import create_app

__all__ = ["create_app"]
