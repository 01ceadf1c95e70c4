"""Typed keys for the long-lived objects an application holds; handler modules import these, never globals."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field

from aiohttp import web

from photomapd.config import ConfigStore
from photomapd.invokeai.connection import InvokeAIConnection
from photomapd.jobs import AlbumJobs
from photomapd.model.runner import ModelRunner
from photomapd.search.page_cache import PageCache
from photomapd.store import Store
from photomapd.index.watch import AlbumWatchers


@dataclass(frozen=True)
class ServeOptions:
    """How this daemon was started (CLI flags); everything durable lives in config.json instead."""

    token: str
    model: str | None = None  # overrides config.json's model, e.g. for tests
    pretrained: str | None = None
    watch: bool = True  # live folder watching (each album can still turn it off)
    extra_origins: frozenset[str] = field(default_factory=frozenset)


OPTIONS = web.AppKey("options", ServeOptions)
CONFIG = web.AppKey("config", ConfigStore)
STORE = web.AppKey("store", Store)
EMBEDDER = web.AppKey("embedder", ModelRunner)
JOBS = web.AppKey("jobs", AlbumJobs)
WATCHERS = web.AppKey("watchers", AlbumWatchers)
INVOKEAI = web.AppKey("invokeai", InvokeAIConnection)
SSE_TASKS = web.AppKey("sse_tasks", weakref.WeakSet[asyncio.Task])
SEARCH_PAGES = web.AppKey("search_pages", PageCache)
