"""Board albums: images per second indexed from an InvokeAI board over loopback against the same files from a folder,
and the delay from "image finished in InvokeAI" to "searchable in PhotoMap".

The server is a real InvokeAI (`--url`, e.g. one started by `../shared/tools/invokeai-up 9190`) or, by default, the
fake started as its own process on loopback. The images are uploaded into a fresh board first, so both runs embed the
same bytes; the folder run reads them from disk, the board run fetches each `…/full` over HTTP.

    .venv/bin/python bench/bench_boards.py [--images 64] [--url http://127.0.0.1:9190/] [--live 5]

Single-user servers only (a multi-user one would need a login here).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import make_pngs  # noqa: E402

from photomapd.config import AlbumConfig, Config, ConfigStore  # noqa: E402
from photomapd.invokeai.connection import InvokeAIConnection, Target  # noqa: E402
from photomapd.jobs import AlbumJobs, index_once  # noqa: E402
from photomapd.model.runner import ModelRunner  # noqa: E402
from photomapd.store import Store  # noqa: E402

FAKE = Path(__file__).resolve().parents[1] / "tests" / "daemon" / "fake_invokeai.py"
FAKE_PORT = 9193
LIVE_DEADLINE_S = 60.0


def start_fake() -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen([sys.executable, str(FAKE), "--port", str(FAKE_PORT)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    url = process.stdout.readline().decode().strip() + "/"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "api/v1/app/version", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the fake InvokeAI did not start")


def upload_board(url: str, paths: list[Path]) -> str:
    with httpx.Client(base_url=url, timeout=60) as http:
        board = http.post("api/v1/boards/", params={"board_name": f"bench-{time.time_ns()}"}).json()["board_id"]
        for path in paths:
            upload(http, board, path)
    return str(board)


def upload(http: httpx.Client, board: str, path: Path) -> str:
    response = http.post("api/v1/images/upload",
                         params={"image_category": "general", "is_intermediate": "false", "board_id": board},
                         files={"file": (path.name, path.read_bytes(), "image/png")})  # fmt: skip
    response.raise_for_status()
    return str(response.json()["image_name"])


async def index_rate(album: AlbumConfig, runner: ModelRunner, store: Store, connection: InvokeAIConnection | None,
                     count: int) -> float:  # fmt: skip
    jobs = AlbumJobs(store, runner, ConfigStore(Config(albums=[album])), refresh_map=False, invokeai=connection)
    try:
        started = time.perf_counter()
        progress = await jobs.run_index(album.key)
        elapsed = time.perf_counter() - started
    finally:
        await jobs.close()
    assert progress.state == "done" and progress.new == count, progress
    return count / elapsed


async def live_delays(album: AlbumConfig, runner: ModelRunner, store: Store, connection: InvokeAIConnection,
                      url: str, board: str, paths: list[Path]) -> list[float]:  # fmt: skip
    """Upload one image at a time (what InvokeAI does when a generation finishes) and time until its row exists."""
    jobs = AlbumJobs(store, runner, ConfigStore(Config(albums=[album])), refresh_map=False, invokeai=connection)
    table = store.open(album.key)
    assert table is not None
    delays: list[float] = []
    splits: list[tuple[float, float]] = []  # (noticed after, sync took) per image
    try:
        jobs.board_watchers.sync([album])
        with httpx.Client(base_url=url, timeout=60) as http:
            for path in paths:
                await asyncio.sleep(3)  # let the poller back off a little, as between real generations
                name = await asyncio.to_thread(upload, http, board, path)
                finished, finished_wall = time.perf_counter(), time.time()
                deadline = time.monotonic() + LIVE_DEADLINE_S
                while not await asyncio.to_thread(table.count, f"image_name = '{name}'"):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} never appeared; the album's progress: {jobs.progress(album.key)}")
                    await asyncio.sleep(0.02)
                delays.append(time.perf_counter() - finished)
                run = jobs.progress(album.key)  # the sync that brought it in: when it started, how long it took
                if run.started_at is not None:
                    splits.append((run.started_at - finished_wall, time.time() - run.started_at))
    finally:
        await jobs.close()
    for noticed, took in splits:
        print(f"  noticed after {noticed:.2f} s, its sync ran {took:.2f} s")
    return delays


async def run(args: argparse.Namespace, tmp: Path) -> None:
    fake = None
    url = args.url
    if not url:
        fake, url = start_fake()
    try:
        paths = make_pngs(tmp / "images", args.images + args.live)
        board = await asyncio.to_thread(upload_board, url, paths[: args.images])
        runner = ModelRunner("ViT-B-32", "none")
        runner.call_sync(lambda model: model.dim)  # model process up before timing
        store = Store(tmp / "index")
        folder_album = AlbumConfig(key="folder", display_name="Folder", folders=[str(tmp / "images")])
        for extra in paths[args.images :]:
            extra.rename(tmp / extra.name)  # the live images are not in the folder run
        folder_rate = await index_rate(folder_album, runner, store, None, args.images)
        connection = InvokeAIConnection()
        await connection.configure(Target(url=url))
        board_album = AlbumConfig(key="board", display_name="Board", source="invokeai", boards=[board])
        board_rate = await index_rate(board_album, runner, store, connection, args.images)
        delays = await live_delays(board_album, runner, store, connection, url, board,
                                   [tmp / p.name for p in paths[args.images :]])  # fmt: skip
        await connection.aclose()
        runner.close()
        server = "real InvokeAI " + url if args.url else "fake InvokeAI (own process) " + url
        print(f"server: {server}; {args.images} images {paths[0].stat().st_size // 1000} KB-ish PNGs, 1024 px")
        print(f"folder album: {folder_rate:.1f} img/s; board album over loopback: {board_rate:.1f} img/s "
              f"({board_rate / folder_rate:.2f}x)")
        print(f"finished in InvokeAI -> searchable: median {statistics.median(delays):.2f} s, "
              f"max {max(delays):.2f} s over {len(delays)} images ({', '.join(f'{d:.2f}' for d in delays)})")
    finally:
        if fake is not None:
            fake.terminate()
            fake.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--live", type=int, default=5, help="images uploaded one by one for the live delay")
    parser.add_argument("--url", default="", help="a real single-user InvokeAI; default: the fake, on loopback")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name in ("config", "data", "cache"):
            os.environ[f"PHOTOMAP_{name.upper()}_DIR"] = str(tmp / name)
        asyncio.run(run(args, tmp))


if __name__ == "__main__":
    main()
