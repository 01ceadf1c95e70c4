"""Application factory and the guard middleware (token, Host, Origin); errors render in api/http.py."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from photomapd import config
from photomapd.api.http import Handler, error_middleware
from photomapd.api.keys import CONFIG, OPTIONS, SEARCH_PAGES, STORE, ServeOptions
from photomapd.api.routes import ROUTES, cleanup_contexts, shutdown_hooks
from photomapd.config import ConfigStore
from photomapd.errors import Forbidden, Unauthorized
from photomapd.search.page_cache import PageCache
from photomapd.store import Store

log = logging.getLogger(__name__)

LOCAL_HOSTNAMES = ("127.0.0.1", "localhost")


def _bound_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return sockname[1] if sockname else None


def is_allowed_origin(origin: str, request: web.Request) -> bool:
    """Only our extension may call the API from a browser; web pages (and DNS-rebound hosts) never."""
    allowed_ids = request.app[CONFIG].current.allowed_extension_ids()
    if origin.startswith("chrome-extension://"):
        return origin.removeprefix("chrome-extension://") in allowed_ids or origin in request.app[OPTIONS].extra_origins
    # Firefox gives each install a random moz-extension UUID, so it cannot be pinned; the token still guards.
    return origin.startswith("moz-extension://") or origin in request.app[OPTIONS].extra_origins


def _check_host(request: web.Request) -> None:
    """Host must name loopback and our own port: a page on evil.example rebound to 127.0.0.1 sends its own Host."""
    host = request.headers.get("Host", "")
    port = _bound_port(request)
    if host not in {f"{name}:{port}" for name in LOCAL_HOSTNAMES}:
        raise Forbidden("Request refused: Host must be 127.0.0.1 or localhost with the daemon's port")


def _cors_headers(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Headers": "Authorization, Content-Type, If-None-Match",
        "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
        "Access-Control-Expose-Headers": "ETag, X-Map-Header",
        "Vary": "Origin",
    }


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    _check_host(request)
    origin = request.headers.get("Origin")
    if origin is not None and not is_allowed_origin(origin, request):
        raise Forbidden("Request refused: unknown Origin")
    if request.method == "OPTIONS":  # CORS preflight carries no Authorization header
        return web.Response(status=204, headers=_cors_headers(origin))
    expected = request.app[OPTIONS].token
    supplied = request.headers.get("Authorization", "")
    if not hmac.compare_digest(supplied.encode(), f"Bearer {expected}".encode()):
        raise Unauthorized()
    response = await handler(request)
    if origin and not response.prepared:
        response.headers.update(_cors_headers(origin))
    return response


def create_app(options: ServeOptions, config_store: ConfigStore | None = None) -> web.Application:
    """The whole daemon as an aiohttp application; tests call this same factory with temp dirs."""
    app = web.Application(middlewares=[error_middleware, guard_middleware], client_max_size=64 * 1024**2)
    app[OPTIONS] = options
    app[CONFIG] = config_store if config_store is not None else ConfigStore()
    app[STORE] = Store(config.index_dir())
    app[SEARCH_PAGES] = PageCache()
    app.cleanup_ctx.extend(cleanup_contexts())
    app.on_shutdown.extend(shutdown_hooks())
    app.router.add_routes(ROUTES)
    return app
