"""The daemon's one InvokeAI client for the configured server, rebuilt when the URL or the credentials change."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from pydantic import SecretStr

from photomapd.config import Config
from photomapd.errors import InvokeAINotConfigured
from photomapd.invokeai.client import InvokeAIClient


@dataclass(frozen=True)
class Target:
    """Which server and who: a change of any part means a new client (new pool, new login)."""

    url: str
    username: str = ""
    password: SecretStr | None = None  # SecretStr compares by value and prints masked


def target_from(cfg: Config, password: SecretStr | None) -> Target:
    """The server and login Settings name (the password is kept apart from config.json, see credentials)."""
    return Target(url=cfg.invokeai.url, username=cfg.invokeai.username, password=password)


def _default_client(target: Target) -> InvokeAIClient:
    return InvokeAIClient(target.url, target.username, target.password)


class InvokeAIConnection:
    """Hands out the pooled client for the current target; the app holds one of these under an AppKey.

    A replaced client is closed once the requests still using it have finished, so saving settings never cuts an
    upload in half. Clients are built lazily: a URL that doesn't parse raises at the first use, not at saving.
    """

    def __init__(self, make_client: Callable[[Target], InvokeAIClient] = _default_client) -> None:
        self._make_client = make_client
        self._target = Target(url="")
        self._client: InvokeAIClient | None = None
        self._leases: dict[InvokeAIClient, int] = {}  # requests still using each client
        self._retired: list[InvokeAIClient] = []

    async def configure(self, target: Target) -> None:
        if target == self._target:
            return
        self._target = target
        old, self._client = self._client, None
        if old is not None:
            self._retired.append(old)
            await self._close_idle()

    @asynccontextmanager
    async def client(self) -> AsyncIterator[InvokeAIClient]:
        if not self._target.url.strip():
            raise InvokeAINotConfigured()
        if self._client is None:
            self._client = self._make_client(self._target)
        client = self._client
        self._leases[client] = self._leases.get(client, 0) + 1
        try:
            yield client
        finally:
            self._leases[client] -= 1
            await self._close_idle()

    async def _close_idle(self) -> None:
        for old in [client for client in self._retired if self._leases.get(client, 0) == 0]:
            self._retired.remove(old)
            self._leases.pop(old, None)
            await old.aclose()

    async def aclose(self) -> None:
        clients = [*self._retired, *([self._client] if self._client else [])]
        self._retired, self._client = [], None
        for client in clients:
            await client.aclose()
