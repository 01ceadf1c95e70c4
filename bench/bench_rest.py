"""The daemon at rest and under a crowd: a real `photomapd serve` subprocess on loopback, its RSS read from
/proc/<pid>/status (VmRSS), its text search driven over HTTP by concurrent clients.

    nice -n 10 .venv/bin/python bench/bench_rest.py --idle 20 --clients 50 --rounds 4 --out bench/results/rest.json
    git archive HEAD daemon | tar -x -C /tmp/before     # the same against another checkout, for a before/after:
    nice -n 10 .venv/bin/python bench/bench_rest.py --daemon /tmp/before/daemon

- Model: ViT-B-32 with random weights (same size and cost as trained ones, no download), on the CPU.
- Album: --rows stored 512-d unit vectors written with the daemon's own Store before it starts (no indexing).
- RSS: the daemon's process plus its children (the model process while it runs); after start (no model yet), after one text search (model loaded), after --idle s plus a settle time
  (`model_idle_unload_s` = --idle in config.json; the daemon's default is 600 s), and after the next new text
  (which loads the model again: its latency is reported).
- Crowd: --clients clients at once, each sending --rounds searches (limit 100). "image": by image_id, the floor
  that ranking, page reads and HTTP set with no model in the path; "repeated": the clients cycle through 5 texts
  (the first sight of each included); "distinct": every request a text nobody sent before. p50/p95 of request
  latency and the phase's wall time. The clients run on the same machine as the daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from photomapd.store import Store, TableInfo  # noqa: E402

KEY = "bench"
DIM = 512  # ViT-B-32
MODEL = ("ViT-B-32", "none")
REPEATED_TEXTS = ["a cat on a sofa", "an old castle at night", "a red car", "mountains at dawn", "a robot portrait"]
START_DEADLINE_S = 120.0  # a cold `serve` imports aiohttp + lancedb in seconds; a loaded box takes longer
REQUEST_TIMEOUT_S = 900.0  # the old daemon's queue under 50 clients takes minutes: only a hung daemon stops this
PHASES = ("image", "repeated", "distinct")
SETTLE_S = 10.0  # after the idle timeout: the unload runs gc and malloc_trim before RSS is read


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def own_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0  # exited, not yet reaped


def child_pids(pid: int) -> list[int]:
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:  # exited meanwhile
            continue
        if fields.get("PPid", "").strip() == str(pid):
            children.append(int(status.parent.name))
    return children


def rss_mb(pid: int) -> float:
    """The daemon with its children (the model process, when it runs): what the user's machine pays."""
    return own_rss_mb(pid) + sum(own_rss_mb(child) for child in child_pids(pid))


def write_album(root: Path, rows: int) -> None:
    """The config (album, model, idle timeout) and a table of random unit vectors, as an indexed album leaves them."""
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = Store(root / "data" / "index").create(KEY, TableInfo(model=MODEL[0], pretrained=MODEL[1], dim=DIM))
    table.upsert(
        {"id": i + 1, "path": f"/bench/{i + 1}.png", "folder": "/bench", "mtime_ns": i, "size": i, "width": 512,
         "height": 512, "vector": vector}
        for i, vector in enumerate(vectors)
    )  # fmt: skip


def write_config(root: Path, idle_s: float) -> None:
    (root / "config").mkdir(parents=True, exist_ok=True)
    cfg = {
        "albums": [{"key": KEY, "display_name": "Bench", "folders": ["/bench"], "watch": False}],
        "model": MODEL[0],
        "pretrained": MODEL[1],
        "model_idle_unload_s": idle_s,
    }
    (root / "config" / "config.json").write_text(json.dumps(cfg))


