"""What the drawer's buttons do: Recall, Remix and Use as Ref Image (DESIGN §4), on top of the InvokeAI client."""

from __future__ import annotations

from pydantic import BaseModel

from photomapd.errors import AppendUnsupported, BoardNotFound, NotRecallable, PhotoMapError, RecallUnsupported
from photomapd.invokeai.client import ImagesMissing, InvokeAIClient
from photomapd.invokeai.recall import build_recall_body, counted, dropped, image_names, is_recallable, without_images
from photomapd.invokeai.refimage import Upload
from photomapd.metadata.model import ImageMetadata


class ActionResult(BaseModel):
    ok: bool = True
    message: str
    image_name: str | None = None
    board_name: str | None = None


async def send_parameters(client: InvokeAIClient, meta: ImageMetadata, *, keep_seed: bool) -> ActionResult:
    """Recall (`keep_seed`) or Remix: every parameter of `meta`; on ≥ 6.13 strictly, so nothing old lingers."""
    if not is_recallable(meta):
        raise NotRecallable()
    action = "Recall" if keep_seed else "Remix"
    info = await client.info()
    if not info.can_recall:
        raise RecallUnsupported(info.version, action)
    body = build_recall_body(meta, include_seed=keep_seed, reference_images=info.can_strict)
    note = ""
    try:
        kept = await client.recall(body, strict=info.can_strict)
    except ImagesMissing:
        # 403 (a user who is not an admin): a layer names an image this user can't use. The server doesn't say
        # which reason, so the note names both; the rest of the parameters still go.
        refused = len(image_names(body))
        body = without_images(body)
        kept = await client.recall(body, strict=info.can_strict)
        why = "not on that InvokeAI, or in another user's private board"
        note = f" without {counted(refused, 'reference image')} ({why})"
    # An admin or a single-user server answers 200 and drops what it can't find: its answer says what it kept.
    lost = dropped(body, kept) if kept is not None else []
    if lost:
        note += f"{' and' if note else ''} without {_join(lost)} (not on that InvokeAI)"
    if not info.can_strict:
        note += " (InvokeAI 6.13 or newer also clears the settings the image doesn't have)"
    return ActionResult(message=f"{action} sent to InvokeAI{note}: press Invoke there to generate")


async def use_as_reference(
    client: InvokeAIClient, upload: Upload, board_id: str | None, *, attach: bool = False
) -> ActionResult:
    """Upload to the chosen board; with `attach` (opt-in, ≥ 6.14) also add it to the current generation."""
    board_name = await client.board_name(board_id)
    image_name = await client.upload(upload, board_id)
    message = f"Uploaded to InvokeAI board “{board_name}” as {image_name}"
    if attach:
        message += await _attach(client, image_name)
    return ActionResult(message=message, image_name=image_name, board_name=board_name)


async def already_on_server(
    client: InvokeAIClient, image_name: str, board_id: str | None, *, attach: bool = False
) -> ActionResult:
    """Use as Ref Image on a board album's image: it is on that server already, so nothing is uploaded; with
    `attach` (the same opt-in as uploads) it is added to the current generation by name."""
    board_name = await _board_name_or_id(client, board_id)
    message = f"Already on InvokeAI as {image_name} (board “{board_name}”): drop it into a reference layer there"
    if attach:
        message += await _attach(client, image_name)
    return ActionResult(message=message, image_name=image_name, board_name=board_name)


async def append_reference(client: InvokeAIClient, image_name: str) -> ActionResult:
    """Append (≥ 6.14): add the image to the current generation's reference images, every other setting kept
    (`recall?append=true` with `reference_images` only; never strict)."""
    info = await client.info()
    if not info.can_append:  # 6.13 ignores append=true and would replace the reference images instead
        raise AppendUnsupported(info.version)
    await client.recall({"reference_images": [{"image_name": image_name}]}, append=True)
    return ActionResult(message=f"Added {image_name} to InvokeAI's reference images: press Invoke there to generate",
                        image_name=image_name)


async def upload_and_append(client: InvokeAIClient, upload: Upload, board_id: str | None) -> ActionResult:
    """Append for a folder image: upload it to the chosen board first, then append it by its new name."""
    if not (await client.info()).can_append:  # refuse before uploading anything
        raise AppendUnsupported((await client.info()).version)
    board_name = await client.board_name(board_id)
    image_name = await client.upload(upload, board_id)
    result = await append_reference(client, image_name)
    return ActionResult(message=f"Uploaded to InvokeAI board “{board_name}” as {image_name} and added to its "
                        "reference images: press Invoke there to generate", image_name=image_name,
                        board_name=board_name) if result.ok else result


async def _board_name_or_id(client: InvokeAIClient, board_id: str | None) -> str:
    """The board's name; its id when it is gone or hidden (the message still says where the image is)."""
    try:
        return await client.board_name(board_id)
    except BoardNotFound:
        return board_id or "Uncategorized"


async def _attach(client: InvokeAIClient, image_name: str) -> str:
    if not (await client.info()).can_append:  # 6.13 ignores append=true and would replace the reference images
        return "; attaching it as a reference image needs InvokeAI 6.14 or newer"
    try:
        await client.recall({"reference_images": [{"image_name": image_name}]}, append=True)
    except PhotoMapError as err:  # the upload worked: say so, and why the attach didn't
        return f"; it could not be attached: {err.message}"
    return " and attached as a reference image"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
