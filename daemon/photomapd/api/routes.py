"""The whole URL surface on one screen. Every route is under /api/v1 and behind the guard middleware."""

from __future__ import annotations

from typing import AsyncIterator, Callable

from aiohttp import web

from photomapd.api import status
from photomapd.api.app import API_PREFIX

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def _p(path: str) -> str:
    return API_PREFIX + path


ROUTES: list[web.RouteDef] = [
    web.get(_p("/status"), status.get_status),
]


def cleanup_contexts() -> list[CleanupContext]:
    """Long-lived objects, opened in this order and closed in reverse (aiohttp skips cleanups whose startup failed)."""
    return []
