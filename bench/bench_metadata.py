"""Metadata parse speed per file on the fixtures: our chunk reader vs. Pillow (open + .info, and a full decode).

    .venv/bin/python bench/bench_metadata.py [--repeat 50]

Prints a Markdown table for BENCHMARKS.md. Every file is parsed `repeat` times per reader, interleaved so machine
noise hits all readers alike; per-file figures are medians, the summary is p50/p95 over files.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable

from PIL import Image

from photomapd.metadata import read_metadata

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "images"


def pillow_info(path: Path) -> object:
    """What a Pillow-based reader gets without decoding: misses text chunks after IDAT."""
    with Image.open(path) as image:
        return dict(image.info)


def pillow_decode(path: Path) -> object:
    """Pillow's complete text (`.text` after `load()`): decodes every pixel to reach chunks after IDAT."""
    with Image.open(path) as image:
        image.load()
        return dict(getattr(image, "text", {}) or image.info)


READERS: dict[str, Callable[[Path], object]] = {
    "photomapd read_metadata": read_metadata,
    "Pillow open + info": pillow_info,
    "Pillow open + load": pillow_decode,
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    files = sorted(FIXTURES.iterdir())
    timings: dict[str, dict[str, list[float]]] = {name: {f.name: [] for f in files} for name in READERS}
    for path in files:  # warm the page cache and imports
        for reader in READERS.values():
            reader(path)
    for _ in range(args.repeat):
        for path in files:
            for name, reader in READERS.items():
                start = time.perf_counter()
                reader(path)
                timings[name][path.name].append(time.perf_counter() - start)
    medians = {name: {f: statistics.median(t) * 1000 for f, t in per.items()} for name, per in timings.items()}
    ours = medians["photomapd read_metadata"]
    print(f"{len(files)} fixture files, {args.repeat} runs each, per-file median in ms\n")
    print("| reader | p50 ms | p95 ms | max ms | p50 vs ours |")
    print("|---|---|---|---|---|")
    for name, per in medians.items():
        values = list(per.values())
        ratio = percentile(values, 0.5) / percentile(list(ours.values()), 0.5)
        print(f"| {name} | {percentile(values, 0.5):.3f} | {percentile(values, 0.95):.3f} | {max(values):.3f} "
              f"| {ratio:.1f}x |")  # fmt: skip
    print("\n| file | bytes | ours ms | Pillow info ms | Pillow load ms |")
    print("|---|---|---|---|---|")
    for path in files:
        row = [medians[name][path.name] for name in READERS]
        print(f"| {path.name} | {path.stat().st_size:,} | " + " | ".join(f"{value:.3f}" for value in row) + " |")


if __name__ == "__main__":
    main()
