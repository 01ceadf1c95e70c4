"""Album rules: keys, display names and folders are checked when an album is added or edited."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from photomapd.config import AlbumConfig, Config, ConfigStore, cache_dir, config_dir, data_dir
from photomapd.errors import AlbumExists, AlbumInvalid, AlbumNotFound

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_DISPLAY_NAME = 200


class AlbumCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    display_name: str
    folders: list[str] = Field(default_factory=list)
    watch: bool = True
    poll: bool = False
    source: Literal["folders", "invokeai"] = "folders"
    boards: list[str] = Field(default_factory=list)  # board albums: ids, "none" (Uncategorized), or ["all"]


class AlbumUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = None
    folders: list[str] | None = None
    watch: bool | None = None
    poll: bool | None = None
    boards: list[str] | None = None


# Board albums: "none" is InvokeAI's own word for Uncategorized (its routes take board_id=none), "all" is ours.
UNCATEGORIZED_BOARD = "none"
ALL_BOARDS = "all"
MAX_BOARD_ID = 255  # InvokeAI's ids are UUIDs; anything this long is not one


def validate_boards(boards: list[str]) -> list[str]:
    """A board album's boards: at least one, `all` alone, no blanks; de-duplicated, order kept. Whether each board
    exists (for this user) is the server's to say: the API checks that when the album is added or edited."""
    result: list[str] = []
    for raw in boards:
        board = raw.strip()
        if not board or len(board) > MAX_BOARD_ID or not board.isprintable():
            raise AlbumInvalid(f"Board id '{raw}' is not valid")
        if board not in result:
            result.append(board)
    if not result:
        raise AlbumInvalid('A board album needs at least one board: a board id, "none" for Uncategorized, or "all"')
    if ALL_BOARDS in result and len(result) > 1:
        raise AlbumInvalid('"all" already includes every board and Uncategorized: give it alone')
    return result


def validate_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise AlbumInvalid(
            f"Album key '{key}' is not valid: use 1–64 lowercase letters, digits, '-' or '_', starting with a "
            "letter or digit"
        )
    return key


def validate_display_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_DISPLAY_NAME:
        raise AlbumInvalid(f"Display name must be 1–{MAX_DISPLAY_NAME} characters")
    return name


def validate_folders(folders: list[str]) -> list[str]:
    """Absolute, existing, readable directories; normalized and de-duplicated, order kept."""
    if not folders:
        raise AlbumInvalid("An album needs at least one image folder")
    result: list[str] = []
    for raw in folders:
        expanded = os.path.expanduser(raw.strip())
        if not os.path.isabs(expanded):
            raise AlbumInvalid(f"Folder '{raw}' must be an absolute path (e.g. /home/you/invokeai/outputs/images)")
        folder = os.path.normpath(expanded)
        if not os.path.exists(folder):
            raise AlbumInvalid(f"Folder '{folder}' does not exist")
        if not os.path.isdir(folder):
            raise AlbumInvalid(f"'{folder}' is a file, not a folder")
        if not os.access(folder, os.R_OK | os.X_OK):
            raise AlbumInvalid(f"Folder '{folder}' is not readable by this user")
        refuse_special_folder(folder)
        if folder not in result:
            result.append(folder)
    return result


def refuse_special_folder(folder: str) -> None:
    """Folders no album may have: the whole disk and the home dir (every system icon and cached picture would be
    indexed and served), and PhotoMap's own dirs (its thumbnails would be indexed as images, which makes more
    thumbnails). Symlinks are resolved first, so a link to / is refused too."""
    resolved = Path(folder).resolve()
    if resolved == Path(resolved.anchor):
        raise AlbumInvalid(f"Folder '{folder}' is the whole disk: choose the folder your images are in")
    if resolved == Path.home().resolve():
        raise AlbumInvalid(
            f"Folder '{folder}' is your home folder: choose the folder your images are in (e.g. ~/invokeai/outputs/images)"
        )
    for own in (config_dir(), data_dir(), cache_dir()):
        own = own.resolve()
        inside_ours = resolved == own or resolved.is_relative_to(own)
        # A PhotoMap dir inside the album is scanned unless a hidden folder (~/.cache, ~/.local) hides it.
        holds_ours = own.is_relative_to(resolved) and not any(
            part.startswith(".") for part in own.relative_to(resolved).parts
        )
        if inside_ours or holds_ours:
            raise AlbumInvalid(
                f"Folder '{folder}' holds PhotoMap's own files ({own}): its thumbnails would be indexed as images"
            )


def find_album(config: Config, key: str) -> AlbumConfig:
    for album in config.albums:
        if album.key == key:
            return album
    raise AlbumNotFound(key)


def add_album(config_store: ConfigStore, request: AlbumCreate) -> AlbumConfig:
    is_board_album = request.source == "invokeai"
    if is_board_album and request.folders:
        raise AlbumInvalid("A board album takes its images from InvokeAI, not from folders: leave folders empty")
    if not is_board_album and request.boards:
        raise AlbumInvalid('Only a board album (source "invokeai") has boards')
    album = AlbumConfig(
        key=validate_key(request.key),
        display_name=validate_display_name(request.display_name),
        folders=[] if is_board_album else validate_folders(request.folders),
        watch=request.watch,
        poll=request.poll,
        source=request.source,
        boards=validate_boards(request.boards) if is_board_album else [],
    )

    def append(config: Config) -> None:
        if any(existing.key == album.key for existing in config.albums):
            raise AlbumExists(album.key)
        config.albums.append(album)

    config_store.update(append)
    return album


def update_album(config_store: ConfigStore, key: str, request: AlbumUpdate) -> AlbumConfig:
    changes = request.model_dump(exclude_none=True)
    if "display_name" in changes:
        changes["display_name"] = validate_display_name(changes["display_name"])
    if "folders" in changes:
        changes["folders"] = validate_folders(changes["folders"])
    if "boards" in changes:
        changes["boards"] = validate_boards(changes["boards"])

    def apply(config: Config) -> None:
        album = find_album(config, key)
        if album.is_board_album and "folders" in changes:
            raise AlbumInvalid("A board album takes its images from InvokeAI, not from folders: leave folders empty")
        if not album.is_board_album and "boards" in changes:
            raise AlbumInvalid('Only a board album (source "invokeai") has boards')
        for name, value in changes.items():
            setattr(album, name, value)

    return find_album(config_store.update(apply), key)


def remove_album(config_store: ConfigStore, key: str) -> None:
    def drop(config: Config) -> None:
        find_album(config, key)
        config.albums = [album for album in config.albums if album.key != key]

    config_store.update(drop)