def start_daemon(root: Path, daemon_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(daemon_dir),
        **{f"PHOTOMAP_{name.upper()}_DIR": str(root / name) for name in ("config", "data", "cache")},
    }
    log = open(root / "serve.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "photomapd", "serve", "--port", str(port), "--no-watch"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


class Client:
    def __init__(self, port: int, token: str, clients: int) -> None:
        self.base = f"http://127.0.0.1:{port}/api/v1"
        self.session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"},
            connector=aiohttp.TCPConnector(limit=clients),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        )

    async def wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}")
            try:
                async with self.session.get(f"{self.base}/status") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("serve did not answer /status in time")

    async def search(self, text: str | None = None, image_id: int | None = None) -> float:
        body = {"text": text, "limit": 100} if image_id is None else {"image_id": image_id, "limit": 100}
        started = time.perf_counter()
        async with self.session.post(f"{self.base}/albums/{KEY}/search", json=body) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"search answered {resp.status}: {body[:200]!r}")
        return time.perf_counter() - started


async def crowd(client: Client, clients: int, rounds: int, kind: str, rows: int) -> dict[str, float]:
    async def one(index: int) -> list[float]:
        seconds = []
        for round_no in range(rounds):
            if kind == "image":  # "more like this": the same ranking and page reads, no model at all
                seconds.append(await client.search(image_id=1 + (index * rounds + round_no) % rows))
            elif kind == "distinct":
                seconds.append(await client.search(f"a distinct query from client {index} round {round_no}"))
            else:
                seconds.append(await client.search(REPEATED_TEXTS[(index + round_no) % len(REPEATED_TEXTS)]))
        return seconds

    started = time.perf_counter()
    per_client = await asyncio.gather(*(one(index) for index in range(clients)))
    wall = time.perf_counter() - started
    ms = np.asarray([s for seconds in per_client for s in seconds]) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max()), "requests": int(ms.size), "wall_s": wall}  # fmt: skip


async def bench(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    write_config(root, args.idle)
    write_album(root, args.rows)
    port = free_port()
    proc = start_daemon(root, args.daemon, port)
    result: dict[str, Any] = {"daemon": str(args.daemon), "idle_s": args.idle, "rows": args.rows}
    try:
        token_file = root / "config" / "token"
        deadline = time.monotonic() + START_DEADLINE_S
        while not token_file.exists() or not token_file.read_text().strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("serve wrote no token")
            await asyncio.sleep(0.1)
        client = Client(port, token_file.read_text().strip(), args.clients)
        try:
            await client.wait_ready(proc)
            rss: dict[str, float] = {"start": rss_mb(proc.pid)}
            result["first_search_s"] = await client.search("a first search")
            rss["after_search"] = rss_mb(proc.pid)
            rss["after_search_daemon_alone"] = own_rss_mb(proc.pid)
            await asyncio.sleep(args.idle + SETTLE_S)
            rss["after_idle"] = rss_mb(proc.pid)
            result["search_after_idle_s"] = await client.search("a search after the rest")
            rss["after_reload"] = rss_mb(proc.pid)
            result["rss_mb"] = rss
            for kind in PHASES:
                result[kind] = await crowd(client, args.clients, args.rounds, kind, args.rows)
            result["rss_mb"]["after_crowd"] = rss_mb(proc.pid)
        finally:
            await client.session.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return result


def report(result: dict[str, Any]) -> None:
    rss = result["rss_mb"]
    print(f"daemon: {result['daemon']}   idle unload after {result['idle_s']:.0f} s   album of {result['rows']} rows")
    print(f"RSS MB: start {rss['start']:.0f}   after one text search {rss['after_search']:.0f}   "
          f"after the idle period {rss['after_idle']:.0f}   after the next search {rss['after_reload']:.0f}   "
          f"after the crowd {rss['after_crowd']:.0f}")  # fmt: skip
    print(f"first search (loads the model) {result['first_search_s']:.1f} s; "
          f"first search after the rest {result['search_after_idle_s']:.1f} s")
    for name in PHASES:
        row = result[name]
        print(f"{name:>9}: {row['requests']} requests   p50 {row['p50_ms']:8.1f} ms   p95 {row['p95_ms']:8.1f} ms   "
              f"max {row['max_ms']:8.1f} ms   wall {row['wall_s']:6.1f} s")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=20.0, help="model_idle_unload_s for the run, seconds")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4, help="searches per client and phase")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--daemon", type=Path, default=Path(__file__).resolve().parents[1] / "daemon",
                        help="the daemon/ folder whose photomapd runs (default: this checkout's)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="photomap-bench-rest-"))
    try:
        result = asyncio.run(bench(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
