"""Search requests and their query vectors: text, an indexed image or uploaded bytes, blended, minus a negative text.

Text and uploads are embedded on the model thread; an indexed image's vector is read from the table.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from photomapd.errors import BadRequest, ImageNotFound, ModelMismatch
from photomapd.images import load_image
from photomapd.model.runner import ModelRunner
from photomapd.search.filters import INT64_MAX, MAX_TEXT_CHARS, SearchFilters
from photomapd.store import AlbumTable

MAX_UPLOAD_BASE64_CHARS = 40 * 1024**2  # ~30 MB of image bytes: any real photo, well under the API's body cap
MAX_PAGE = 500  # results per page: a grid screen holds far fewer, and each result row is read from the table
MAX_OFFSET = 100_000  # deep paging past this is no longer "search"; it also bounds the ANN candidate count
Order = Literal["best", "newest", "oldest"]
SORT_ALIASES = {"score": "best", "date": "newest"}
BEST_NEEDS_QUERY = "Best match needs a text or an image to search for"


class SearchRequest(BaseModel):
    """`POST /albums/{key}/search`. No text and no image = browse: filters only, newest first."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    image_id: int | None = Field(default=None, ge=0, le=INT64_MAX)  # "more like this": an indexed image of this album
    image_base64: str | None = Field(default=None, max_length=MAX_UPLOAD_BASE64_CHARS)  # uploaded image bytes
    image_weight: float = Field(default=0.5, ge=0.0, le=1.0)  # image share of the query when text is given too
    negative_text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    negative_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    keywords: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)  # words the prompt must hold (FTS)
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)  # an absolute cut; replaces the automatic one
    auto_cut: bool = True  # text queries keep only the results near the best one (rank.AUTO_CUT_BELOW_BEST)
    # default: best for a query, newest for a browse; "score" and "date" are the names older clients send
    sort: Literal["best", "newest", "oldest", "score", "date"] | None = None
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)

    @model_validator(mode="after")
    def _one_image_source(self) -> SearchRequest:
        if self.image_id is not None and self.image_base64:
            raise ValueError("give image_id or image_base64, not both")
        return self

    def order(self, is_ranked: bool | None = None) -> Order:
        """The sort in effect: `sort` with its old names mapped, or the default (best when ranked by a query, else
        newest). `is_ranked`: is there a query vector (default: a text or an image is given). Best match with nothing
        to rank by is a 400, so the panel never shows a "best" order that isn't one."""
        is_ranked = self.has_query if is_ranked is None else is_ranked
        order = SORT_ALIASES.get(self.sort, self.sort) if self.sort else ("best" if is_ranked else "newest")
        if order == "best" and not is_ranked:
            raise BadRequest(BEST_NEEDS_QUERY)
        return order  # type: ignore[return-value]

    @property
    def has_text(self) -> bool:
        return bool(self.text and self.text.strip())

    @property
    def has_query(self) -> bool:
        return bool(self.text and self.text.strip()) or self.image_id is not None or bool(self.image_base64)


def compose_query(
    text: np.ndarray | None,
    image: np.ndarray | None,
    negative: np.ndarray | None,
    image_weight: float = 0.5,
    negative_weight: float = 0.5,
) -> np.ndarray:
    """One unit query vector from normalized parts: a weighted blend of text and image, minus the negative text."""
    if text is not None and image is not None:
        query = (1.0 - image_weight) * text + image_weight * image
    elif text is not None or image is not None:
        query = text if text is not None else image
    else:
        raise BadRequest("A negative text needs a text or an image to search for")
    query = np.asarray(query, dtype=np.float32)
    if negative is not None:
        query = query - negative_weight * negative
    norm = float(np.linalg.norm(query))
    if norm < 1e-6:  # the parts cancel out (e.g. negative == text): nothing left to rank by
        raise BadRequest("The negative text cancels the query out: there is nothing left to search for")
    return (query / norm).astype(np.float32)


def _decode_upload(data: str) -> Image.Image:
    """The uploaded image's pixels, its declared size checked against the indexing cap before any are allocated."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("image_base64 is not valid base64") from exc
    return load_image(raw).image  # ImageUnreadable (422) with the reason: too large, damaged, not an image


def _check_same_model(table: AlbumTable, runner: ModelRunner) -> None:
    """Text and uploaded images are embedded by the daemon's model; vectors of another model are not comparable."""
    if not table.info.is_made_by(runner.embedding_names):
        raise ModelMismatch()


async def query_vector(request: SearchRequest, table: AlbumTable, runner: ModelRunner) -> np.ndarray | None:
    """The unit query vector for `request` (None for a browse). Text and uploads go through the model thread."""
    if not request.has_query:
        if request.negative_text:
            raise BadRequest("A negative text needs a text or an image to search for")
        return None
    texts = [text for text in (request.text, request.negative_text) if text and text.strip()]
    if texts or request.image_base64:
        _check_same_model(table, runner)
    image = None
    if request.image_id is not None:
        row = await asyncio.to_thread(table.get, request.image_id, ["vector"])
        if row is None:
            raise ImageNotFound()
        image = np.asarray(row["vector"], dtype=np.float32)
    elif request.image_base64:
        pixels = await asyncio.to_thread(_decode_upload, request.image_base64)
        image = (await runner.run(lambda model, images: model.encode_images(images), [pixels]))[0]
    encoded = iter(await runner.encode_texts(texts))  # cached, shared with identical queries in flight, or batched
    text = next(encoded) if request.text and request.text.strip() else None
    negative = next(encoded) if request.negative_text and request.negative_text.strip() else None
    return compose_query(text, image, negative, request.image_weight, request.negative_weight)
