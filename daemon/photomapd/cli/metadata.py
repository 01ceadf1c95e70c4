"""`photomapd metadata FILE...`: the generation metadata embedded in images."""

from __future__ import annotations

import argparse
import json


_SUMMARY_FIELDS = ("generator", "app_version", "created_at", "positive_prompt", "negative_prompt", "seed", "steps",
                   "cfg_scale", "scheduler", "width", "height", "recallable", "error")  # fmt: skip


def cmd_metadata(args: argparse.Namespace) -> int:
    from pathlib import Path

    from photomapd.metadata import read_metadata

    records = {name: read_metadata(Path(name)).model_dump(mode="json") for name in args.files}
    if args.json:
        document = next(iter(records.values())) if len(records) == 1 else records
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    for name, record in records.items():
        print(name)
        for field in _SUMMARY_FIELDS:
            if record.get(field) is not None:
                print(f"  {field}: {record[field]}")
        if record.get("model"):
            print(f"  model: {record['model'].get('name')} ({record['model'].get('base') or 'base unknown'})")
        for lora in record.get("loras") or []:
            print(f"  lora: {lora['name']} @ {lora['weight']}")
        for ref in record.get("reference_images") or []:
            print(f"  reference image: {ref['image_name']} ({ref['model']}, weight {ref['weight']})")
        if record.get("init_image"):
            print(f"  init image: {record['init_image']['image_name']} @ {record['init_image']['strength']}")
    return 0


def register_metadata(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("metadata", help="print the generation metadata embedded in image files")
    parser.add_argument("files", nargs="+", metavar="FILE", help="PNG, JPEG or WebP files")
    parser.add_argument("--json", action="store_true", help="print the full normalized record (with raw) as JSON")
    parser.set_defaults(func=cmd_metadata)
