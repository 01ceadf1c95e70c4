"""InvokeAI settings, boards and the actions that send work back into InvokeAI (DESIGN §4, §5).

Only the daemon talks to InvokeAI; these routes are how the extension asks it to. Shapes (JSON):

- `GET /settings/invokeai` → `{url, username, password_set, board_id, attach_ref_images}` (never the password).
- `PUT /settings/invokeai` ← `{url, username?, password?, board_id?, attach_ref_images?}`: `url` is saved exactly as
  typed, even when the probe fails; an omitted field keeps its value, `""` clears username/password, `null` board_id
  is Uncategorized. → the GET shape plus `probe: {ok, version?, multiuser?, message?, actions?}` (message: one of
  DESIGN §4's four, for the hint under the URL field; `multiuser` false: username/password stay blank; `actions`:
  `{recall|remix|append: {available, reason}}` when ok, reason naming the version needed and the server's).
- `GET /invokeai/probe` → the probe of the saved URL (the settings page on open).
- `GET /invokeai/boards` → `[{board_id: null, board_name: "Uncategorized"}, {board_id, board_name}, ...]`; a failed
  login is an error here, never a silently empty list.
- `PUT /invokeai/board` ← `{board_id}` → `{board_id}`: the board uploads go to.
- `POST /images/{album}/{id}/recall|remix|ref` and `POST /ref-image` → `{ok, message, image_name?, board_name?}`.
  The album routes read the file as `/file` does (confined to the album's folders). `/ref-image` takes raw image
  bytes (any `image/*` or `application/octet-stream` body) or JSON `{url}`, fetched by the daemon under DESIGN §13's
  rules (public addresses or the configured InvokeAI only, 3 redirects, size- and time-capped; see `fetch.py`).

Errors are `{"error": {code, message}}`: 409 `not_recallable` for Remix/Recall on an image without InvokeAI metadata
we recognise, 409 `recall_unsupported` before InvokeAI 6.12, 502 for upstream failures (`backend_unreachable`,
`invokeai_auth_rejected`, ...), 409 `invokeai_not_configured` without a URL.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from typing import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, ConfigDict, SecretStr

from photomapd import errors
from photomapd.api.http import read_model
from photomapd.api.images import album_file, board_image_name, lookup_image
from photomapd.api.keys import CONFIG, INVOKEAI, JOBS
from photomapd.config import Config
from photomapd.errors import FileMissing, RefBytesNotImage, RefImageInvalid, RefImageTooBig
from photomapd.invokeai import credentials
from photomapd.invokeai.actions import (
    already_on_server,
    append_reference,
    send_parameters,
    upload_and_append,
    use_as_reference,
)
from photomapd.invokeai.client import APPEND_SINCE, RECALL_SINCE, ProbeResult, probe, version_tuple
from photomapd.invokeai.connection import InvokeAIConnection, target_from
from photomapd.invokeai.fetch import REF_MAX_BYTES, fetch_image
from photomapd.invokeai.refimage import Upload, prepare_upload
from photomapd.metadata import read_metadata
from photomapd.metadata.model import ImageMetadata


class SettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    username: str | None = None
    password: SecretStr | None = None
    board_id: str | None = None
    attach_ref_images: bool | None = None


class SettingsView(BaseModel):
    url: str
    username: str
    password_set: bool
    board_id: str | None
    attach_ref_images: bool


class ActionAvailability(BaseModel):
    available: bool
    reason: str | None = None  # why not, with the server's version: shown on the greyed button


class ProbeView(ProbeResult):
    """The probe plus what this server can do: a reachable 6.10 is "Connected", but Recall and Remix are not."""

    actions: dict[str, ActionAvailability] | None = None  # recall, remix, append; only when the probe succeeded


class SettingsSaved(SettingsView):
    probe: ProbeView


class BoardChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    board_id: str | None


class RefImageUrl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str


async def open_invokeai(app: web.Application) -> AsyncIterator[None]:
    """One pooled client for the configured InvokeAI for the app's life; settings changes rebuild it."""
    connection = InvokeAIConnection()
    password = await asyncio.to_thread(credentials.load_password)
    await connection.configure(target_from(app[CONFIG].current, password))
    app[INVOKEAI] = connection
    yield
    await connection.aclose()


