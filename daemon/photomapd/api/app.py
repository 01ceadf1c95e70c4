"""Application factory, guard middleware (token, Host, Origin) and error rendering."""

from __future__ import annotations

import hmac
import logging
from typing import Awaitable, Callable, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from photomapd import config
from photomapd.api.keys import CONFIG, OPTIONS, STORE, ServeOptions
from photomapd.config import ConfigStore
from photomapd.errors import Forbidden, PhotoMapError, Unauthorized
from photomapd.store import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
API_PREFIX = "/api/v1"
LOCAL_HOSTNAMES = ("127.0.0.1", "localhost")


async def read_model(request: web.Request, model: type[M], *, empty_means_defaults: bool = False) -> M:
    """The request body validated into `model`; a ValidationError becomes a 422 in the error middleware."""
    body = await request.read()
    if not body and empty_means_defaults:
        body = b"{}"
    return model.model_validate_json(body)


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PhotoMapError as err:
        return error_response(err.status, err.code, err.message)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first['msg']}" if where else first["msg"]
        return error_response(422, "invalid_request", message)


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
    from photomapd.api.routes import ROUTES, cleanup_contexts, shutdown_hooks  # handlers import keys, not this module

    app = web.Application(middlewares=[error_middleware, guard_middleware], client_max_size=64 * 1024**2)
    app[OPTIONS] = options
    app[CONFIG] = config_store if config_store is not None else ConfigStore()
    app[STORE] = Store(config.index_dir())
    app.cleanup_ctx.extend(cleanup_contexts())
    app.on_shutdown.extend(shutdown_hooks())
    app.router.add_routes(ROUTES)
    return app
