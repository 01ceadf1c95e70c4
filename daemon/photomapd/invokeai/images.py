"""The InvokeAI image routes a board album needs (DESIGN §11): list a board's images, fetch files, stars, boards.

Checked against a real InvokeAI 6.14.2 (its /openapi.json and answers):
- `GET /api/v1/images/names?board_id=<id|none>&is_intermediate=false&starred_first=true` →
  `{image_names, starred_count, total_count}`: the names, starred ones first, so the first `starred_count` names are
  exactly the starred set. One cheap request per board gives membership, stars and deletions; `none` is
  Uncategorized. Another user's board: 403; a board that doesn't exist: 404 multi-user, an empty list single-user.
  Intermediates are filtered out by the server.
- `POST /api/v1/images/images_by_names` `{image_names ≤ 1000}` → ImageDTOs (width, height, created_at, board_id,
  starred, ...); names this user may not see are left out silently.
- `GET /api/v1/images/i/{name}/full` → the PNG as InvokeAI saved it, metadata chunks included (so one request gives
  pixels and metadata); `/thumbnail` → a WebP fitting 256 px. Multi-user servers want the bearer token for both
  (401 without it, 403 for another user's image); a missing image is 404.
- `POST /api/v1/images/star|unstar` `{image_names ≤ 1000}` → `{starred_images|unstarred_images, failed_images,
  affected_boards}`; names this user may not change are silently in neither list.
- `POST /api/v1/board_images/batch` `{board_id, image_names ≤ 1000}` → 201 `{added_images, failed_images,
  affected_boards}` (an image is in one board at a time: adding moves it); an unknown board 404, another user's 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable
from urllib.parse import quote

import httpx

from photomapd.errors import BoardImageGone, BoardImageNotAllowed, BoardNotVisible, NotInvokeAI
from photomapd.invokeai.client import UPLOAD_TIMEOUT_S, InvokeAIClient, _check, _json, _json_value

UNCATEGORIZED = "none"  # InvokeAI's own word for "no board" in its routes
ALL_BOARDS = "all"
MAX_NAMES_PER_CALL = 1000  # the server's maxItems on every list body
# A full image over a slow link; the same allowance as an upload, the other large transfer.
FILE_TIMEOUT_S = UPLOAD_TIMEOUT_S


@dataclass(frozen=True)
class BoardImage:
    """One image of a board album, as the server lists it."""

    image_name: str
    board_id: str | None  # None = Uncategorized
    starred: bool


@dataclass(frozen=True)
class ImageInfo:
    """What an ImageDTO says that the listing doesn't."""

    image_name: str
    width: int
    height: int
    created_at: datetime | None


def board_param(board_id: str | None) -> str:
    return UNCATEGORIZED if board_id is None else board_id


async def list_board(client: InvokeAIClient, board: str) -> list[BoardImage]:
    """Every non-intermediate image of one board (`none`: Uncategorized) with its star, in one request."""
    response = await client._request(
        "GET",
        "api/v1/images/names",
        params={"board_id": board, "is_intermediate": "false", "starred_first": "true"},
    )
    if response.status_code in (403, 404) and board != UNCATEGORIZED:
        raise BoardNotVisible(board)
    _check(response)
    body = _json(response)
    names, starred_count = body.get("image_names"), body.get("starred_count")
    if not isinstance(names, list) or not isinstance(starred_count, int):
        raise NotInvokeAI()
    board_id = None if board == UNCATEGORIZED else board
    return [
        BoardImage(image_name=name, board_id=board_id, starred=position < starred_count)
        for position, name in enumerate(names)
        if isinstance(name, str)
    ]


async def album_boards(client: InvokeAIClient, boards: list[str]) -> list[str]:
    """The boards to list for an album: `all` is every board this user sees, plus Uncategorized."""
    if boards != [ALL_BOARDS]:
        return boards
    return [board_param(board.board_id) for board in await client.boards()]


async def list_album(client: InvokeAIClient, boards: list[str]) -> dict[str, BoardImage]:
    """image_name → BoardImage for every image in the album's boards (an image is in one board at a time)."""
    found: dict[str, BoardImage] = {}
    for board in await album_boards(client, boards):
        for image in await list_board(client, board):
            found[image.image_name] = image
    return found