def _view(cfg: Config, password: SecretStr | None) -> SettingsView:
    settings = cfg.invokeai
    return SettingsView(
        url=settings.url,
        username=settings.username,
        password_set=password is not None,
        board_id=settings.board_id,
        attach_ref_images=settings.attach_ref_images,
    )


def _actions(version: str) -> dict[str, ActionAvailability]:
    running = version_tuple(version)

    def needs(since: tuple[int, int], message: str) -> ActionAvailability:
        if running >= since:
            return ActionAvailability(available=True)
        return ActionAvailability(available=False, reason=f"{message} (this server runs {version})")

    return {
        "recall": needs(RECALL_SINCE, errors.RecallUnsupported.message),
        "remix": needs(RECALL_SINCE, errors.REMIX_NEEDS_VERSION),  # Remix is a recall without the seed
        "append": needs(APPEND_SINCE, errors.APPEND_NEEDS_VERSION),
    }


async def _probe(url: str) -> ProbeView:
    result = await probe(url) if url.strip() else ProbeResult(ok=False)
    actions = _actions(result.version) if result.ok and result.version is not None else None
    return ProbeView(**result.model_dump(), actions=actions)


# --- settings -------------------------------------------------------------------------------------------------------


async def get_settings(request: web.Request) -> web.Response:
    password = await asyncio.to_thread(credentials.load_password)  # a file read: never on the loop
    return web.json_response(_view(request.app[CONFIG].current, password).model_dump(mode="json"))


async def put_settings(request: web.Request) -> web.Response:
    update = (await read_model(request, SettingsUpdate))
    given = update.model_fields_set

    def change(cfg: Config) -> None:
        cfg.invokeai.url = update.url  # as typed: no trimming, no normalizing
        if "username" in given:
            cfg.invokeai.username = (update.username or "").strip()
        if "board_id" in given:
            cfg.invokeai.board_id = update.board_id or None
        if "attach_ref_images" in given and update.attach_ref_images is not None:
            cfg.invokeai.attach_ref_images = update.attach_ref_images

    cfg = await asyncio.to_thread(request.app[CONFIG].update, change)
    if "password" in given:
        await asyncio.to_thread(credentials.save_password, update.password)
    password = await asyncio.to_thread(credentials.load_password)
    await request.app[INVOKEAI].configure(target_from(cfg, password))
    request.app[JOBS].board_watchers.nudge()  # board albums re-list from the new server (or login) at once
    saved = SettingsSaved(**_view(cfg, password).model_dump(), probe=await _probe(update.url))
    return web.json_response(saved.model_dump(mode="json"))


async def get_probe(request: web.Request) -> web.Response:
    result = await _probe(request.app[CONFIG].current.invokeai.url)
    return web.json_response(result.model_dump(mode="json"))


# --- boards ---------------------------------------------------------------------------------------------------------


async def get_boards(request: web.Request) -> web.Response:
    async with request.app[INVOKEAI].client() as client:
        boards = await client.boards()
    return web.json_response([board.model_dump(mode="json") for board in boards])


async def put_board(request: web.Request) -> web.Response:
    choice = (await read_model(request, BoardChoice))

    def change(cfg: Config) -> None:
        cfg.invokeai.board_id = choice.board_id or None

    cfg = await asyncio.to_thread(request.app[CONFIG].update, change)
    return web.json_response({"board_id": cfg.invokeai.board_id})


# --- actions --------------------------------------------------------------------------------------------------------


