"""`ModelRunner`: the idle unload (real ViT-B-32, random weights, real RSS) and the text vectors' cache, sharing
and batching. Runners that unload are built here; the session's shared `model_runner` never unloads (idle 0)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
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


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture
def idle_runner() -> Any:
    """A runner that unloads after IDLE_S."""
    runner = ModelRunner("ViT-B-32", "none", idle_unload_s=IDLE_S)
    yield runner
    runner.close()


# --- idle unload ----------------------------------------------------------------------------------------------------


def process_rss_mb(pid: int) -> float | None:
    """The model process's RSS, or None once it has exited (a zombie waiting to be reaped has no VmRSS)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), None)


@needs_proc
def test_the_idle_model_process_exits_and_takes_its_memory_with_it(idle_runner: ModelRunner) -> None:
    assert not idle_runner.is_loaded  # lazy: nothing started until the first call
    pid = idle_runner.call_sync(lambda model: model.pid)
    assert pid != os.getpid()
    loaded = process_rss_mb(pid)
    assert loaded is not None and loaded > 300, f"a loaded ViT-B-32 process holds only {loaded} MB"

    wait_until(lambda: not idle_runner.is_loaded, "the idle unload")
    assert idle_runner.unloads == 1
    wait_until(lambda: process_rss_mb(pid) is None, f"model process {pid} to exit")


def test_the_callers_process_never_imports_torch(tmp_path: Path) -> None:
    """What keeps a resting daemon light: texts and pixels go to the model process; torch stays there."""
    script = (
        "import sys\n"
        "from photomapd.model.runner import ModelRunner\n"
        "runner = ModelRunner('ViT-B-32', 'none')\n"
        "vector = runner.call_sync(lambda model: model.encode_texts(['a red fox']))[0]\n"
        "pixels = runner.call_sync(lambda model: model.encode_pixels([__import__('numpy').zeros((224, 224, 3), 'uint8')]))\n"
        "runner.close()\n"
        "print(vector.shape[0], pixels.shape[0], 'torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["512", "1", "False", "False"]


@needs_proc
def test_a_model_process_outlives_no_daemon_killed_with_sigkill(tmp_path: Path) -> None:
    """kill -9 gives the daemon no chance to stop its model process: the process must notice and exit by itself."""
    script = (
        "import os, signal\n"
        "from photomapd.model.runner import ModelRunner\n"
        "if __name__ == '__main__':\n"
        "    pid = ModelRunner('ViT-B-32', 'none').call_sync(lambda model: model.pid)\n"
        "    print(pid, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    (tmp_path / "daemon.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "daemon.py")], capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    orphan = int(done.stdout.strip())
    try:
        wait_until(lambda: process_rss_mb(orphan) is None, f"the orphaned model process {orphan} to exit")
    finally:
        if process_rss_mb(orphan) is not None:
            os.kill(orphan, signal.SIGKILL)


@needs_proc
def test_a_killed_model_process_is_replaced_by_the_next_call(idle_runner: ModelRunner) -> None:
    first = idle_runner.call_sync(lambda model: model.encode_texts(["a lighthouse"]))[0]
    pid = idle_runner.call_sync(lambda model: model.pid)
    os.kill(pid, signal.SIGKILL)  # what the OOM killer does to the biggest process
    wait_until(lambda: process_rss_mb(pid) is None, "the kill")

    again = idle_runner.call_sync(lambda model: model.encode_texts(["a lighthouse"]))[0]  # no error: a new process
    assert idle_runner.call_sync(lambda model: model.pid) != pid
    assert idle_runner.loads == 2
    assert cosine(first, again) > 0.9999  # seeded random weights: the new process has the same model


def test_a_call_after_the_unload_loads_the_model_again(idle_runner: ModelRunner) -> None:
    idle_runner.call_sync(lambda model: model.dim)
    wait_until(lambda: not idle_runner.is_loaded, "the idle unload")

    vector = idle_runner.call_sync(lambda model: model.encode_texts(["a red fox"]))[0]
    assert idle_runner.is_loaded
    assert (idle_runner.loads, idle_runner.unloads) == (2, 1)
    assert vector.shape == (512,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
    wait_until(lambda: not idle_runner.is_loaded, "the second idle unload")  # the watcher keeps watching


def test_the_model_stays_loaded_while_a_call_runs_past_the_idle_timeout(idle_runner: ModelRunner) -> None:
    gate = threading.Event()
    started = threading.Event()

    def hold(model: Any) -> int:
        started.set()
        gate.wait(DEADLINE_S)
        return model.dim

    call = idle_runner.submit(hold)
    wait_until(started.is_set, "the call to start")
    queued = idle_runner.submit(lambda model: model.dim)  # and one waiting behind it
    window = time.monotonic() + 4 * IDLE_S
    while time.monotonic() < window:  # watch a window of four idle timeouts: the model must stay
        assert idle_runner.is_loaded
        time.sleep(0.02)
    gate.set()
    assert call.result(DEADLINE_S) == 512 and queued.result(DEADLINE_S) == 512
    assert idle_runner.unloads == 0
    wait_until(lambda: not idle_runner.is_loaded, "the unload once the calls are done")


def test_a_runner_without_idle_timeout_keeps_its_model(model_runner: ModelRunner) -> None:
    assert model_runner.idle_unload_s == 0
    model_runner.call_sync(lambda model: model.dim)
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
    direct = model_runner.call_sync(lambda model: model.encode_texts(["a cached lighthouse"]))[0]
    assert cosine(first, direct) >= 0.9999
    with pytest.raises(ValueError):
        again[0] = 2.0  # shared by every caller: read-only


def _block(runner: ModelRunner) -> threading.Event:
    """Keep the model thread busy until the returned event is set, as a long index batch would."""
    gate = threading.Event()
    runner.submit(lambda model: gate.wait(DEADLINE_S))
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
    singles = model_runner.call_sync(lambda model: [model.encode_texts([word])[0] for word in words])
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
