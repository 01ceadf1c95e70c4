"""The daemon's one model thread. Imports torch only when the model is first needed, so `serve` starts fast, and
gives the model's memory back after an idle period, so a daemon that runs all day rests light."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import sys
import threading
import time
import weakref
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

import numpy as np

from photomapd.model.names import embedding_names
from photomapd.model.text_cache import TextVectors

if TYPE_CHECKING:
    from photomapd.model.embed import Embedder

log = logging.getLogger(__name__)

T = TypeVar("T")


class ModelRunner:
    """The daemon's one model thread: loads the model lazily on first use, then runs calls one at a time, so a
    search and an index run never fight over the cores with two forward passes at once.

    With `idle_unload_s` > 0 the model is dropped once no call has been pending for that long, and loaded again by
    the next call. The unload runs on the model thread itself and only when nothing is pending, so it can never
    happen under a forward pass; an index run calls the model every batch and so keeps it loaded while it runs.
    """

    def __init__(self, model_name: str, pretrained: str | None, idle_unload_s: float = 0.0) -> None:
        self.model_name = model_name
        self.pretrained = pretrained
        self.idle_unload_s = idle_unload_s  # 0 = keep the model for the runner's life (the CLI, tests, benches)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photomap-model")
        self._embedder: Embedder | None = None
        # After an unload, a caller may still hold the embedder (an index run decodes with it between batches):
        # then its memory was not freed anyway, and the next call takes it back instead of building other weights.
        self._released: weakref.ref[Embedder] | None = None
        self._state = threading.Condition()  # guards the fields below; the idle watcher waits on it
        self._pending = 0  # calls submitted and not finished: the model is in use while this is above 0
        self._idle_since = time.monotonic()
        self._closed = False
        self.loads = 0  # fresh models built, and models dropped after idling (the status page, tests, benches)
        self.unloads = 0
        self.texts = TextVectors(self.submit)
        self._watcher: threading.Thread | None = None
        if idle_unload_s > 0:
            self._watcher = threading.Thread(target=self._watch_idle, name="photomap-model-idle", daemon=True)
            self._watcher.start()

    @property
    def embedding_names(self) -> tuple[str, str]:
        """The (model, pretrained) pair this runner's vectors are recorded under in a table."""
        return embedding_names(self.model_name, self.pretrained)

    @property
    def is_loaded(self) -> bool:
        """Whether the runner holds a model now (False before the first call and after an idle unload)."""
        return self._embedder is not None

    # --- calls --------------------------------------------------------------------------------------------------

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """For code already off the event loop (the indexer's thread): run `fn(embedder, *args)` on the model thread."""
        return self.submit(lambda embedder: fn(embedder, *args)).result()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self.submit(lambda embedder: fn(embedder, *args)))

    async def encode_texts(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Unit vectors for `texts`, in order: cached ones at once, identical texts in flight shared, the rest
        encoded in the model thread's next batch together with whatever other queries are waiting."""
        return [await asyncio.wrap_future(future) for future in self.texts.lookup(texts)]

    def submit(self, fn: Callable[[Embedder], T]) -> Future[T]:
        """Queue `fn(embedder)` on the model thread; the call counts as using the model until its future is done."""
        with self._state:
            self._pending += 1
        try:
            future = self._pool.submit(lambda: fn(self._get_or_load()))
        except BaseException:
            self._call_done(None)
            raise
        # A done callback, not a `finally` in the call: a call cancelled before it starts must count as done too.
        future.add_done_callback(self._call_done)
        return future

    def _call_done(self, _future: Future[Any] | None) -> None:
        with self._state:
            self._pending -= 1
            self._idle_since = time.monotonic()
            self._state.notify_all()

    # --- loading and unloading (model thread only) ------------------------------------------------------------------

    def _get_or_load(self) -> Embedder:
        embedder = self._embedder
        if embedder is not None:
            return embedder
        embedder = self._released() if self._released is not None else None
        if embedder is None:
            from photomapd.model.embed import load_embedder

            embedder = load_embedder(self.model_name, self.pretrained)
            # Building the model leaves a discarded copy of its weights in malloc's free lists (the inference
            # re-parametrization copies the model): trimming keeps a loaded ViT-B-32 at ~1.36 GB, not up to 1.84.
            release_memory()
            # Cached vectors belong to the weights that made them: random-init weights differ on every load.
            self.texts.clear()
            self.loads += 1
        with self._state:
            self._embedder, self._released = embedder, None
            self._state.notify_all()
        return embedder

    def _unload_if_idle(self) -> None:
        with self._state:
            if self._embedder is None or self._pending or not self._idle_expired():
                return  # a call came in since the watcher looked: it keeps the model
            self.unloads += 1  # counted first: whoever sees `is_loaded` turn False sees the count too
            self._released = weakref.ref(self._embedder)
            self._embedder = None
        release_memory()
        log.info("unloaded CLIP %s after %.0f s idle", self.model_name, self.idle_unload_s)

    def _idle_expired(self) -> bool:
        return time.monotonic() - self._idle_since >= self.idle_unload_s

    def _watch_idle(self) -> None:
        """Sleeps until the model has been idle for `idle_unload_s`, then queues the unload on the model thread,
        behind any call submitted meanwhile (which the unload then sees pending, and leaves the model to)."""
        while True:
            with self._state:
                while not self._closed:
                    if self._embedder is None or self._pending:
                        self._state.wait()  # a load or a finished call notifies
                        continue
                    remaining = self._idle_since + self.idle_unload_s - time.monotonic()
                    if remaining <= 0:
                        break
                    self._state.wait(remaining)
                if self._closed:
                    return
            try:
                self._pool.submit(self._unload_if_idle).result()
            except (RuntimeError, CancelledError):  # closed meanwhile
                return
            except Exception:  # never let the watcher die: the model would then stay loaded for good
                log.exception("unloading the idle model failed")

    def close(self) -> None:
        with self._state:
            self._closed = True
            self._state.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._watcher is not None:
            self._watcher.join()


def release_memory() -> None:
    """Hand freed memory back to the OS. Dropping the model frees its tensors to malloc, but reference cycles in
    the module tree wait for a collection, and glibc keeps freed heap pages mapped until asked to trim them."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): the collection is all we can do
            pass
