"""What the drawer's buttons do: Recall, Remix and Use as Ref Image (DESIGN §4), on top of the InvokeAI client."""

from __future__ import annotations

from pydantic import BaseModel

from photomapd.errors import NotRecallable, PhotoMapError, RecallUnsupported
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
    info = await client.info()
    if not info.can_recall:
        raise RecallUnsupported(info.version)
    body = build_recall_body(meta, include_seed=keep_seed, reference_images=info.can_strict)
    action = "Recall" if keep_seed else "Remix"
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
