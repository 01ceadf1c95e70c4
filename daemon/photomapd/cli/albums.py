"""`photomapd album add|list|remove`, `index` with a progress bar, and `search`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING
from photomapd import config
from photomapd.cli._flags import add_model_flags
from photomapd.errors import NotIndexed

if TYPE_CHECKING:
    from photomapd.model_runner import ModelRunner


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


def register_albums(sub: argparse._SubParsersAction) -> None:
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
    add_model_flags(index)
    index.set_defaults(func=cmd_index)

    search = sub.add_parser("search", help="search an album by text")
    search.add_argument("key", help="album key")
    search.add_argument("text", help="what to look for, e.g. 'a red fox in the snow'")
    search.add_argument("--negative", help="text to steer away from")
    search.add_argument("--limit", type=int, default=20, help="number of results (default 20)")
    search.add_argument("--json", action="store_true", help="print JSON")
    add_model_flags(search)
    search.set_defaults(func=cmd_search)