async def _row_metadata(request: web.Request) -> ImageMetadata:
    """A board album's image: the metadata indexed from the PNG InvokeAI served (nothing to read from disk)."""
    row = await lookup_image(request, ["id", "metadata_json"])
    return ImageMetadata.model_validate_json(row.get("metadata_json") or "{}")


async def _send_parameters(request: web.Request, *, keep_seed: bool) -> web.Response:
    if await board_image_name(request) is not None:
        meta = await _row_metadata(request)
    else:
        _, path = await album_file(request)  # confined like /file: a symlink swapped in can't point elsewhere
        meta = await asyncio.to_thread(read_metadata, path)
    async with request.app[INVOKEAI].client() as client:
        result = await send_parameters(client, meta, keep_seed=keep_seed)
    return web.json_response(result.model_dump(mode="json"))


async def post_recall(request: web.Request) -> web.Response:
    return await _send_parameters(request, keep_seed=True)


async def post_remix(request: web.Request) -> web.Response:
    return await _send_parameters(request, keep_seed=False)


async def _upload_reference(request: web.Request, upload: Upload) -> web.Response:
    settings = request.app[CONFIG].current.invokeai
    async with request.app[INVOKEAI].client() as client:
        result = await use_as_reference(client, upload, settings.board_id, attach=settings.attach_ref_images)
    return web.json_response(result.model_dump(mode="json"))


async def _folder_upload(request: web.Request) -> Upload:
    _, path = await album_file(request)  # confined like /file: a symlink swapped in can't point elsewhere
    try:
        if (await asyncio.to_thread(path.stat)).st_size > REF_MAX_BYTES:
            raise RefImageTooBig(REF_MAX_BYTES)
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise FileMissing() from exc
    return await asyncio.to_thread(prepare_upload, data, path.name)


async def post_image_append(request: web.Request) -> web.Response:
    """Append (≥ 6.14): the image joins the current generation's reference images, nothing else changes. A board
    album's image goes by its name; a folder image is uploaded to the chosen board first."""
    image_name = await board_image_name(request)
    upload = None if image_name is not None else await _folder_upload(request)
    async with request.app[INVOKEAI].client() as client:
        if image_name is not None:
            result = await append_reference(client, image_name)
        else:
            assert upload is not None
            result = await upload_and_append(client, upload, request.app[CONFIG].current.invokeai.board_id)
    return web.json_response(result.model_dump(mode="json"))


async def post_image_ref(request: web.Request) -> web.Response:
    image_name = await board_image_name(request)
    if image_name is not None:  # already on that server: no re-upload, its name is all InvokeAI needs
        row = await lookup_image(request, ["id", "board_id"])
        settings = request.app[CONFIG].current.invokeai
        async with request.app[INVOKEAI].client() as client:
            result = await already_on_server(client, image_name, row.get("board_id"),
                                             attach=settings.attach_ref_images)
        return web.json_response(result.model_dump(mode="json"))
    return await _upload_reference(request, await _folder_upload(request))


async def post_ref_image(request: web.Request) -> web.Response:
    """The context menu's "Use as Ref Image": the image's bytes (data:/blob: sources), or its http(s) URL."""
    if request.content_type == "application/json":
        url = (await read_model(request, RefImageUrl)).url
        data = await fetch_image(url, invokeai_url=request.app[CONFIG].current.invokeai.url)
        name = PurePosixPath(urlsplit(url).path).name or "reference"
        try:
            upload = await asyncio.to_thread(prepare_upload, data, name)
        except RefBytesNotImage as exc:  # an `image/*` answer whose bytes are not one: the address is to blame
            raise RefImageInvalid(errors.REF_NOT_IMAGE) from exc
    else:
        data = await request.read()  # aiohttp's client_max_size already stops a runaway body
        if len(data) > REF_MAX_BYTES:
            raise RefImageTooBig(REF_MAX_BYTES)
        upload = await asyncio.to_thread(prepare_upload, data, "reference")
    return await _upload_reference(request, upload)
