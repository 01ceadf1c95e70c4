"""Indexing throughput on 1024×1024 PNGs, three ways, side by side in one process:

  (a) bare model forward on pre-decoded tensors (the ceiling),
  (b) our end-to-end index run through the albums' owner (scan, decode pool overlapped with the forward,
      metadata, LanceDB commits), as the daemon runs it,
  (c) a naive pipeline: decode a batch of 8 with open_clip's own transform, then forward, no overlap.

Also: forward throughput of candidate default models (random weights: the cost is the architecture's, not the
weights'), for the quality-per-CPU-cost choice in BENCHMARKS.md.

    .venv/bin/python bench/bench_index.py [--images 192] [--models]

Goal (foundation issue): b/a >= 0.9 and b/c >= 3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from photomapd.config import AlbumConfig, Config, ConfigStore
from photomapd.index.progress import IndexProgress
from photomapd.index.run import BATCH_SIZE
from photomapd.jobs import index_once
from photomapd.model.embed import load_embedder
from photomapd.model.runner import ModelRunner
from photomapd.store import Store

EDGE_PX = 1024
NAIVE_BATCH = 8
CANDIDATE_MODELS = ["ViT-B-32", "ViT-B-32-256", "MobileCLIP-S1", "MobileCLIP-S2", "MobileCLIP2-S2", "ViT-B-32-SigLIP2-256"]


def make_pngs(folder: Path, count: int) -> list[Path]:
    """Generated-art-like content: smooth gradients plus texture, so PNG sizes (~1–2 MB) resemble real outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:EDGE_PX, 0:EDGE_PX].astype(np.float32) / EDGE_PX
    paths = []
    for i in range(count):
        base = np.stack([np.sin(xx * (3 + i % 7) + i), np.cos(yy * (2 + i % 5)), np.sin((xx + yy) * 4 + i * 0.3)], -1)
        noise = rng.normal(0, 0.08, base.shape).astype(np.float32)
        pixels = np.clip((base * 0.5 + 0.5 + noise) * 255, 0, 255).astype(np.uint8)
        path = folder / f"gen_{i:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def bare_forward(embedder, pixels: np.ndarray, images: int) -> float:
    """Fitted uint8 pixels in, vectors out: the model process's whole share of an index run (normalize + forward)."""
    batch = pixels[:BATCH_SIZE]
    embedder.encode_pixels(batch)  # warm-up
    rounds = max(1, images // BATCH_SIZE)
    start = time.perf_counter()
    for _ in range(rounds):
        embedder.encode_pixels(batch)
    return rounds * len(batch) / (time.perf_counter() - start)


def end_to_end(folder: Path, runner: ModelRunner, data_dir: Path) -> tuple[float, IndexProgress]:
    album = AlbumConfig(key="bench", display_name="Bench", folders=[str(folder)])
    store = Store(data_dir / "index")
    marks: dict[str, float] = {}

    def on_progress(progress: IndexProgress) -> None:
        if progress.phase == "embedding" and "start" not in marks:
            marks["start"] = time.perf_counter()

    # A fresh data dir per round: a first index, map refresh left out (it is not indexing throughput).
    progress = asyncio.run(
        index_once(store, runner, ConfigStore(Config(albums=[album])), "bench", on_progress=on_progress, refresh_map=False)
    )
    elapsed = time.perf_counter() - marks["start"]
    return progress.total / elapsed, progress


def naive(embedder, preprocess, paths: list[Path]) -> float:
    start = time.perf_counter()
    for offset in range(0, len(paths), NAIVE_BATCH):
        batch = [preprocess(Image.open(p).convert("RGB")) for p in paths[offset : offset + NAIVE_BATCH]]
        with torch.inference_mode():
            embedder.model.encode_image(torch.stack(batch))
    return len(paths) / (time.perf_counter() - start)


def model_costs(images: int) -> list[tuple[str, str, str]]:
    rows = []
    for name in CANDIDATE_MODELS:
        # One candidate that cannot load here (e.g. SigLIP2's tokenizer needs transformers and a hub download) must
        # not cost the rest of the table: report why and go on.
        try:
            embedder = load_embedder(name, "none")
        except Exception as exc:  # noqa: BLE001 - any load failure is a row, not the end of the bench
            rows.append((name, "-", f"n/a ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"))
            continue
        size = embedder.input_size
        pixels = np.random.default_rng(0).integers(0, 256, (BATCH_SIZE, *size, 3), dtype=np.uint8)
        rows.append((name, str(size[0]), f"{bare_forward(embedder, pixels, images):.1f}"))
        del embedder
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--models", action="store_true", help="also time the candidate default models")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of a, b, c (best of each)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["PHOTOMAP_CACHE_DIR"] = str(tmp_path / "cache")
        paths = make_pngs(tmp_path / "images", args.images)
        mean_mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
        runner = ModelRunner("ViT-B-32", "none")  # the index run's: the model in its own process, as in the daemon
        embedder = load_embedder("ViT-B-32", "none")  # a and c time the model itself, in this process
        import open_clip

        _, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
        pixels = np.stack([embedder.decode_file(p).pixels for p in paths[:BATCH_SIZE]])

        # Interleaved rounds, best of each: machine noise hits all three alike and the best round is the least
        # disturbed one.
        rates: dict[str, list[float]] = {"a": [], "b": [], "c": []}
        for _ in range(args.rounds):
            rates["a"].append(bare_forward(embedder, pixels, args.images))
            rate, progress = end_to_end(tmp_path / "images", runner, tmp_path / "data")
            rates["b"].append(rate)
            rates["c"].append(naive(embedder, preprocess, paths))
        runner.close()
        rate_a, rate_b, rate_c = (max(rates[k]) for k in "abc")

        print(f"{args.images} PNGs {EDGE_PX}x{EDGE_PX}, mean {mean_mb:.2f} MB; torch threads {torch.get_num_threads()}, "
              f"cores {os.cpu_count()}, device {embedder.device}; indexed {progress.new}, skipped {progress.skipped_count}")
        print()
        print("| pipeline | img/s | vs (a) |")
        print("|---|---|---|")
        print(f"| (a) bare forward, batch {BATCH_SIZE}, pre-decoded | {rate_a:.1f} | 1.00 |")
        print(f"| (b) photomapd IndexRun end to end | {rate_b:.1f} | {rate_b / rate_a:.2f} |")
        print(f"| (c) naive: decode 8, then forward | {rate_c:.1f} | {rate_c / rate_a:.2f} |")
        print(f"\nb/a = {rate_b / rate_a:.2f} (goal >= 0.9), b/c = {rate_b / rate_c:.2f} (goal >= 3)")

        if args.models:
            print("\n| model | input px | forward img/s (batch 32) |")
            print("|---|---|---|")
            for name, size, rate in model_costs(args.images):
                print(f"| {name} | {size} | {rate} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
