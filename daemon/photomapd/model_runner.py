"""The daemon's one model thread. Imports torch only when the model is first needed, so `serve` starts fast."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from photomapd.embed import Embedder

T = TypeVar("T")


def is_random_init(pretrained: str | None) -> bool:
    """`--pretrained none`: the architecture with random weights (tests, benchmarks; nothing to download)."""
    return pretrained is None or pretrained.lower() in {"", "none", "random"}


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
        """(model, pretrained) as a table records them: vectors are comparable only between equal pairs."""
        return self.model_name, "none" if is_random_init(self.pretrained) else str(self.pretrained)

    @property
    def loaded(self) -> Embedder | None:
        return self._embedder

    def _get_or_load(self) -> Embedder:
        if self._embedder is None:
            from photomapd.embed import load_embedder

            self._embedder = load_embedder(self.model_name, self.pretrained)
        return self._embedder

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """For code already off the event loop (the indexer's thread): run `fn(embedder, *args)` on the model thread."""
        return self._pool.submit(lambda: fn(self._get_or_load(), *args)).result()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._get_or_load(), *args))

    async def get(self) -> Embedder:
        return await self.run(lambda embedder: embedder)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
