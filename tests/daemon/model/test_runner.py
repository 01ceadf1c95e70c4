"""`ModelRunner`: the idle unload (real ViT-B-32, random weights, real RSS) and the text vectors' cache, sharing
and batching. Runners that unload are built here; the session's shared `model_runner` never unloads (idle 0)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from photomapd.model.runner import ModelRunner
from photomapd.model.text_cache import TextVectors

IDLE_S = 0.3  # short enough for a test, long enough that a loaded model is seen loaded first
DEADLINE_S = 60.0  # a model load on a busy 2-core machine takes ~10 s

needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RSS is read from /proc (Linux)")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture
def idle_runner(model_runner: Any) -> Any:
    """A runner that unloads after IDLE_S. Depends on the shared runner only so torch and open_clip are already
    imported: what the RSS test measures is then the model alone, not the libraries (which never unload)."""
    runner = ModelRunner("ViT-B-32", "none", idle_unload_s=IDLE_S)
    yield runner
    runner.close()


# --- idle unload ----------------------------------------------------------------------------------------------------


@needs_proc
def test_idle_model_is_unloaded_and_its_memory_given_back(idle_runner: ModelRunner) -> None:
    before = rss_mb()
    assert not idle_runner.is_loaded  # lazy: nothing loaded until the first call
    assert idle_runner.call_sync(lambda embedder: embedder.dim) == 512
    loaded = rss_mb()
    added = loaded - before
    assert added > 100, f"loading ViT-B-32 added only {added:.0f} MB"  # ~88 M float32 parameters

    wait_until(lambda: not idle_runner.is_loaded, "the idle unload")
    assert idle_runner.unloads == 1
    wait_until(lambda: rss_mb() < loaded - added / 2, f"RSS to fall back from {loaded:.0f} MB (before {before:.0f})")


def test_a_call_after_the_unload_loads_the_model_again(idle_runner: ModelRunner) -> None:
    idle_runner.call_sync(lambda embedder: embedder.dim)
    wait_until(lambda: not idle_runner.is_loaded, "the idle unload")

    vector = idle_runner.call_sync(lambda embedder: embedder.encode_texts(["a red fox"]))[0]
    assert idle_runner.is_loaded
    assert (idle_runner.loads, idle_runner.unloads) == (2, 1)
    assert vector.shape == (512,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
    wait_until(lambda: not idle_runner.is_loaded, "the second idle unload")  # the watcher keeps watching


def test_the_model_stays_loaded_while_a_call_runs_past_the_idle_timeout(idle_runner: ModelRunner) -> None:
    gate = threading.Event()
    started = threading.Event()

    def hold(embedder: Any) -> int:
        started.set()
        gate.wait(DEADLINE_S)
        return embedder.dim

    call = idle_runner.submit(hold)
    wait_until(started.is_set, "the call to start")
    queued = idle_runner.submit(lambda embedder: embedder.dim)  # and one waiting behind it
    window = time.monotonic() + 4 * IDLE_S
    while time.monotonic() < window:  # watch a window of four idle timeouts: the model must stay
        assert idle_runner.is_loaded
        time.sleep(0.02)
    gate.set()
    assert call.result(DEADLINE_S) == 512 and queued.result(DEADLINE_S) == 512
    assert idle_runner.unloads == 0
    wait_until(lambda: not idle_runner.is_loaded, "the unload once the calls are done")


def test_an_embedder_a_caller_still_holds_is_taken_back_not_rebuilt(idle_runner: ModelRunner) -> None:
    """An index run keeps the embedder to decode with between batches: after an unload its next batch must run on
    the same weights (random init would otherwise give other ones mid-run)."""
    held = idle_runner.call_sync(lambda embedder: embedder)
    wait_until(lambda: not idle_runner.is_loaded, "the idle unload")

    assert idle_runner.call_sync(lambda embedder: embedder) is held
    assert idle_runner.loads == 1


def test_a_runner_without_idle_timeout_keeps_its_model(model_runner: ModelRunner) -> None:
    assert model_runner.idle_unload_s == 0
    model_runner.call_sync(lambda embedder: embedder.dim)
    window = time.monotonic() + 4 * IDLE_S
    while time.monotonic() < window:
        assert model_runner.is_loaded
        time.sleep(0.02)
    assert model_runner.unloads == 0


# --- text vectors ---------------------------------------------------------------------------------------------------


async def test_a_repeated_text_comes_from_the_cache_without_a_model_call(model_runner: ModelRunner) -> None:
    texts = model_runner.texts
    first = (await model_runner.encode_texts(["a cached lighthouse"]))[0]
    encoded, batches = texts.encoded, texts.batches

    again = (await model_runner.encode_texts(["a cached lighthouse"]))[0]
    assert (texts.encoded, texts.batches) == (encoded, batches)
    assert np.array_equal(first, again)
    direct = model_runner.call_sync(lambda embedder: embedder.encode_texts(["a cached lighthouse"]))[0]
    assert cosine(first, direct) >= 0.9999
    with pytest.raises(ValueError):
        again[0] = 2.0  # shared by every caller: read-only


def _block(runner: ModelRunner) -> threading.Event:
    """Keep the model thread busy until the returned event is set, as a long index batch would."""
    gate = threading.Event()
    runner.submit(lambda embedder: gate.wait(DEADLINE_S))
    return gate


async def test_identical_concurrent_queries_run_the_model_once(model_runner: ModelRunner) -> None:
    texts = model_runner.texts
    encoded, batches = texts.encoded, texts.batches
    gate = _block(model_runner)
    tasks = [asyncio.create_task(model_runner.encode_texts(["a shared kite"])) for _ in range(20)]
    # Scheduled after the tasks' first steps: every lookup happens while the model thread is still busy.
    asyncio.get_running_loop().call_soon(gate.set)
    vectors = [result[0] for result in await asyncio.gather(*tasks)]

    assert (texts.encoded - encoded, texts.batches - batches) == (1, 1)
    assert all(vector is vectors[0] for vector in vectors)


async def test_distinct_texts_waiting_together_are_encoded_in_one_batch(model_runner: ModelRunner) -> None:
    texts = model_runner.texts
    words = [f"a batched query number {n}" for n in range(5)]
    encoded, batches = texts.encoded, texts.batches
    gate = _block(model_runner)
    tasks = [asyncio.create_task(model_runner.encode_texts([word])) for word in words]
    asyncio.get_running_loop().call_soon(gate.set)
    vectors = [result[0] for result in await asyncio.gather(*tasks)]

    assert (texts.encoded - encoded, texts.batches - batches) == (len(words), 1)
    singles = model_runner.call_sync(lambda embedder: [embedder.encode_texts([word])[0] for word in words])
    assert all(cosine(batched, single) >= 0.9999 for batched, single in zip(vectors, singles))
    assert min(cosine(vectors[0], other) for other in vectors[1:]) < 0.9999  # different vectors, in order


async def test_a_client_that_hangs_up_does_not_fail_the_others_sharing_its_text(model_runner: ModelRunner) -> None:
    gate = _block(model_runner)
    leaving = asyncio.create_task(model_runner.encode_texts(["a shared harbour"]))
    staying = asyncio.create_task(model_runner.encode_texts(["a shared harbour"]))
    loop = asyncio.get_running_loop()
    loop.call_soon(leaving.cancel)
    loop.call_soon(gate.set)

    vector = (await staying)[0]
    assert vector.shape == (512,)
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert model_runner.texts.encoded > 0 and len(model_runner.texts) > 0


def test_the_cache_keeps_the_most_recently_used_texts(model_runner: ModelRunner) -> None:
    cache = TextVectors(model_runner.submit, capacity=2)
    for text in ("one", "two", "one", "three"):  # "two" is the least recently used when "three" arrives
        cache.lookup([text])[0].result(DEADLINE_S)
    assert (len(cache), cache.encoded) == (2, 3)

    cache.lookup(["one"])[0].result(DEADLINE_S)
    cache.lookup(["three"])[0].result(DEADLINE_S)
    assert cache.encoded == 3
    cache.lookup(["two"])[0].result(DEADLINE_S)
    assert cache.encoded == 4


async def test_a_closed_runner_fails_text_lookups_and_leaves_nothing_in_flight() -> None:
    runner = ModelRunner("ViT-B-32", "none")  # never loads: the call is refused before any model is needed
    runner.close()
    for _ in range(2):  # the second lookup must not find a stale entry of the first, and hang on it
        with pytest.raises(RuntimeError):
            await runner.encode_texts(["after close"])
    assert len(runner.texts) == 0
