"""`photomapd album add|edit|list|remove` and `search`; `index` lives in cli/index.py.

Commands that change an album go through the running daemon (it owns config.json and the tables) or, with none
running, work here under the instance lock (`cli._writer`). `list` and `search` only read, so they read directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from photomapd import config
from photomapd.cli._flags import add_model_flags
from photomapd.cli._writer import add_wait_flag, single_writer
from photomapd.cli.index import register_index
from photomapd.errors import BadRequest, ModelMismatch, NotIndexed

if TYPE_CHECKING:
    from photomapd.model.runner import ModelRunner


def _model_runner(args: argparse.Namespace) -> ModelRunner:
    from photomapd.model.runner import ModelRunner

    cfg = config.load_config()
    return ModelRunner(args.model or cfg.model, args.pretrained or cfg.pretrained, precision=cfg.model_precision)


def _album_path(key: str) -> str:
    return f"/albums/{quote(key, safe='')}"


def cmd_album_add(args: argparse.Namespace) -> int:
    from photomapd.albums import AlbumCreate, add_album

    request = AlbumCreate(
        key=args.key,
        display_name=args.name or args.key,
        source="invokeai" if args.boards else "folders",
        folders=args.folders,
        boards=args.boards or [],
        watch=not args.no_watch,
        poll=args.poll,
    )
    with single_writer(args) as daemon:
        if daemon is not None:
            album: dict[str, Any] = daemon.post("/albums", request.model_dump(mode="json"))
            next_step = f"The daemon is indexing it now; follow with: photomapd index {album['key']}"
        else:
            album = add_album(config.ConfigStore(), request).model_dump(mode="json")
            next_step = f"Index it with: photomapd index {album['key']}"
    print(f"Added album '{album['key']}' ({album['display_name']}): {_source_text(album)}")
    print(next_step)
    return 0


def _source_text(album: dict[str, Any]) -> str:
    """Where an album's images come from, as `album add` and `album list` print it."""
    if album.get("source") == "invokeai":
        return "InvokeAI boards " + ", ".join(album.get("boards") or [])
    return ", ".join(album["folders"])


def cmd_album_edit(args: argparse.Namespace) -> int:
    from photomapd.albums import AlbumUpdate, update_album

    request = AlbumUpdate(display_name=args.name, folders=args.folders, boards=args.boards, watch=args.watch, poll=args.poll)
    changes = request.model_dump(mode="json", exclude_none=True)
    if not changes:
        raise BadRequest("Nothing to change: give --name, --folders, --boards, --watch/--no-watch or --poll/--no-poll")
    with single_writer(args) as daemon:
        if daemon is not None:
            album: dict[str, Any] = daemon.patch(_album_path(args.key), changes)
            reindex = "The daemon is updating its index for the new folders"
        else:
            album = update_album(config.ConfigStore(), args.key, request).model_dump(mode="json")
            reindex = f"Update its index with: photomapd index {album['key']}"
    print(f"Updated album '{album['key']}' ({album['display_name']}): {_source_text(album)}")
    if "folders" in changes or "boards" in changes:
        print(reindex)
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
        print(f"{album.key}\t{album.display_name}\t{count}\t{_source_text(album.model_dump(mode='json'))}")
    return 0


def cmd_album_remove(args: argparse.Namespace) -> int:
    with single_writer(args) as daemon:
        if daemon is not None:
            daemon.delete(_album_path(args.key))
        else:
            _remove_locally(args.key)
    print(f"Removed album '{args.key}' (its image files are untouched)")
    return 0


def _remove_locally(key: str) -> None:
    from photomapd.albums import remove_album
    from photomapd.jobs import drop_album_data  # the one deletion path: table, map files, thumbnails
    from photomapd.store import Store

    remove_album(config.ConfigStore(), key)
    drop_album_data(Store(config.index_dir()), key)


def _index_command(args: argparse.Namespace) -> str:
    """The `photomapd index` that makes this album searchable by the model this search would use."""
    given = [(name, getattr(args, name, None)) for name in ("model", "pretrained")]
    flags = [f"--{name} {shlex.quote(value)}" for name, value in given if value]
    return " ".join(["photomapd index", shlex.quote(args.key), *flags])


