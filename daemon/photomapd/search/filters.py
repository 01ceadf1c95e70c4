"""Search filters: what narrows a search or the map, and the ONE place they become LanceDB SQL.

Every request value goes through `store.sql_quote`; the map's filtered payload reuses `filters_to_where`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from photomapd.errors import BadRequest
from photomapd.store import sql_like_prefix, sql_quote

MAX_TEXT_CHARS = 1000  # CLIP reads 77 tokens; longer text is only truncated by the tokenizer, so cap the request
INT64_MAX = 2**63 - 1  # ids and seeds are int64 columns: a larger number can match nothing and must not reach SQL


class SearchFilters(BaseModel):
    """What narrows a search or the map. Every field is optional; all given ones must hold (AND)."""

    model_config = ConfigDict(extra="forbid")

    folder: str | None = Field(default=None, max_length=4096)  # an album folder, or a sub-folder of one
    date_from: date | datetime | None = None  # inclusive
    date_to: date | datetime | None = None  # inclusive for a date (the whole day), exclusive for a date-time
    model: str | None = Field(default=None, max_length=512)
    lora: str | None = Field(default=None, max_length=512)
    seed: int | None = Field(default=None, ge=-INT64_MAX - 1, le=INT64_MAX)
    generator: str | None = Field(default=None, max_length=64)
    prompt: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)  # case-insensitive substring of the prompt

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _date_only_stays_a_date(cls, value: Any) -> Any:
        # "2024-05-01" from a date picker must mean the day, not midnight: keep it a `date` whatever the input path.
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value)
        return value


def _sql_timestamp(moment: datetime) -> str:
    """A SQL timestamp literal; `created_at` is stored as naive UTC, so aware times are converted first."""
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError as exc:  # e.g. 9999-12-31T23:00-05:00 is past the last moment Python can hold in UTC
            raise BadRequest("That date is out of range") from exc
    return f"timestamp {sql_quote(moment.isoformat(sep=' '))}"


def _start_of(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time.min)


def _end_of(value: date | datetime) -> datetime | None:
    """The exclusive end of `value`; None for the last day there is (no bound: date.max + 1 day would overflow)."""
    if isinstance(value, datetime):
        return value
    if value >= date.max:
        return None
    return datetime.combine(value + timedelta(days=1), time.min)


def filters_to_where(filters: SearchFilters | None) -> str | None:
    """The LanceDB `.where()` text for `filters`, or None when nothing is filtered."""
    if filters is None:
        return None
    clauses: list[str] = []
    if filters.folder:
        folder = filters.folder.rstrip("/") or "/"
        sub_folders = sql_like_prefix(folder if folder.endswith("/") else folder + "/")
        clauses.append(f"(folder = {sql_quote(folder)} OR path LIKE {sub_folders})")
    if filters.date_from is not None:
        clauses.append(f"created_at >= {_sql_timestamp(_start_of(filters.date_from))}")
    end = _end_of(filters.date_to) if filters.date_to is not None else None
    if end is not None:
        clauses.append(f"created_at < {_sql_timestamp(end)}")
    if filters.model:
        clauses.append(f"model = {sql_quote(filters.model)}")
    if filters.lora:
        clauses.append(f"array_has(loras, {sql_quote(filters.lora)})")
    if filters.seed is not None:
        clauses.append(f"seed = {int(filters.seed)}")
    if filters.generator:
        clauses.append(f"generator = {sql_quote(filters.generator)}")
    if filters.prompt:
        # strpos instead of LIKE: no wildcard escaping to get wrong, and '%' or '_' in a prompt match literally.
        clauses.append(f"strpos(lower(positive_prompt), lower({sql_quote(filters.prompt)})) > 0")
    return " AND ".join(clauses) if clauses else None
