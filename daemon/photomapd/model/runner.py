"""The daemon's one model thread. It starts the model process (model/worker.py) when the model is first needed, so
`serve` starts fast, and stops it after an idle period, so a daemon that runs all day rests light: torch is never
imported in the daemon's own process."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from photomapd.errors import ModelCrashed
from photomapd.model.names import embedding_names
from photomapd.model.text_cache import TextVectors
from photomapd.model.worker import ModelProcess

log = logging.getLogger(__name__)

T = TypeVar("T")


class ModelRunner:
    """The daemon's one model thread: starts the model process lazily on first use, then runs calls one at a time,
    so a search and an index run never fight over the cores with two forward passes at once. A call is a function of
    the `ModelProcess`, run on this thread; the process does the forward passes.

    With `idle_unload_s` > 0 the process is stopped once no call has been pending for that long, and started again
    by the next call. The unload runs on the model thread itself and only when nothing is pending, so it can never
    happen under a forward pass; an index run calls the model every batch and so keeps it loaded while it runs. A
    process found dead is replaced, and the call that found it is run once more on the new one.
    """

    def __init__(
        self, model_name: str, pretrained: str | None, idle_unload_s: float = 0.0, precision: str = "fp32"
    ) -> None:
        self.model_name = model_name
        self.pretrained = pretrained
        self.precision = precision  # asked for (config.json's model_precision); the model process says what it got
        self.idle_unload_s = idle_unload_s  # 0 = keep the model for the runner's life (the CLI, tests, benches)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photomap-model")
        self._process: ModelProcess | None = None
        self._state = threading.Condition()  # guards the fields below; the idle watcher waits on it
        self._pending = 0  # calls submitted and not finished: the model is in use while this is above 0
        self._idle_since = time.monotonic()
        self._closed = False
        self.loads = 0  # model processes started, and stopped after idling (the status page, tests, benches)
        self.unloads = 0
        self.texts = TextVectors(self.submit)
        # Run on the model thread after each idle unload: the daemon drops what it can rebuild on demand too.
        self.on_rest: list[Callable[[], None]] = []
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
        """Whether the model process runs now (False before the first call and after an idle unload)."""
        return self._process is not None

    # --- calls --------------------------------------------------------------------------------------------------

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """For code already off the event loop (the indexer's thread): run `fn(model, *args)` on the model thread."""
        return self.submit(lambda model: fn(model, *args)).result()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self.submit(lambda model: fn(model, *args)))

    async def encode_texts(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Unit vectors for `texts`, in order: cached ones at once, identical texts in flight shared, the rest
        encoded in the model thread's next batch together with whatever other queries are waiting."""
        return [await asyncio.wrap_future(future) for future in self.texts.lookup(texts)]

    def submit(self, fn: Callable[[ModelProcess], T]) -> Future[T]:
        """Queue `fn(model)` on the model thread; the call counts as using the model until its future is done."""
        with self._state:
            self._pending += 1
        try:
            future = self._pool.submit(self._call, fn)
        except BaseException:
            self._call_done(None)
            raise
        # A done callback, not a `finally` in the call: a call cancelled before it starts must count as done too.
        future.add_done_callback(self._call_done)
        return future

    def _call(self, fn: Callable[[ModelProcess], T]) -> T:
        """On the model thread. A process that died while idle (the OOM killer picks the biggest process) is only
        seen dead by the next call: that call is run once more, on a fresh process, instead of failing."""
        try:
            return fn(self._get_or_load())
        except ModelCrashed:
            log.warning("the CLIP %s process died; starting a new one", self.model_name)
            return fn(self._get_or_load())

    def _call_done(self, _future: Future[Any] | None) -> None:
        with self._state:
            self._pending -= 1
            self._idle_since = time.monotonic()
            self._state.notify_all()

    # --- loading and unloading (model thread only) ------------------------------------------------------------------

    def _get_or_load(self) -> ModelProcess:
        process = self._process
        if process is not None and process.alive:
            return process
        if process is not None:  # died under an earlier call: that call failed; this one gets a fresh process
            process.close()
        process = ModelProcess(self.model_name, self.pretrained, self.precision)
        self.loads += 1
        with self._state:
            self._process = process
            self._state.notify_all()
        return process

    def _unload_if_idle(self) -> None:
        with self._state:
            if self._process is None or self._pending or not self._idle_expired():
                return  # a call came in since the watcher looked: it keeps the model
            self.unloads += 1  # counted first: whoever sees `is_loaded` turn False sees the count too
            process, self._process = self._process, None
        process.close()
        log.info("stopped the CLIP %s process after %.0f s idle", self.model_name, self.idle_unload_s)
        for rest in self.on_rest:
            rest()

    def _idle_expired(self) -> bool:
        return time.monotonic() - self._idle_since >= self.idle_unload_s

    def _watch_idle(self) -> None:
        """Sleeps until the model has been idle for `idle_unload_s`, then queues the unload on the model thread,
        behind any call submitted meanwhile (which the unload then sees pending, and leaves the model to)."""
        while True:
            with self._state:
                while not self._closed:
                    if self._process is None or self._pending:
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
        if self._process is not None:
            self._process.close()
            self._process = None
