"""Text vectors for search, so a busy daemon never encodes one text twice.

Three layers, all thread-safe and loop-agnostic (the CLI and the daemon share them): an LRU of encoded texts; a map
of texts in flight, so identical queries arriving together share one forward pass; and one queued batch, so the
distinct texts that arrive while the model thread is busy are encoded together in a single call instead of one
call each. `ModelRunner` owns one of these for its model. The cache outlives an idle unload: a reloaded model has the
same weights (random-init ones are seeded), so a cached vector stays the one it would encode again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from photomapd.model.worker import ModelProcess

# A 512-d float32 vector is 2 KiB (a 1024-d one 4 KiB): 4,096 entries cost 8-16 MiB, far more distinct queries than
# a day of searching, and a repeated one costs a dict lookup instead of a forward pass queued behind an index run.
TEXT_CACHE_ENTRIES = 4096

Submit = Callable[[Callable[["ModelProcess"], list[np.ndarray]]], "Future[list[np.ndarray]]"]


class TextVectors:
    def __init__(self, submit: Submit, capacity: int = TEXT_CACHE_ENTRIES) -> None:
        self._submit = submit  # runs a function of the model on the model thread, returning its future
        self._capacity = capacity
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._in_flight: dict[str, Future[np.ndarray]] = {}
        self._queued: list[str] | None = None  # the batch waiting for the model thread; None once it has started
        self.encoded = 0  # texts that went through the model, and the calls that carried them (tests, benches)
        self.batches = 0

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def lookup(self, texts: Sequence[str]) -> list[Future[np.ndarray]]:
        """One future per text: already done for a cached text, shared with an identical text in flight, otherwise
        added to the batch the model thread takes next (a new batch is submitted when none is waiting)."""
        futures: list[Future[np.ndarray]] = []
        new_batch: list[str] | None = None
        with self._lock:
            for text in texts:
                cached = self._cache.get(text)
                if cached is not None:
                    self._cache.move_to_end(text)
                    futures.append(_done(cached))
                    continue
                future = self._in_flight.get(text)
                if future is None:
                    future = Future()
                    # Running from the start, so no waiter can cancel it: a client that hangs up (its task
                    # cancelled, and with it the wrapping asyncio future) must not fail the others sharing it.
                    future.set_running_or_notify_cancel()
                    self._in_flight[text] = future
                    if self._queued is None:
                        self._queued = new_batch = []
                    self._queued.append(text)
                futures.append(future)
        if new_batch is not None:
            self._start(new_batch)
        return futures

    def _start(self, batch: list[str]) -> None:
        try:
            call = self._submit(lambda model: self._encode(batch, model))
        except BaseException as exc:  # the runner is closed: fail the waiters instead of leaving them hanging
            self._settle(batch, None, exc)
            raise
        call.add_done_callback(lambda done: self._settle(batch, done, None))

    def _encode(self, batch: list[str], model: ModelProcess) -> list[np.ndarray]:
        with self._lock:  # from here on, new texts go into the next batch: this one's list is final
            if self._queued is batch:
                self._queued = None
        vectors = model.encode_texts(batch)
        return [_frozen(row) for row in vectors]

    def _settle(self, batch: list[str], call: Future[list[np.ndarray]] | None, error: BaseException | None) -> None:
        """Hand each waiter its vector (or the error), and cache the vectors, in one step under the lock: a later
        lookup finds a text either in flight or cached, never neither."""
        vectors: list[np.ndarray] | None = None
        if call is not None:
            if call.cancelled():  # the runner closed before the batch ran
                error = RuntimeError("the model runner was closed before this text was encoded")
            elif call.exception() is not None:
                error = call.exception()
            else:
                vectors = call.result()
        with self._lock:
            if self._queued is batch:
                self._queued = None
            waiters = [self._in_flight.pop(text) for text in batch]
            if vectors is not None:
                self.encoded += len(batch)
                self.batches += 1
                for text, vector in zip(batch, vectors):
                    self._cache[text] = vector
                    self._cache.move_to_end(text)
                while len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        for index, waiter in enumerate(waiters):
            if vectors is not None:
                waiter.set_result(vectors[index])
            else:
                waiter.set_exception(error or RuntimeError("text encoding failed"))


def _done(vector: np.ndarray) -> Future[np.ndarray]:
    future: Future[np.ndarray] = Future()
    future.set_result(vector)
    return future


def _frozen(row: np.ndarray) -> np.ndarray:
    """Its own copy (a cached row must not keep the whole batch alive), read-only (it is shared by every caller)."""
    vector = np.array(row, dtype=np.float32, copy=True)
    vector.setflags(write=False)
    return vector
