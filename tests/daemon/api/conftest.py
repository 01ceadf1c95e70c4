"""An API client on a real loopback server built by the production factory, plus the headers that pass the guard."""

from __future__ import annotations

from typing import Any

import pytest

from photomapd.api import create_app
from photomapd.api.keys import ServeOptions

TEST_TOKEN = "test-token-0123456789"


@pytest.fixture
def serve_options() -> ServeOptions:
    return ServeOptions(token=TEST_TOKEN, model="ViT-B-32", pretrained="none", watch=False)


@pytest.fixture
async def api(aiohttp_client: Any, serve_options: ServeOptions) -> Any:
    client = await aiohttp_client(create_app(serve_options))
    client.session.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    return client
