"""Defensive readers for untrusted metadata values: caps, JSON decoding, and type coercion that never raises.

Every parser reads embedded JSON and text through these helpers so that a string where an object was expected, a
null, a 400-digit number or a thousand-deep nesting turns into `None` (or an error note), never an exception.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

# A real InvokeAI workflow or ComfyUI graph is well under 2 MiB; a 1.x `Dream` chunk with an inline data-URI init
# image is ~1 MiB. 16 MiB leaves room for outliers while bounding memory for a hostile 100 MB chunk.
MAX_TEXT_BYTES = 16 * 1024 * 1024
# The sum over all text chunks of one file, so a file with many large chunks stays bounded too.
MAX_TOTAL_TEXT_BYTES = 32 * 1024 * 1024
# Real metadata JSON nests < 15 levels. Pydantic refuses to serialize past a few hundred, and the API's json.dumps
# runs on a stack that is already deep, so anything deeper is kept as text, not as a structure.
MAX_JSON_DEPTH = 64
# Seeds are stored in an int64 column; larger values stay in `raw` only.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Prompts longer than this are cut for the normalized fields (raw keeps the whole text).
MAX_FIELD_CHARS = 64 * 1024


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `value` nests deeper than `limit` containers (breadth first, stops as soon as it knows)."""
    level: list[Any] = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        children: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            children.extend([item for item in items if isinstance(item, (dict, list))])
        level = children
    return False


def decode_json(text: str) -> tuple[Any, str | None]:
    """(value, None) for JSON text, else (None, why). Only texts that look like a JSON object or array are tried."""
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return None, "not JSON"
    try:
        value = json.loads(stripped)
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as exc:  # JSONDecodeError, and int() of a number past Python's digit limit
        return None, f"invalid JSON ({str(exc)[:80]})"
    if json_depth_exceeds(value):
        return None, "JSON nested too deeply"
    if "\\ud" in stripped or "\\uD" in stripped:  # only a \u escape can make a lone surrogate
        value = _drop_lone_surrogates(value)
    return value, None


def _drop_lone_surrogates(value: Any) -> Any:
    """Replace unpaired UTF-16 surrogates (valid JSON, invalid UTF-8) so the store and UTF-8 output accept them."""
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace").decode("utf-8")
    if isinstance(value, list):
        return [_drop_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_drop_lone_surrogates(key): _drop_lone_surrogates(item) for key, item in value.items()}
    return value


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    """A string field, cut to MAX_FIELD_CHARS; numbers become their text (some writers store names as numbers)."""
    if isinstance(value, str):
        return value[:MAX_FIELD_CHARS]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)[:MAX_FIELD_CHARS]
    return None


def as_int(value: Any, *, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int | None:
    """An integer in [lo, hi] from an int, an integral float or a decimal string; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 24:
            return None
        try:
            value = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            return None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return None
        value = int(value)
    if isinstance(value, int) and lo <= value <= hi:
        return value
    return None


def as_float(value: Any) -> float | None:
    """A finite float from a number or numeric string; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 32:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, int):
        if abs(value) > 2**63:
            return None
        return float(value)
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def dig(value: Any, *path: str | int) -> Any:
    """value[path[0]][path[1]]..., or None as soon as a step is missing or of the wrong type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, dict):
                return None
            value = value.get(step)
    return value


Coerce = Callable[[Any], Any]


def set_fields(record: object, source: dict[str, Any], fields: dict[str, tuple[str, Coerce]]) -> None:
    """record.<field> = coerce(source[key]) for each field: key, coerce; a missing key sets None."""
    for field, (key, coerce) in fields.items():
        setattr(record, field, coerce(source.get(key)))
