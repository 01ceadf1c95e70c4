"""The daemon's one model thread. Imports torch only when the model is first needed, so `serve` starts fast."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from photomapd.model.names import embedding_names

if TYPE_CHECKING:
    from photomapd.model.embed import Embedder

T = TypeVar("T")


class ModelRunner:
    """The daemon's one model thread: loads the model lazily on first use, then runs calls one at a time, so a
    search and an index run never fight over the 2 cores with two forward passes at once."""

    def __init__(self, model_name: str, pretrained: str | None) -> None:
        self.model_name = model_name
        self.pretrained = pretrained
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photomap-model")
        self._embedder: Embedder | None = None

    @property
    def embedding_names(self) -> tuple[str, str]:
        """The (model, pretrained) pair this runner's vectors are recorded under in a table."""
        return embedding_names(self.model_name, self.pretrained)

    def _get_or_load(self) -> Embedder:
        if self._embedder is None:
            from photomapd.model.embed import load_embedder

            self._embedder = load_embedder(self.model_name, self.pretrained)
        return self._embedder

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """For code already off the event loop (the indexer's thread): run `fn(embedder, *args)` on the model thread."""
        return self._pool.submit(lambda: fn(self._get_or_load(), *args)).result()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._get_or_load(), *args))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
