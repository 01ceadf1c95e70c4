"""The Ray engine against the local pipeline on the same images, in one run (DESIGN §12, BENCHMARKS.md "Ray engine"):

  (a) the local pipeline (decode threads overlapped with the model process), through the albums' owner,
  (b) `--engine ray` on a one-node local Ray cluster (2 CPUs): decode tasks, one embed actor, fragment writes, one
      owner commit per 1,024 rows; timed from the request to the last commit, cluster start-up reported apart,
  (c) the same on a two-"node" `ray.cluster_utils.Cluster` on this machine (2 logical CPUs per node, one embed
      actor per node): what splitting the work costs when both "nodes" share the same two cores.

Every run starts from an empty table and embeds every image; vectors are checked equal across engines.

    .venv/bin/python bench/bench_ray.py [--images 512] [--edge 512] [--json bench/results/ray-512.json]

Goal (issue 14): b/a <= 1.3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photomapd import config
from photomapd.config import AlbumConfig, Config, ConfigStore
from photomapd.scale.engine import RayOptions
from photomapd.jobs import index_once
from photomapd.model.runner import ModelRunner
from photomapd.store import Store

MODEL = ("ViT-B-32", "none")  # the default architecture with random weights: the cost is the architecture's


def make_pngs(folder: Path, count: int, edge: int) -> None:
    """Smooth gradients plus texture (as bench_index.py), so PNG decode cost resembles generated art's."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:edge, 0:edge].astype(np.float32) / edge
    for i in range(count):
        base = np.stack([np.sin(xx * (3 + i % 7) + i), np.cos(yy * (2 + i % 5)), np.sin((xx + yy) * 4 + i * 0.3)], -1)
        noise = rng.normal(0, 0.08, base.shape).astype(np.float32)
        pixels = np.clip((base * 0.5 + 0.5 + noise) * 255, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"g{i:05d}.png")


def index(store: Store, runner: ModelRunner, configs: ConfigStore, key: str, ray: RayOptions | None) -> float:
    started = time.perf_counter()
    result = asyncio.run(index_once(store, runner, configs, key, refresh_map=False, ray=ray))
    seconds = time.perf_counter() - started
    assert result.state == "done", result.message
    return seconds


def vectors(store: Store, key: str) -> np.ndarray:
    table = store.open(key)
    assert table is not None
    rows = table.arrow(["path", "vector"]).sort_by("path")
    return np.stack(rows.column("vector").to_numpy(zero_copy_only=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--edge", type=int, default=512, help="PNG edge in pixels")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    work = Path(tempfile.mkdtemp(prefix="pmbr", dir="/tmp"))  # short: Ray's unix socket paths must fit 107 bytes
    for name in ("config", "data", "cache"):
        os.environ[f"PHOTOMAP_{name.upper()}_DIR"] = str(work / name)
    os.environ.update(RAY_TMPDIR=str(work), RAY_USAGE_STATS_ENABLED="0")
    folder = work / "images"
    make_pngs(folder, args.images, args.edge)
    albums = [AlbumConfig(key=key, display_name=key, folders=[str(folder)]) for key in ("local", "ray1", "ray2")]
    configs = ConfigStore(Config(albums=albums))
    store = Store(config.index_dir())
    runner = ModelRunner(*MODEL)
    figures: dict[str, Any] = {"images": args.images, "edge_px": args.edge, "cpus": os.cpu_count()}
    try:
        runner.call_sync(lambda model: model.dim)  # the model process is up before any timing, for every engine
        figures["local_s"] = index(store, runner, configs, "local", None)

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        figures["ray_start_s"] = time.perf_counter() - started
        figures["ray_s"] = index(store, runner, configs, "ray1", RayOptions())
        ray.shutdown()

        started = time.perf_counter()
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
        nodes.add_node(num_cpus=2)
        nodes.wait_for_nodes()
        ray.init(address=nodes.address, log_to_driver=False)
        figures["two_node_start_s"] = time.perf_counter() - started
        try:
            figures["two_node_s"] = index(store, runner, configs, "ray2", RayOptions(embed_actors=2))
        finally:
            ray.shutdown()
            nodes.shutdown()
        local = vectors(store, "local")
        figures["min_cosine"] = float(min((local * vectors(store, key)).sum(axis=1).min() for key in ("ray1", "ray2")))
    finally:
        runner.close()
        shutil.rmtree(work, ignore_errors=True)

    n = args.images
    figures["local_img_s"] = n / figures["local_s"]
    figures["ray_img_s"] = n / figures["ray_s"]
    figures["two_node_img_s"] = n / figures["two_node_s"]
    figures["ray_over_local"] = figures["ray_s"] / figures["local_s"]
    figures["ray_with_start_over_local"] = (figures["ray_s"] + figures["ray_start_s"]) / figures["local_s"]
    figures["two_node_over_local"] = figures["two_node_s"] / figures["local_s"]
    print(f"{n} PNGs of {args.edge}px, ViT-B-32 random weights, {os.cpu_count()} CPUs")
    print(f"  local pipeline              {figures['local_s']:7.1f} s  {figures['local_img_s']:6.1f} img/s")
    print(f"  ray, 1 node (start {figures['ray_start_s']:4.1f} s) {figures['ray_s']:7.1f} s  "
          f"{figures['ray_img_s']:6.1f} img/s  {figures['ray_over_local']:.2f}x  "
          f"({figures['ray_with_start_over_local']:.2f}x with start)")
    print(f"  ray, 2 nodes (start {figures['two_node_start_s']:4.1f} s) {figures['two_node_s']:6.1f} s  "
          f"{figures['two_node_img_s']:6.1f} img/s  {figures['two_node_over_local']:.2f}x")
    print(f"  min cosine ray vs local     {figures['min_cosine']:.6f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
