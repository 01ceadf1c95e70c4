"""Search filters: what narrows a search or the map, and the ONE place they become LanceDB SQL.

Every request value goes through `store.sql_quote`; the map's filtered payload reuses `filters_to_where`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from photomapd.errors import BadRequest
from photomapd.store import sql_like_prefix, sql_quote

MAX_TEXT_CHARS = 1000  # CLIP reads 77 tokens; longer text is only truncated by the tokenizer, so cap the request
INT64_MAX = 2**63 - 1  # ids and seeds are int64 columns: a larger number can match nothing and must not reach SQL
SEED_TEXT = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: `²` or Arabic-Indic digits are not a seed anyone typed
SEED_NOT_A_NUMBER = "Seed must be a whole number, e.g. 1234567890"
# What images without generation metadata are called: the metadata model's own name for an unknown generator.
UNKNOWN_GENERATOR = "unknown"
MAX_FILTER_IDS = 10_000  # the selection routes' bound too: a lasso over a whole big map is sent as a filter, not ids
MAX_FILTER_CLUSTERS = 1_000  # one map label can stand for several clusters with the same words; far more than a map has
ClusterId = Annotated[int, Field(ge=-1, le=2**31 - 1)]  # a map cluster id; -1 is HDBSCAN's noise


class SearchFilters(BaseModel):
    """What narrows a search or the map. Every field is optional; all given ones must hold (AND)."""

    model_config = ConfigDict(extra="forbid")

    folder: str | None = Field(default=None, max_length=4096)  # an album folder, or a sub-folder of one
    date_from: date | datetime | None = None  # inclusive
    date_to: date | datetime | None = None  # inclusive for a date (the whole day), exclusive for a date-time
    model: str | None = Field(default=None, max_length=512)  # case-insensitive substring of the model name
    lora: str | None = Field(default=None, max_length=512)  # case-insensitive substring of any LoRA name
    seed: int | None = Field(default=None, ge=-INT64_MAX - 1, le=INT64_MAX)  # also a string of digits
    generator: str | None = Field(default=None, max_length=64)  # case-insensitive; "unknown" includes no metadata
    prompt: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)  # case-insensitive substring of the prompt
    starred: bool | None = None  # True: only starred (InvokeAI stars, or a folder album's local favourites)
    # "click a cluster": one id, or the ids of every cluster one merged map label stands for
    cluster: ClusterId | Annotated[list[ClusterId], Field(max_length=MAX_FILTER_CLUSTERS)] | None = Field(
        default=None, union_mode="left_to_right"
    )
    ids: list[int] | None = Field(default=None, max_length=MAX_FILTER_IDS)  # a selection: "open in grid"

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_is_a_whole_number(cls, value: Any) -> Any:
        # The panel sends the seed field's text as typed: a non-number must say so, not vanish from the filters.
        # BadRequest (not ValueError) so the user reads this sentence rather than pydantic's.
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            if not SEED_TEXT.fullmatch(text):
                raise BadRequest(SEED_NOT_A_NUMBER)
            return int(text)
        if isinstance(value, bool) or (value is not None and not isinstance(value, int)):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise BadRequest(SEED_NOT_A_NUMBER)
        return value

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


def _one_of(column: str, values: list[int]) -> str:
    # Validated ints, written back by int(): nothing from the request reaches the SQL as text.
    wanted = sorted({int(value) for value in values})
    return f"{column} IN ({', '.join(map(str, wanted))})" if wanted else "FALSE"


def _contains(column_sql: str, value: str) -> str:
    """`column_sql` holds `value`, ignoring case; a null column holds nothing."""
    return f"strpos(lower({column_sql}), lower({sql_quote(value)})) > 0"


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
    # Substrings via strpos instead of LIKE: no wildcard escaping to get wrong, and '%' or '_' match literally.
    if filters.model:
        clauses.append(_contains("model", filters.model))
    if filters.lora:
        # One string of all the row's LoRA names, newline-separated: a name never holds a newline, so a match
        # can't straddle two names.
        clauses.append(_contains("array_to_string(loras, '\n')", filters.lora))
    if filters.seed is not None:
        clauses.append(f"seed = {int(filters.seed)}")
    if filters.generator:
        generator = filters.generator.strip().lower()
        clause = f"lower(generator) = {sql_quote(generator)}"
        if generator == UNKNOWN_GENERATOR:  # a file with no metadata at all has no generator: "unknown" too
            clause = f"(generator IS NULL OR {clause})"
        clauses.append(clause)
    if filters.prompt:
        clauses.append(_contains("positive_prompt", filters.prompt))
    if filters.starred is not None:
        clauses.append("starred" if filters.starred else "(starred IS NULL OR NOT starred)")
    if filters.cluster is not None:
        clusters = [filters.cluster] if isinstance(filters.cluster, int) else filters.cluster
        clauses.append(_one_of("cluster", clusters))
    if filters.ids is not None:
        clauses.append(_one_of("id", [row_id for row_id in filters.ids if 0 <= row_id <= INT64_MAX]))
    return " AND ".join(clauses) if clauses else None
