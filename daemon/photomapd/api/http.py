"""What every handler module shares: reading a request body into its model, and the one JSON error shape.

Handlers import this, never `api/app.py` (which imports the handlers through the route table).
"""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from photomapd.errors import PhotoMapError

API_PREFIX = "/api/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


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
