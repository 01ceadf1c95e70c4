"""`photomapd invokeai probe|show|set|boards`: the InvokeAI backend from the terminal.

`set` goes through the running daemon (it owns config.json and secrets.json, and rebuilds its InvokeAI client from
them) or, with none running, writes here under the instance lock. The others only read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from photomapd import config
from photomapd.cli._remote import DaemonClient
from photomapd.cli._writer import add_wait_flag, single_writer
from photomapd.errors import PhotoMapError

if TYPE_CHECKING:
    from photomapd.invokeai.client import Board


def cmd_invokeai_probe(args: argparse.Namespace) -> int:
    from photomapd.invokeai.client import probe

    result = asyncio.run(probe(args.url))
    if not result.ok:
        print(result.message, file=sys.stderr)
        return 1
    print(result.version)
    return 0


def cmd_invokeai_show(args: argparse.Namespace) -> int:
    from photomapd.invokeai import credentials

    settings = config.load_config().invokeai
    print(f"url:      {settings.url or '(not set)'}")
    print(f"username: {settings.username or '(none: single-user server)'}")
    print(f"password: {'set' if credentials.load_password() else 'not set'}")  # never the password itself
    print(f"board:    {_board_name(settings)}")
    return 0


def _board_name(settings: config.InvokeAISettings) -> str:
    """The chosen board's name as InvokeAI shows it; its id with a note when the server can't say."""
    if settings.board_id is None:
        return "Uncategorized"
    try:
        boards = asyncio.run(_list_boards(settings))
    except PhotoMapError as err:
        return f"{settings.board_id} (name unknown: {err.message})"
    name = next((board.board_name for board in boards if board.board_id == settings.board_id), None)
    return name if name is not None else f"{settings.board_id} (not on the server any more: choose another board)"


async def _list_boards(settings: config.InvokeAISettings) -> list[Board]:
    from photomapd.invokeai import credentials
    from photomapd.invokeai.client import InvokeAIClient

    async with InvokeAIClient(settings.url, settings.username, credentials.load_password()) as client:
        return await client.boards()


def cmd_invokeai_set(args: argparse.Namespace) -> int:
    # Read before anything else: stdin, not an argument, because arguments are visible to every user in `ps`.
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else "" if args.clear_password else None
    with single_writer(args) as daemon:
        probe = _set_through(daemon, args, password) if daemon is not None else _set_locally(args, password)
    if probe is None:
        print("saved")
    elif probe.get("ok"):
        print(f"saved; InvokeAI {probe.get('version')}")
    else:
        print(f"saved; {probe.get('message')}" if probe.get("message") else "saved")
    return 0


def _set_through(daemon: DaemonClient, args: argparse.Namespace, password: str | None) -> dict[str, Any] | None:
    """PUT /settings/invokeai for the connection, PUT /invokeai/board for the board; the probe of the saved URL."""
    probe: dict[str, Any] | None = None
    if args.url is not None or args.username is not None or password is not None:
        # The route takes the URL every time: without --url, send the saved one back.
        url = args.url if args.url is not None else daemon.get("/settings/invokeai")["url"]
        body: dict[str, Any] = {"url": url}
        if args.username is not None:
            body["username"] = args.username
        if password is not None:
            body["password"] = password  # "" clears it
        probe = daemon.put("/settings/invokeai", body)["probe"]
    if args.board is not None:
        daemon.put("/invokeai/board", {"board_id": args.board or None})
    return probe if probe is not None else daemon.get("/invokeai/probe")  # no URL: {ok: false}, printed as "saved"


def _set_locally(args: argparse.Namespace, password: str | None) -> dict[str, Any] | None:
    from pydantic import SecretStr

    from photomapd.invokeai import credentials
    from photomapd.invokeai.client import probe

    def change(cfg: config.Config) -> None:
        if args.url is not None:
            cfg.invokeai.url = args.url
        if args.username is not None:
            cfg.invokeai.username = args.username.strip()
        if args.board is not None:
            cfg.invokeai.board_id = args.board or None

    cfg = config.ConfigStore().update(change)
    if password is not None:
        credentials.save_password(SecretStr(password) if password else None)
    if not cfg.invokeai.url.strip():
        return None
    return asyncio.run(probe(cfg.invokeai.url)).model_dump(mode="json")


def cmd_invokeai_boards(args: argparse.Namespace) -> int:
    from photomapd.errors import InvokeAINotConfigured

    settings = config.load_config().invokeai
    if not settings.url.strip():
        raise InvokeAINotConfigured()
    for board in asyncio.run(_list_boards(settings)):
        chosen = "*" if board.board_id == settings.board_id else " "
        print(f"{chosen} {board.board_id or '-':<36}  {board.board_name}")
    return 0


def register_invokeai(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("invokeai", help="the InvokeAI backend: probe a URL, show or change settings, list boards")
    commands = group.add_subparsers(dest="invokeai_command", metavar="ACTION", required=True)
    probe = commands.add_parser("probe", help="print the InvokeAI version at URL, or why it can't be used (exit 1)")
    probe.add_argument("url")
    probe.set_defaults(func=cmd_invokeai_probe)
    show = commands.add_parser("show", help="the saved InvokeAI settings (the password only as set / not set)")
    show.set_defaults(func=cmd_invokeai_show)
    change = commands.add_parser("set", help="change InvokeAI settings (through the daemon when it runs)")
    change.add_argument("--url", help="InvokeAI backend URL, saved as typed (e.g. http://localhost:9090)")
    change.add_argument("--username", help="for multi-user servers; '' clears it")
    password = change.add_mutually_exclusive_group()
    password.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    password.add_argument("--clear-password", action="store_true", help="forget the saved password")
    change.add_argument("--board", help="board id uploads go to (see `invokeai boards`); '' for Uncategorized")
    add_wait_flag(change)
    change.set_defaults(func=cmd_invokeai_set)
    boards = commands.add_parser("boards", help="list the boards of the saved InvokeAI server (* = chosen)")
    boards.set_defaults(func=cmd_invokeai_boards)