async def image_infos(client: InvokeAIClient, names: Iterable[str]) -> dict[str, ImageInfo]:
    """Size and creation time per name, 1,000 names a request; names the server doesn't show are left out."""
    wanted = list(names)
    infos: dict[str, ImageInfo] = {}
    for start in range(0, len(wanted), MAX_NAMES_PER_CALL):
        chunk = wanted[start : start + MAX_NAMES_PER_CALL]
        response = await client._request("POST", "api/v1/images/images_by_names", json={"image_names": chunk})
        _check(response)
        items = _json_value(response)
        if not isinstance(items, list):
            raise NotInvokeAI()
        for item in items:
            info = _image_info(item)
            if info is not None:
                infos[info.image_name] = info
    return infos


def _image_info(item: Any) -> ImageInfo | None:
    if not isinstance(item, dict) or not isinstance(item.get("image_name"), str):
        return None
    width, height = item.get("width"), item.get("height")
    return ImageInfo(
        image_name=item["image_name"],
        width=width if isinstance(width, int) else 0,
        height=height if isinstance(height, int) else 0,
        created_at=parse_timestamp(item.get("created_at")),
    )


def parse_timestamp(value: Any) -> datetime | None:
    """InvokeAI's `2026-12-01 12:20:17.208` (UTC, no zone); None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        return None


async def _file(client: InvokeAIClient, image_name: str, kind: str) -> tuple[bytes, str]:
    response = await client._request(
        "GET",
        f"api/v1/images/i/{quote(image_name, safe='')}/{kind}",  # one path segment, whatever the name holds
        timeout=httpx.Timeout(FILE_TIMEOUT_S, connect=3.0),
    )
    if response.status_code == 404:
        raise BoardImageGone()
    if response.status_code == 403:
        raise BoardImageNotAllowed()
    _check(response)
    return response.content, response.headers.get("content-type", "application/octet-stream")


async def full_image(client: InvokeAIClient, image_name: str) -> tuple[bytes, str]:
    """The image as InvokeAI keeps it (metadata chunks included) and its content type."""
    return await _file(client, _safe_name(image_name), "full")


async def thumbnail(client: InvokeAIClient, image_name: str) -> tuple[bytes, str]:
    """InvokeAI's own 256 px WebP of the image."""
    return await _file(client, _safe_name(image_name), "thumbnail")


def _safe_name(image_name: str) -> str:
    """Image names are InvokeAI's `<uuid>.png`; a row holding anything with a path separator is not one of them."""
    if not image_name or "/" in image_name or "\\" in image_name or image_name in (".", ".."):
        raise BoardImageGone()
    return image_name


async def set_starred(client: InvokeAIClient, names: list[str], starred: bool) -> list[str]:
    """Star or unstar; returns the names the server changed (others were not this user's to change)."""
    route, answer_key = ("star", "starred_images") if starred else ("unstar", "unstarred_images")
    changed: list[str] = []
    for start in range(0, len(names), MAX_NAMES_PER_CALL):
        chunk = names[start : start + MAX_NAMES_PER_CALL]
        response = await client._request("POST", f"api/v1/images/{route}", json={"image_names": chunk})
        _check(response)
        done = _json(response).get(answer_key)
        changed += [name for name in done if isinstance(name, str)] if isinstance(done, list) else []
    return changed


async def add_to_board(client: InvokeAIClient, board_id: str, names: list[str]) -> list[str]:
    """Move images into a board (an image is in one board at a time); returns the names the server moved."""
    added: list[str] = []
    for start in range(0, len(names), MAX_NAMES_PER_CALL):
        chunk = names[start : start + MAX_NAMES_PER_CALL]
        response = await client._request(
            "POST", "api/v1/board_images/batch", json={"board_id": board_id, "image_names": chunk}
        )
        if response.status_code in (403, 404):
            raise BoardNotVisible(board_id)
        _check(response)
        done = _json(response).get("added_images")
        added += [name for name in done if isinstance(name, str)] if isinstance(done, list) else []
    return added


async def newest(client: InvokeAIClient, board: str | None) -> tuple[int, str | None]:
    """(how many images, the newest one's name) of one board, or of every image this user sees (`board` None): the
    live poller's cheap "anything new?" question, one DTO long (`GET …/images/?limit=1`, newest first)."""
    params = {"is_intermediate": "false", "limit": "1", "offset": "0", "order_dir": "DESC", "starred_first": "false"}
    if board is not None:
        params["board_id"] = board
    response = await client._request("GET", "api/v1/images/", params=params)
    if response.status_code in (403, 404) and board is not None and board != UNCATEGORIZED:
        raise BoardNotVisible(board)
    _check(response)
    body = _json(response)
    total, items = body.get("total"), body.get("items")
    if not isinstance(total, int) or not isinstance(items, list):
        raise NotInvokeAI()
    first = _image_info(items[0]) if items else None
    return total, first.image_name if first is not None else None
