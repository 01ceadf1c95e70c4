"""Update Index on a 100k-file album with 100 new, 10 changed and 10 removed files: the time spent outside the
embedding of those 110 files (scan, stat diff, delete, commits, compaction), which is what our design controls.

The 100k files are real (tiny PNGs on disk, so the scan is a real walk); their 100k rows are written straight into a
real LanceDB table with random unit vectors, matching each file's (mtime_ns, size), as a finished first index would.

    .venv/bin/python bench/bench_update.py [--files 100000]

Goal (foundation issue): < 10 s excluding the embedding of the 110 files.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from photomapd.config import AlbumConfig, Config, ConfigStore
from photomapd.index.progress import IndexProgress
from photomapd.jobs import index_once
from photomapd.model.runner import ModelRunner
from photomapd.index.scan import scan_folders
from photomapd.store import Store, TableInfo

DIM = 512
FILES_PER_FOLDER = 1_000  # like InvokeAI's flat outputs/images, but split so the bench's own setup stays quick
ROWS_PER_WRITE = 20_000


def tiny_png(path: Path, seed: int) -> None:
    Image.new("RGB", (8, 8), ((seed * 7) % 256, (seed * 13) % 256, (seed * 29) % 256)).save(path)


def build_album(root: Path, count: int) -> None:
    root.mkdir(parents=True)
    template = root / "template.png"
    tiny_png(template, 1)
    data = template.read_bytes()
    template.unlink()
    for i in range(count):
        folder = root / f"batch_{i // FILES_PER_FOLDER:04d}"
        if i % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        (folder / f"img_{i:06d}.png").write_bytes(data)


def fill_table(store: Store, root: Path) -> None:
    table = store.create("big", TableInfo(model="ViT-B-32", pretrained="none", dim=DIM))
    rng = np.random.default_rng(0)
    rows = []
    for row_id, found in enumerate(scan_folders([str(root)]), start=1):
        vector = rng.standard_normal(DIM).astype(np.float32)
        vector /= np.linalg.norm(vector)
        rows.append({"id": row_id, "path": found.path, "folder": found.folder, "mtime_ns": found.mtime_ns,
                     "size": found.size, "width": 8, "height": 8, "vector": vector})
        if len(rows) == ROWS_PER_WRITE:
            table.upsert(rows)
            rows = []
    table.upsert(rows)
    table.compact()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        os.environ["PHOTOMAP_CACHE_DIR"] = str(Path(tmp) / "cache")
        t0 = time.perf_counter()
        build_album(root, args.files)
        store = Store(Path(tmp) / "index")
        fill_table(store, root)
        setup_s = time.perf_counter() - t0

        files = sorted(root.rglob("*.png"))
        for path in files[:10]:
            path.unlink()  # removed
        for i, path in enumerate(files[10:20]):
            tiny_png(path, 1000 + i)  # changed content
            os.utime(path, ns=(path.stat().st_mtime_ns + 10**9, path.stat().st_mtime_ns + 10**9))
        for i in range(100):
            tiny_png(root / "batch_0000" / f"new_{i:03d}.png", 5000 + i)  # new

        runner = ModelRunner("ViT-B-32", "none")
        runner.call_sync(lambda e: e)  # the model load is not part of an update's cost in the daemon (it stays loaded)
        forward_s = 0.0
        real_call = runner.call_sync

        def timed_call(fn, *a):  # type: ignore[no-untyped-def]
            nonlocal forward_s
            start = time.perf_counter()
            result = real_call(fn, *a)
            forward_s += time.perf_counter() - start
            return result

        runner.call_sync = timed_call  # type: ignore[method-assign]
        phases: dict[str, float] = {}

        def on_progress(progress: IndexProgress) -> None:
            phases.setdefault(progress.phase, time.perf_counter())

        album = AlbumConfig(key="big", display_name="Big", folders=[str(root)])
        start = time.perf_counter()
        progress = asyncio.run(
            index_once(store, runner, ConfigStore(Config(albums=[album])), "big", on_progress=on_progress, refresh_map=False)
        )
        total_s = time.perf_counter() - start
        runner.close()

        assert progress.state == "done", progress.message
        embed_end = phases.get("optimizing", phases["done"])
        print(f"album: {args.files:,} files; setup (files + table) {setup_s:.1f} s")
        print(f"update: {progress.new} new, {progress.changed} changed, {progress.removed} removed, "
              f"{progress.unchanged:,} unchanged")
        print()
        print("| part of the update | seconds |")
        print("|---|---|")
        print(f"| scan + stat diff + delete (to first embed) | {phases['loading_model'] - phases['scanning']:.2f} |")
        print(f"| decode + embed + commit of 110 files | {embed_end - phases['loading_model']:.2f} |")
        print(f"|   of which model forward (excluded) | {forward_s:.2f} |")
        print(f"| optimize (compaction) | {phases['done'] - embed_end:.2f} |")
        print(f"| **total excluding the forward of the 110** | **{total_s - forward_s:.2f}** |")
        print(f"| total | {total_s:.2f} |")


if __name__ == "__main__":
    main()
