"""`photomapd` command line. The only module that prints or exits: user errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Callable, Sequence

from photomapd import __version__, config
from photomapd.errors import PhotoMapError

log = logging.getLogger(__name__)

CommandFn = Callable[[argparse.Namespace], int]


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="open_clip model name (default: the config's, ViT-B-32)")
    parser.add_argument(
        "--pretrained",
        help="open_clip pretrained tag, or 'none' for random weights (tests and benchmarks; no download)",
    )


# --- serve ----------------------------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from photomapd.api.keys import ServeOptions
    from photomapd.server import serve

    options = ServeOptions(
        token=config.load_or_create_token(),
        model=args.model,
        pretrained=args.pretrained,
        watch=not args.no_watch,
    )
    asyncio.run(serve(options, port=args.port))
    return 0


def _register_serve(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="run the daemon (HTTP API on 127.0.0.1, folder watching)")
    parser.add_argument("--port", type=int, help="port to listen on (default: config, 8765; a free one if taken)")
    parser.add_argument("--no-watch", action="store_true", help="don't watch album folders for changes")
    _add_model_flags(parser)
    parser.set_defaults(func=cmd_serve)


# --- metadata -------------------------------------------------------------------------------------------------------

_SUMMARY_FIELDS = ("generator", "app_version", "created_at", "positive_prompt", "negative_prompt", "seed", "steps",
                   "cfg_scale", "scheduler", "width", "height", "recallable", "error")  # fmt: skip


def cmd_metadata(args: argparse.Namespace) -> int:
    import json
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


def _register_metadata(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("metadata", help="print the generation metadata embedded in image files")
    parser.add_argument("files", nargs="+", metavar="FILE", help="PNG, JPEG or WebP files")
    parser.add_argument("--json", action="store_true", help="print the full normalized record (with raw) as JSON")
    parser.set_defaults(func=cmd_metadata)


# --- entry point ----------------------------------------------------------------------------------------------------

# Each concern registers its subcommands here; keep the list in the order `--help` should show them.
REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _register_serve,
    _register_metadata,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photomapd",
        description="PhotoMap daemon: index, search and map image folders; serve the browser extension.",
    )
    parser.add_argument("--version", action="version", version=f"photomapd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except PhotoMapError as err:
        print(f"photomapd: {err.message}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