def cmd_search(args: argparse.Namespace) -> int:
    from photomapd.albums import find_album
    from photomapd.search import SearchRequest, VectorCache, query_vector, search_table
    from photomapd.search.rank import AUTO_CUT_BELOW_BEST
    from photomapd.store import Store

    request = SearchRequest(
        text=args.text, negative_text=args.negative, keywords=args.keywords, min_score=args.min_score,
        auto_cut=not args.all, limit=args.limit,
    )  # fmt: skip  # bad input fails first
    album = find_album(config.load_config(), args.key)
    table = Store(config.index_dir()).open(album.key)
    if table is None:
        raise NotIndexed.in_cli(_index_command(args))
    runner = _model_runner(args)
    try:
        query = asyncio.run(query_vector(request, table, runner))
    except ModelMismatch as exc:  # the panel's wording names a button; a terminal needs the command
        raise ModelMismatch.in_cli(_index_command(args)) from exc
    finally:
        runner.close()
    page = search_table(table, VectorCache(), query, request)
    id_list = ",".join(str(int(hit.id)) for hit in page.results) or "-1"
    paths = {row["id"]: row["path"] for row in table.where(f"id IN ({id_list})", ["id", "path"])}
    if args.json:
        document = page.model_dump(mode="json")
        for hit in document["results"]:
            hit["path"] = paths.get(hit["id"])  # a terminal user names files, not row ids
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    for hit in page.results:
        print(f"{hit.score:.3f}\t{paths.get(hit.id, '?')}")
    if page.cut.mode == "auto" and page.total < page.ranked:
        near = f"{page.total} of {page.ranked} images score within {AUTO_CUT_BELOW_BEST:g} of the best"
        print(f"({near}; --all lists every one)", file=sys.stderr)
    return 0


BOARDS_HELP = (
    "make a board album instead: InvokeAI board ids (photomapd invokeai boards lists them), 'none' for "
    "Uncategorized, or 'all'; images come over InvokeAI's API, nothing is mounted"
)


def register_albums(sub: argparse._SubParsersAction) -> None:
    album = sub.add_parser("album", help="add, edit, list or remove albums (folders of images, or InvokeAI boards)")
    album_sub = album.add_subparsers(dest="album_command", metavar="ACTION", required=True)
    add = album_sub.add_parser(
        "add", help="add an album: a key and one or more image folders, or --boards of the InvokeAI set in Settings"
    )
    add.add_argument("key", help="short id: lowercase letters, digits, '-' or '_' (e.g. invokeai)")
    add.add_argument("folders", nargs="*", help="absolute image folder path(s), e.g. ~/invokeai/outputs/images")
    add.add_argument("--boards", nargs="+", metavar="BOARD", help=BOARDS_HELP)
    add.add_argument("--name", help="display name (default: the key)")
    add.add_argument("--no-watch", action="store_true", help="don't watch the folders for new files")
    add.add_argument("--poll", action="store_true", help="watch by polling (network mounts: SMB/NFS/SSHFS)")
    add_wait_flag(add)
    add.set_defaults(func=cmd_album_add)
    edit = album_sub.add_parser("edit", help="change an album's name, folders or watching (only what you give)")
    edit.add_argument("key")
    edit.add_argument("--name", help="new display name")
    edit.add_argument("--folders", nargs="+", metavar="FOLDER", help="the album's folders from now on (all of them)")
    edit.add_argument("--boards", nargs="+", metavar="BOARD", help="a board album's boards from now on (all of them)")
    edit.add_argument("--watch", action=argparse.BooleanOptionalAction, help="watch the folders for changes")
    edit.add_argument("--poll", action=argparse.BooleanOptionalAction, help="watch by polling (network mounts)")
    add_wait_flag(edit)
    edit.set_defaults(func=cmd_album_edit)
    lister = album_sub.add_parser("list", help="list albums and how many images each has indexed")
    lister.add_argument("--json", action="store_true", help="print JSON")
    lister.set_defaults(func=cmd_album_list)
    remove = album_sub.add_parser("remove", help="remove an album and its index (image files are kept)")
    remove.add_argument("key")
    add_wait_flag(remove)
    remove.set_defaults(func=cmd_album_remove)

    register_index(sub)

    search = sub.add_parser("search", help="search an album by text")
    search.add_argument("key", help="album key")
    search.add_argument("text", help="what to look for, e.g. 'a red fox in the snow'")
    search.add_argument("--negative", help="text to steer away from")
    search.add_argument("--limit", type=int, default=20, help="number of results (default 20)")
    search.add_argument("--keywords", help="words the prompt must contain, e.g. 'castle \"red fox\"'")
    search.add_argument("--min-score", type=float, help="only results scoring at least this (cosine, -1..1)")
    search.add_argument("--all", action="store_true", help="every image ranked: no cut near the best match")
    search.add_argument("--json", action="store_true", help="print JSON")
    add_model_flags(search)
    search.set_defaults(func=cmd_search)
