"""`photomapd` command line. The only module that prints or exits: user errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import TYPE_CHECKING, Callable, Sequence

from photomapd import __version__, config
from photomapd.errors import NotIndexed, PhotoMapError

if TYPE_CHECKING:
    from photomapd.model_runner import ModelRunner

log = logging.getLogger(__name__)

CommandFn = Callable[[argparse.Namespace], int]


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="open_clip model name (default: the config's, ViT-B-32-256)")
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


# --- invokeai -------------------------------------------------------------------------------------------------------


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


def _register_invokeai(sub: argparse._SubParsersAction) -> None:
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


# --- albums, index, search -----------------------------------------------------------------------------------------


def _model_runner(args: argparse.Namespace) -> ModelRunner:
    from photomapd.model_runner import ModelRunner

    cfg = config.load_config()
    return ModelRunner(args.model or cfg.model, args.pretrained or cfg.pretrained)


def cmd_album_add(args: argparse.Namespace) -> int:
    from photomapd.albums import AlbumCreate, add_album

    request = AlbumCreate(
        key=args.key, display_name=args.name or args.key, folders=args.folders, watch=not args.no_watch, poll=args.poll
    )
    album = add_album(config.ConfigStore(), request)
    print(f"Added album '{album.key}' ({album.display_name}): {', '.join(album.folders)}")
    print(f"Index it with: photomapd index {album.key}")
    return 0


def cmd_album_list(args: argparse.Namespace) -> int:
    from photomapd.store import Store

    albums = config.load_config().albums
    if args.json:
        print(json.dumps([album.model_dump(mode="json") for album in albums], indent=2))
        return 0
    if not albums:
        print("No albums yet. Add one with: photomapd album add KEY FOLDER [--name NAME]")
    store = Store(config.index_dir())
    for album in albums:
        table = store.open(album.key)
        count = f"{table.count()} images indexed" if table is not None else "not indexed"
        print(f"{album.key}\t{album.display_name}\t{count}\t{', '.join(album.folders)}")
    return 0


def cmd_album_remove(args: argparse.Namespace) -> int:
    from photomapd import mapview, thumbs
    from photomapd.albums import remove_album
    from photomapd.store import Store

    remove_album(config.ConfigStore(), args.key)
    Store(config.index_dir()).drop(args.key)
    mapview.drop_map(args.key)
    thumbs.forget_album(args.key)
    print(f"Removed album '{args.key}' (its image files are untouched)")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from photomapd.albums import find_album
    from photomapd.indexer import IndexProgress, IndexRun, describe, refresh_derived
    from photomapd.store import AlbumTable, Store

    album = find_album(config.load_config(), args.key)
    runner = _model_runner(args)
    store = Store(config.index_dir())
    bar = tqdm(total=0, unit="img", disable=args.quiet or None, desc=album.key, dynamic_ncols=True)

    def show(progress: IndexProgress) -> None:
        if bar.total != progress.total:
            bar.reset(total=progress.total)
        bar.n = progress.done
        bar.set_postfix_str(progress.phase, refresh=False)
        bar.refresh()

    def after_run(table: AlbumTable, progress: IndexProgress) -> None:
        if not args.no_map:
            refresh_derived(table, album.key, runner)

    try:
        result = IndexRun(album, store, runner, rebuild=args.rebuild, on_progress=show, after_run=after_run).run()
    finally:
        bar.close()
        runner.close()
    for skipped in result.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    if result.state == "failed":
        print(f"photomapd: indexing '{album.key}' failed: {result.message}", file=sys.stderr)
        return 1
    print(f"{album.key}: {describe(result)}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from photomapd.albums import find_album
    from photomapd.search import SearchRequest, VectorCache, query_vector, search_table
    from photomapd.store import Store

    album = find_album(config.load_config(), args.key)
    table = Store(config.index_dir()).open(album.key)
    if table is None:
        raise NotIndexed()
    runner = _model_runner(args)
    request = SearchRequest(text=args.text, negative_text=args.negative, limit=args.limit)
    try:
        query = asyncio.run(query_vector(request, table, runner))
    finally:
        runner.close()
    page = search_table(table, VectorCache(), query, request)
    if args.json:
        print(page.model_dump_json(indent=2))
        return 0
    id_list = ",".join(str(int(hit.id)) for hit in page.results) or "-1"
    paths = {row["id"]: row["path"] for row in table.where(f"id IN ({id_list})", ["id", "path"])}
    for hit in page.results:
        print(f"{hit.score:.3f}\t{paths.get(hit.id, '?')}")
    return 0


def _register_albums(sub: argparse._SubParsersAction) -> None:
    album = sub.add_parser("album", help="add, list or remove albums (folders of images)")
    album_sub = album.add_subparsers(dest="album_command", metavar="ACTION", required=True)
    add = album_sub.add_parser("add", help="add an album: a key and one or more image folders")
    add.add_argument("key", help="short id: lowercase letters, digits, '-' or '_' (e.g. invokeai)")
    add.add_argument("folders", nargs="+", help="absolute image folder path(s), e.g. ~/invokeai/outputs/images")
    add.add_argument("--name", help="display name (default: the key)")
    add.add_argument("--no-watch", action="store_true", help="don't watch the folders for new files")
    add.add_argument("--poll", action="store_true", help="watch by polling (network mounts: SMB/NFS/SSHFS)")
    add.set_defaults(func=cmd_album_add)
    lister = album_sub.add_parser("list", help="list albums and how many images each has indexed")
    lister.add_argument("--json", action="store_true", help="print JSON")
    lister.set_defaults(func=cmd_album_list)
    remove = album_sub.add_parser("remove", help="remove an album and its index (image files are kept)")
    remove.add_argument("key")
    remove.set_defaults(func=cmd_album_remove)

    index = sub.add_parser("index", help="index an album: new and changed files are embedded, removed ones dropped")
    index.add_argument("key", help="album key")
    index.add_argument("--rebuild", action="store_true", help="re-embed every image from scratch")
    index.add_argument("--no-map", action="store_true", help="don't update the semantic map afterwards")
    index.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_flags(index)
    index.set_defaults(func=cmd_index)

    search = sub.add_parser("search", help="search an album by text")
    search.add_argument("key", help="album key")
    search.add_argument("text", help="what to look for, e.g. 'a red fox in the snow'")
    search.add_argument("--negative", help="text to steer away from")
    search.add_argument("--limit", type=int, default=20, help="number of results (default 20)")
    search.add_argument("--json", action="store_true", help="print JSON")
    _add_model_flags(search)
    search.set_defaults(func=cmd_search)


# --- daemon lifecycle, native messaging, install ---------------------------------------------------------------------


def cmd_native_host(args: argparse.Namespace) -> int:
    from logging.handlers import RotatingFileHandler

    from photomapd import native_host

    # stdout belongs to the browser's framing: logs go to a file, never to stdout (stderr ends up in the browser's log)
    log_file = native_host.log_file_path()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(log_file, maxBytes=1024**2, backupCount=1, encoding="utf-8")
    logging.basicConfig(
        force=True,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        handlers=[handler],
    )
    log.info("native host started by %s", " ".join(args.caller) or "(no caller arguments)")
    return native_host.run_stdio()


def cmd_status(args: argparse.Namespace) -> int:
    from photomapd import lifecycle

    daemon = lifecycle.running_daemon()
    if daemon is None:
        print("photomapd is not running")
        return 3  # LSB status code for "not running", so scripts can tell it from an error
    print(f"photomapd {daemon.version} is running at {daemon.url} (pid {daemon.pid})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from photomapd import lifecycle

    stopped = lifecycle.stop_daemon(timeout_s=args.timeout)
    print(f"photomapd (pid {stopped.pid}) stopped" if stopped else "photomapd is not running")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from photomapd import install

    browsers = install.BROWSERS if args.browser == "all" else (args.browser,)
    target = install.Target.current()
    written = install.install(target, browsers, args.extension_id or (), autostart_at_login=not args.no_autostart)
    for item in written:
        print(f"wrote {item}")
    at_login = "" if args.no_autostart else ", and it starts at login"
    print(f"Done: the PhotoMap extension can now start photomapd{at_login}")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    from photomapd import install

    removed = install.uninstall(install.Target.current())
    for item in removed:
        print(f"removed {item}")
    print("Done: native-messaging host and login start removed (albums, index and settings are kept)")
    return 0


def _register_native(sub: argparse._SubParsersAction) -> None:
    host = sub.add_parser("native-host", help="native-messaging host the browser starts (stdio frames; not for humans)")
    # Browsers add their own arguments (Chrome: the caller origin, --parent-window on Windows; Firefox: the manifest
    # path and add-on id); the launcher puts them after `--`, and they are only logged.
    host.add_argument("caller", nargs="*", help=argparse.SUPPRESS)
    host.set_defaults(func=cmd_native_host)

    status = sub.add_parser("status", help="is the daemon running, on which port (exit code 3 when not)")
    status.set_defaults(func=cmd_status)

    stop = sub.add_parser("stop", help="stop the running daemon (an in-flight index batch is committed first)")
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for it to exit (default 30)")
    stop.set_defaults(func=cmd_stop)

    install = sub.add_parser("install", help="register the native-messaging host with browsers, and start at login")
    install.add_argument(
        "--browser",
        choices=["chrome", "chromium", "edge", "brave", "firefox", "all"],
        default="all",
        help="which browser to register with (default: all)",
    )
    install.add_argument(
        "--extension-id",
        action="append",
        metavar="ID",
        help="extension id allowed to call the host; repeatable; Chrome ids and Firefox ids (name@domain) are told "
        f"apart by shape (default: {config.DEFAULT_EXTENSION_ID} and photomap@photomap.dev)",
    )
    install.add_argument("--no-autostart", action="store_true", help="don't start the daemon at login")
    install.set_defaults(func=cmd_install)

    uninstall = sub.add_parser("uninstall", help="remove what install wrote (albums, index and settings are kept)")
    uninstall.set_defaults(func=cmd_uninstall)


# --- entry point ----------------------------------------------------------------------------------------------------

# Each concern registers its subcommands here; keep the list in the order `--help` should show them.
REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _register_serve,
    _register_albums,
    _register_metadata,
    _register_invokeai,
    _register_native,
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
    except KeyboardInterrupt:
        return 130
