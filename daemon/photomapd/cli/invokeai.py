"""`photomapd invokeai probe|show|set|boards`: the InvokeAI backend from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import sys
from photomapd import config


def cmd_invokeai_probe(args: argparse.Namespace) -> int:
    from photomapd.invokeai import probe

    result = asyncio.run(probe(args.url))
    if not result.ok:
        print(result.message, file=sys.stderr)
        return 1
    print(result.version)
    return 0


def cmd_invokeai_show(args: argparse.Namespace) -> int:
    from photomapd import credentials

    settings = config.load_config().invokeai
    print(f"url:      {settings.url or '(not set)'}")
    print(f"username: {settings.username or '(none: single-user server)'}")
    print(f"password: {'set' if credentials.load_password() else 'not set'}")  # never the password itself
    print(f"board:    {settings.board_id or 'Uncategorized'}")
    return 0


def cmd_invokeai_set(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from photomapd import credentials
    from photomapd.invokeai import probe

    def change(cfg: config.Config) -> None:
        if args.url is not None:
            cfg.invokeai.url = args.url
        if args.username is not None:
            cfg.invokeai.username = args.username.strip()
        if args.board is not None:
            cfg.invokeai.board_id = args.board or None

    cfg = config.ConfigStore().update(change)
    if args.password_stdin:  # stdin, not an argument: arguments are visible to every user in `ps`
        credentials.save_password(SecretStr(sys.stdin.readline().rstrip("\r\n")))
    elif args.clear_password:
        credentials.save_password(None)
    result = asyncio.run(probe(cfg.invokeai.url)) if cfg.invokeai.url.strip() else None
    print(f"saved; InvokeAI {result.version}" if result and result.ok else f"saved; {result.message}" if result else "saved")
    return 0


def cmd_invokeai_boards(args: argparse.Namespace) -> int:
    from photomapd import credentials
    from photomapd.errors import InvokeAINotConfigured
    from photomapd.invokeai import InvokeAIClient

    settings = config.load_config().invokeai
    if not settings.url.strip():
        raise InvokeAINotConfigured()

    async def list_boards() -> list[tuple[str | None, str]]:
        async with InvokeAIClient(settings.url, settings.username, credentials.load_password()) as client:
            return [(board.board_id, board.board_name) for board in await client.boards()]

    for board_id, name in asyncio.run(list_boards()):
        chosen = "*" if board_id == settings.board_id else " "
        print(f"{chosen} {board_id or '-':<36}  {name}")
    return 0


def register_invokeai(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("invokeai", help="the InvokeAI backend: probe a URL, show or change settings, list boards")
    commands = group.add_subparsers(dest="invokeai_command", metavar="ACTION", required=True)
    probe = commands.add_parser("probe", help="print the InvokeAI version at URL, or why it can't be used (exit 1)")
    probe.add_argument("url")
    probe.set_defaults(func=cmd_invokeai_probe)
    show = commands.add_parser("show", help="the saved InvokeAI settings (the password only as set / not set)")
    show.set_defaults(func=cmd_invokeai_show)
    change = commands.add_parser("set", help="change InvokeAI settings (stop the daemon first: it keeps its own copy)")
    change.add_argument("--url", help="InvokeAI backend URL, saved as typed (e.g. http://localhost:9090)")
    change.add_argument("--username", help="for multi-user servers; '' clears it")
    password = change.add_mutually_exclusive_group()
    password.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    password.add_argument("--clear-password", action="store_true", help="forget the saved password")
    change.add_argument("--board", help="board id uploads go to; '' for Uncategorized")
    change.set_defaults(func=cmd_invokeai_set)
    boards = commands.add_parser("boards", help="list the boards of the saved InvokeAI server (* = chosen)")
    boards.set_defaults(func=cmd_invokeai_boards)
