"""`photomapd` command line: one module per group of commands, registered here.

Only this package prints or exits: a user error (`PhotoMapError`, or input that fails a pydantic model) is one line
on stderr and a non-zero exit code; anything else is a bug and keeps its traceback. Commands that change something go
through the running daemon, or hold the instance lock while none runs (`cli._writer`, DESIGN §10).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from typing import Callable, Sequence

from pydantic import ValidationError

from photomapd import __version__
from photomapd.cli.albums import register_albums
from photomapd.cli.daemon import register_native, register_serve
from photomapd.cli.invokeai import register_invokeai
from photomapd.cli.metadata import register_metadata
from photomapd.errors import PhotoMapError

INPUT_ERROR_EXIT = 2  # what argparse exits with for a bad argument: a value a model refuses is the same mistake


# Each concern registers its subcommands here; keep the list in the order `--help` should show them.
REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    register_serve,
    register_albums,
    register_metadata,
    register_invokeai,
    register_native,
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
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    args.command_line = shlex.join(["photomapd", *arguments])  # named in the instance lock, for whoever waits on it
    # Our own messages at INFO; libraries (open_clip, huggingface_hub) only when something is wrong.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("photomapd").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args))
    except PhotoMapError as err:
        print(f"photomapd: {err.message}", file=sys.stderr)
        return err.exit_code
    except ValidationError as err:
        logging.getLogger("photomapd.cli").debug("input refused", exc_info=err)  # -v: where it came from
        print(f"photomapd: {validation_message(err)}", file=sys.stderr)
        return INPUT_ERROR_EXIT
    except KeyboardInterrupt:
        return 130


def validation_message(err: ValidationError) -> str:
    """The first problem, named by its field: `limit: Input should be less than or equal to 200`."""
    first = err.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first['msg']}" if where else str(first["msg"])
